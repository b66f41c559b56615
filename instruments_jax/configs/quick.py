"""The baseline pipeline sized for a 2-core CPU: minutes, no network.

Same data, features, model, loss and schedule as `baseline`; smaller input
(64 mel bins x 2 s chunks), a bigger batch, no ImageNet weights (they cannot be
downloaded offline) and bf16 ("1.36x at `quick`'s shape": experiments/RESULTS.md, "bf16,
donation, per-step host sync").
"""

from instruments_jax.configs import baseline


def get_config():
  c = baseline.get_config()
  c.name = "quick"
  c.seed = 0
  c.model.weights = "none"
  c.audio.mel_bins = 64
  c.audio.training_chunk_seconds = 2.0
  c.data.num_workers = 2
  c.train.batch_size = 32
  c.train.epochs = 3
  # One validation, after the last epoch: `make train` fits 10 minutes on 2 cores (RESULTS.md, "Issue 15").
  c.train.evaluation_epochs = 3
  c.train.mixed_precision = True  # bf16: 1.36x the float32 step here (RESULTS.md); issue 15 re-measured everything
  c.prediction.inference_chunk_seconds = 2.0
  c.prediction.max_inference_chunk_seconds = 6.0
  c.prediction.batch_size = 64
  return c
