"""`load_classifier`: a run as pure JAX functions, from the newest checkpoint, also of older run directories."""

import json
import re
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import instruments_jax
from instruments_jax import checkpoint
from instruments_jax.data import features

pytestmark = pytest.mark.slow  # the smoke_run fixture trains


def _readme_snippet():
  text = open(instruments_jax.__file__.replace("instruments_jax/__init__.py", "README.md")).read()
  return re.search(r"<!-- snippet: load_classifier -->\n```python\n(.*?)```", text, re.S).group(1)


def test_readme_snippet_runs(smoke_run):
  code = _readme_snippet().replace('"runs/quick"', repr(str(smoke_run)))
  p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert p.returncode == 0, p.stderr[-3000:]
  assert "guitar" in p.stdout


def test_apply_is_pure_under_jit_vmap_and_grad(smoke_run):
  clf = instruments_jax.load_classifier(str(smoke_run))
  wave = jnp.asarray(np.random.default_rng(0).normal(size=(3, 8000)) * 0.1, jnp.float32)
  batched = jax.jit(clf.apply)(clf.params, wave)
  one_by_one = jax.vmap(clf.apply, in_axes=(None, 0))(clf.params, wave)
  assert batched.shape == (3, 4)
  np.testing.assert_allclose(one_by_one, batched, atol=1e-5)
  mel = features.log_mel(wave, clf.config.audio, xp=jnp)
  np.testing.assert_allclose(clf.apply_log_mel(clf.params, mel), batched, atol=1e-5)
  saliency = jax.grad(lambda m: clf.apply_log_mel(clf.params, m)[:, 0].sum())(mel)
  assert saliency.shape == mel.shape and bool(jnp.isfinite(saliency).all()) and float(jnp.abs(saliency).max()) > 0


def test_loads_the_newest_checkpoint_without_an_optimizer(smoke_run, monkeypatch):
  from instruments_jax import step

  monkeypatch.setattr(step, "make_optimizer", lambda *a: pytest.fail("inference built an optimizer"))
  clf = instruments_jax.load_classifier(str(smoke_run))
  steps = [int(d.name) for d in (smoke_run / "checkpoints").iterdir() if d.name.isdigit()]
  assert clf.step == max(steps) == max(json.loads(l).get("step", 0) for l in open(smoke_run / "metrics.jsonl"))
  # ResNet50: 53 convolutions (kernel, bias) and 53 BatchNorms (gamma, beta); the head (kernel, bias)
  assert len(clf.params["params"]) == len(clf.model.trainable_variables) == 53 * 2 + 53 * 2 + 2


def _copy_run(smoke_run, tmp_path, edit):
  run = tmp_path / "run"
  shutil.copytree(smoke_run, run)
  cfg = json.loads((run / "config.json").read_text())
  edit(cfg)
  (run / "config.json").write_text(json.dumps(cfg))
  return run


def test_a_run_of_an_earlier_version_loads(smoke_run, tmp_path):
  def older(cfg):  # fields since dropped, and one added later missing
    cfg["model"]["input_channels"] = 1
    cfg["audio"]["normalization"] = "none"
    cfg["prediction"]["metric"] = "roc_auc"
    del cfg["audio"]["features_on_device"]

  clf = instruments_jax.load_classifier(str(_copy_run(smoke_run, tmp_path, older)))
  assert clf.config.audio.features_on_device is False and "input_channels" not in clf.config.model
  wave = jnp.zeros((1, 8000), jnp.float32)
  same = instruments_jax.load_classifier(str(smoke_run))
  np.testing.assert_allclose(clf.apply(clf.params, wave), same.apply(same.params, wave), atol=1e-6)


def test_a_run_with_only_the_old_single_checkpoint_fails_saying_why(smoke_run, tmp_path):
  run = _copy_run(smoke_run, tmp_path, lambda cfg: None)
  (run / "checkpoints").rename(run / "checkpoint")
  with pytest.raises(checkpoint.RunDirError, match="format of instruments_jax before"):
    instruments_jax.load_classifier(str(run))
  p = subprocess.run([sys.executable, "-m", "instruments_jax.evaluate", f"--workdir={run}"], capture_output=True,
                     text=True)
  assert p.returncode == 1 and "retrain it" in p.stderr and "Traceback" not in p.stderr


def test_prediction_mixed_precision_computes_in_bfloat16(smoke_run, tmp_path):
  run = _copy_run(smoke_run, tmp_path, lambda cfg: cfg["prediction"].update(mixed_precision=True))
  bf16 = instruments_jax.load_classifier(str(run))
  fp32 = instruments_jax.load_classifier(str(smoke_run))
  conv = lambda clf: clf.model.get_layer("resnet50").get_layer("conv1_conv")
  assert conv(bf16).compute_dtype == "bfloat16" and conv(fp32).compute_dtype == "float32"
  wave = jnp.asarray(np.random.default_rng(1).normal(size=(2, 8000)) * 0.1, jnp.float32)
  a, b = bf16.apply(bf16.params, wave), fp32.apply(fp32.params, wave)
  assert a.dtype == jnp.float32 and not np.array_equal(a, b)
  np.testing.assert_allclose(a, b, atol=0.05)  # bf16 keeps ~3 significant digits


def test_a_run_whose_config_is_broken_exits_2(smoke_run, tmp_path):
  run = _copy_run(smoke_run, tmp_path, lambda cfg: cfg["train"].update(loss="hinge"))
  p = subprocess.run([sys.executable, "-m", "instruments_jax.predict", f"--workdir={run}", "x.wav"],
                     capture_output=True, text=True)
  assert p.returncode == 2 and "train.loss" in p.stderr and "Traceback" not in p.stderr
