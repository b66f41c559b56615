"""The baseline pipeline sized for a 2-core CPU: minutes, no network.

Same data, features, model, loss and schedule as `baseline`; smaller input
(64 mel bins x 2 s chunks), a bigger batch, no ImageNet weights (they cannot be
downloaded offline) and float32. bf16 would be faster ("bf16 is faster on this CPU
now (1.36x at `quick`'s shape, 1.11x at 128 x 256)": experiments/RESULTS.md, "bf16,
donation, per-step host sync", jax 0.10.2), but `quick`'s reported numbers were
measured in float32 and bf16 changes results (the first step's loss by about 0.6%).
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
  c.train.mixed_precision = False
  c.prediction.inference_chunk_seconds = 2.0
  c.prediction.max_inference_chunk_seconds = 6.0
  c.prediction.batch_size = 64
  return c
