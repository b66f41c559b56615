import json
import subprocess
import sys

from instruments_jax.configs import get_config

# The seed's configuration table (../shared/seed/reference.md), as config paths.
SEED = {
    "model.backbone": "resnet50", "model.weights": "imagenet", "model.pool": "avg", "model.dropout": 0.0,
    "model.input_channels": 1,
    "audio.sample_rate": 44100, "audio.stft_window_size": 2048, "audio.hop_size": 512, "audio.mel_bins": 128,
    "audio.fmin": 50.0, "audio.fmax": 16000.0, "audio.normalization": "none", "audio.training_chunk_seconds": 60.0,
    "augmentation.mix_audio": "disabled",
    "data.audio_column": "FileName", "data.label_column": "Class", "data.validation_strategy": "kfold",
    "data.num_folds": 5, "data.validation_fold": 4,
    "train.batch_size": 8, "train.drop_last_batch": True, "train.epochs": 5, "train.evaluation_epochs": 1,
    "train.optimizer": "adamw", "train.learning_rate": 0.001, "train.weight_decay": 0.0, "train.schedule": "cosine",
    "train.warmup_epochs": 0.0, "train.gradient_clip": 0.0, "train.grad_accumulation": 1, "train.loss": "bce",
    "train.mixed_precision": True,
    "prediction.inference_chunk_seconds": 60.0, "prediction.max_inference_chunk_seconds": 600.0,
    "prediction.metric": "roc_auc",
}


def _get(d, path):
  for k in path.split("."):
    d = d[k]
  return d


def test_baseline_is_the_seed_table():
  cfg = get_config("baseline").to_dict()
  for path, value in SEED.items():
    assert _get(cfg, path) == value, path


def test_print_config_shows_every_seed_setting():
  out = subprocess.run([sys.executable, "-m", "instruments_jax.train", "--config=baseline", "--print_config"],
                       check=True, capture_output=True, text=True).stdout
  cfg = json.loads(out)
  for path, value in SEED.items():
    assert _get(cfg, path) == value, path


def test_print_config_applies_overrides():
  out = subprocess.run([sys.executable, "-m", "instruments_jax.train", "--config=baseline", "--print_config",
                        "--config.model.weights=none", "--config.train.epochs=2"],
                       check=True, capture_output=True, text=True).stdout
  cfg = json.loads(out)
  assert cfg["model"]["weights"] == "none" and cfg["train"]["epochs"] == 2


def test_quick_and_smoke_need_no_network():
  for name in ("quick", "smoke"):
    assert get_config(name).model.weights == "none"
