"""A config for tests: tiny input (32 mels x 0.75 s), 2% of the data, one epoch of 10 steps, `cnn8`.

A training run takes well under a minute on 2 CPU cores (experiments/RESULTS.md). The backbone is
`quick`'s cnn8 (1.2 M weights): the suite trains some hundred smoke processes to test resume, faults
and devices, none of which depends on the backbone, and ResNet50's 23.6 M weights made each of them
compile longer and write 215 MB checkpoints instead of 13 MB. Tests about the recipe's model set
`model.backbone=resnet50` (the session's trained run, `conftest.smoke_run`, is one).
"""

from instruments_jax.configs import baseline


def get_config():
  c = baseline.get_config()
  c.name = "smoke"
  c.seed = 0
  c.model.backbone = "cnn8"
  c.model.weights = "none"
  c.audio.mel_bins = 32
  c.audio.training_chunk_seconds = 0.75
  c.data.num_workers = 0
  c.data.data_sample = 0.02  # ~50 training clips
  c.train.batch_size = 4
  c.train.epochs = 1
  c.train.mixed_precision = False
  c.train.log_every_steps = 2
  c.prediction.inference_chunk_seconds = 0.75
  c.prediction.max_inference_chunk_seconds = 1.5  # up to 2 chunks, so averaging is exercised
  c.prediction.batch_size = 16
  return c
