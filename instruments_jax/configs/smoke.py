"""A config for tests: tiny input (32 mels x 0.75 s), 2% of the data, one epoch of 10 steps.

A training run takes about a minute on 2 CPU cores (experiments/RESULTS.md).
"""

from instruments_jax.configs import baseline


def get_config():
  c = baseline.get_config()
  c.name = "smoke"
  c.seed = 0
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
