"""`python -m instruments_jax.export`: a StableHLO artifact that reproduces `apply` with jax alone."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import instruments_jax

pytestmark = pytest.mark.slow  # the smoke_run fixture trains


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
