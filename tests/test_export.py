"""`python -m instruments_jax.export`: a StableHLO artifact that reproduces `apply` with jax alone, and a .keras
file that reproduces `apply_log_mel` with keras alone, on any backend, and carries the class names."""

import copy
import dataclasses
import json
import os
import subprocess
import sys
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import instruments_jax
from instruments_jax import export

pytestmark = pytest.mark.slow  # the smoke_run fixture trains

# Probabilities in [0, 1] from float32 on both sides: the same XLA ops under the jax backend (bitwise equal
# when measured), numpy's float32 arithmetic for the non-conv ops under the numpy backend (< 4e-7 measured).
KERAS_ATOL = 1e-5

# Runs in a fresh process: keras alone loads the file (no instruments_jax, no custom objects) and predicts.
LOAD_AND_PREDICT = """
import sys
import keras
import numpy as np
model = keras.saving.load_model(sys.argv[1])
np.save(sys.argv[3], keras.ops.convert_to_numpy(model(np.load(sys.argv[2]), training=False)))
assert "instruments_jax" not in sys.modules
print(keras.backend.backend())
"""


def test_exported_artifact_reproduces_apply(smoke_run, tmp_path):
  out = tmp_path / "model.jax"
  subprocess.run([sys.executable, "-m", "instruments_jax.export", f"--workdir={smoke_run}", f"--out={out}"],
                 check=True, capture_output=True)
  exported = jax.export.deserialize(bytearray(out.read_bytes()))
  clf = instruments_jax.load_classifier(str(smoke_run))
  samples = json.load(open(str(out) + ".json"))["samples"]
  assert samples == 33075  # smoke: 0.75 s inference chunks at 44.1 kHz
  for batch in (1, 5):
    wave = jnp.asarray(np.random.default_rng(batch).normal(size=(batch, samples)) * 0.1, jnp.float32)
    np.testing.assert_allclose(exported.call(wave), clf.apply(clf.params, wave), atol=1e-5)


@pytest.fixture(scope="module")
def keras_file(smoke_run, tmp_path_factory):
  """The smoke run exported by the CLI with --format=keras."""
  out = tmp_path_factory.mktemp("keras_export") / "instruments.keras"
  subprocess.run([sys.executable, "-m", "instruments_jax.export", f"--workdir={smoke_run}", f"--out={out}",
                  "--format=keras"], check=True, capture_output=True)
  return out


@pytest.mark.parametrize("backend", ["jax", "numpy"])
def test_keras_file_reproduces_apply_log_mel_in_a_fresh_process(smoke_run, keras_file, tmp_path, backend):
  clf = instruments_jax.load_classifier(str(smoke_run))
  frames = export.keras_metadata(str(keras_file))["inference_chunk_frames"]
  assert frames == 65  # 0.75 s at 44.1 kHz, hop 512, centered frames
  rng = np.random.default_rng(0)
  for batch, n in ((3, frames), (2, frames + 15)):  # the model takes any number of frames
    log_mel = rng.uniform(-80.0, 0.0, size=(batch, clf.config.audio.mel_bins, n, 1)).astype(np.float32)
    np.save(tmp_path / "log_mel.npy", log_mel)
    r = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(keras_file), str(tmp_path / "log_mel.npy"),
                        str(tmp_path / "probs.npy")], env={**os.environ, "KERAS_BACKEND": backend},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-1] == backend
    probs = np.load(tmp_path / "probs.npy")
    assert probs.shape == (batch, len(clf.classes)) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, clf.apply_log_mel(clf.params, log_mel[..., 0]), atol=KERAS_ATOL, rtol=0)


def test_keras_file_carries_classes_loss_and_audio_settings(smoke_run, keras_file):
  clf = instruments_jax.load_classifier(str(smoke_run))
  meta = export.keras_metadata(str(keras_file))
  assert meta["classes"] == list(clf.classes)
  assert meta["loss"] == clf.config.train.loss == "bce" and meta["activation"] == "sigmoid"
  assert meta["audio"] == clf.config.audio.to_dict() and meta["sample_rate"] == 44100
  assert meta["inference_chunk_seconds"] == clf.config.prediction.inference_chunk_seconds
  assert meta["dtype_policy"] == "float32"
  assert json.load(open(str(keras_file) + ".json")) == meta  # the same description beside the file
  with zipfile.ZipFile(keras_file) as zf:  # what the module docstring tells a user without this package
    raw = json.loads(zf.read("metadata.json"))
    assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]  # keras' own members only
  assert raw["instruments_jax"]["classes"] == list(clf.classes) and "keras_version" in raw


def _layers(layer):
  """Yields `layer` and every layer inside it, nested models included."""
  yield layer
  for inner in getattr(layer, "layers", ()):
    yield from _layers(inner)


def test_keras_model_is_float32_for_a_mixed_precision_softmax_run(smoke_run):
  from instruments_jax.model import build_model

  clf = instruments_jax.load_classifier(str(smoke_run))
  cfg = copy.deepcopy(clf.config)
  cfg.prediction.mixed_precision = True
  cfg.train.loss = "softmax"  # the same weights read as softmax logits: the other Activation
  mixed = dataclasses.replace(clf, config=cfg, model=build_model(cfg, mixed_precision=True, load_weights=False))
  policies = lambda m: {layer.dtype_policy.name for layer in _layers(m)}
  assert "mixed_bfloat16" in policies(mixed.model)
  model = export.keras_model(mixed)
  assert policies(model) == {"float32"} and model.layers[-1].get_config()["activation"] == "softmax"
  assert {str(v.dtype) for v in model.weights} <= {"float32", "uint32"}  # uint32: a seed generator's state, if any
  log_mel = np.random.default_rng(1).uniform(-80.0, 0.0, size=(2, cfg.audio.mel_bins, 65)).astype(np.float32)
  probs = np.asarray(model(log_mel[..., None], training=False))
  float32_softmax = dataclasses.replace(clf, config=cfg)  # clf.model computes in float32; cfg says softmax
  np.testing.assert_allclose(probs, float32_softmax.apply_log_mel(clf.params, log_mel), atol=KERAS_ATOL, rtol=0)
  np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-6)


def test_keras_format_needs_the_keras_suffix(tmp_path):
  out = tmp_path / "model.h5"
  r = subprocess.run([sys.executable, "-m", "instruments_jax.export", f"--workdir={tmp_path}", f"--out={out}",
                      "--format=keras"], capture_output=True, text=True)
  assert r.returncode == 2
  assert r.stderr.splitlines() == [f"error: --out={out}: --format=keras writes a .keras file "
                                   "(keras.saving.load_model needs the suffix)"]
  assert not out.exists() and not os.path.exists(str(out) + ".json")
