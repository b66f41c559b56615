"""The baseline pipeline sized for a 2-core CPU: minutes, no network.

Same data, features, loss and schedule as `baseline`; smaller input (64 mel bins x 2 s
chunks), a bigger batch, no ImageNet weights (they cannot be downloaded offline), bf16
("1.36x at `quick`'s shape": experiments/RESULTS.md, "bf16, donation, per-step host sync"),
and a smaller backbone than the recipe's ResNet50: `cnn8` (model.py) takes 7.7x ResNet50's
samples/s here and validated better on a held-out sound engine at 5 epochs (RESULTS.md,
"Issue 15, third round"). `--config.model.backbone=resnet50` gives the recipe's model back.
"""

from instruments_jax.configs import baseline


def get_config():
  c = baseline.get_config()
  c.name = "quick"
  c.seed = 0
  c.model.backbone = "cnn8"
  c.model.weights = "none"
  # Dropout before the classifier: higher held-out-engine validation at both seeds (RESULTS.md, "Issue 15,
  # fifth round").
  c.model.dropout = 0.3
  # The benchmark's three engines and FreePats, a second recorded library: higher on the held-out FluidR3
  # library (0.846 against 0.823) and level on the physical hold-out (RESULTS.md, "Issue 15, ninth round").
  # `make train` fetches FreePats (data/libraries.py).
  c.data.synth_engines = "soundfont,physical,spectral,freepats"
  c.audio.mel_bins = 64
  c.audio.training_chunk_seconds = 2.0
  c.data.num_workers = 2
  c.train.batch_size = 32
  c.train.epochs = 5
  # One validation, after the last epoch (RESULTS.md, "Issue 15").
  c.train.evaluation_epochs = 5
  c.train.mixed_precision = True  # bf16: 1.36x the float32 step here (RESULTS.md); issue 15 re-measured everything
  c.prediction.inference_chunk_seconds = 2.0
  c.prediction.max_inference_chunk_seconds = 6.0
  c.prediction.batch_size = 64
  return c
