import json
import os
import subprocess
import sys

import pytest

from instruments_jax.configs import get_config
from instruments_jax.train import train_and_evaluate


def test_smoke_training_runs_real_steps_and_the_loss_falls(tmp_path):
  cfg = get_config("smoke")
  cfg.train.epochs = 3
  results = train_and_evaluate(cfg, str(tmp_path))
  lines = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  losses = [l["train_loss"] for l in lines if "train_loss" in l]
  assert len(losses) >= 4
  assert losses[-1] < losses[0]
  for split in ("validation", "test"):
    assert 0 <= results[split]["accuracy"] <= 1 and 0 <= results[split]["roc_auc"] <= 1
  assert results["test"]["clips"] == 80
  assert os.path.isdir(tmp_path / "checkpoint")
  assert json.load(open(tmp_path / "config.json"))["name"] == "smoke"


def test_cli_stops_before_training_when_imagenet_weights_cannot_be_fetched(tmp_path):
  env = dict(os.environ, KERAS_HOME=str(tmp_path / "keras"), HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
  p = subprocess.run([sys.executable, "-m", "instruments_jax.train", "--config=smoke", "--config.model.weights=imagenet",
                      f"--workdir={tmp_path / 'run'}"], capture_output=True, text=True, env=env, timeout=300)
  assert p.returncode != 0
  assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in p.stderr
  assert "--config.model.weights=none" in p.stderr
  assert not os.path.exists(tmp_path / "run" / "metrics.jsonl")
