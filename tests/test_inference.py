import json
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import soundfile as sf

import instruments_jax
from instruments_jax.data import features, synth


def test_evaluate_on_kaggle_test_split_with_the_typo(smoke_run, kaggle_dir, tmp_path):
  p = subprocess.run([sys.executable, "-m", "instruments_jax.evaluate", f"--workdir={smoke_run}",
                      f"--data={kaggle_dir}", "--split=test", f"--out={tmp_path}"],
                     capture_output=True, text=True, check=True)
  assert re.search(r"accuracy \d\.\d{4}  macro F1 \d\.\d{4}  ROC-AUC", p.stdout)
  m = json.load(open(tmp_path / "eval_test.json"))
  assert m["clips"] == 12
  truth = [synth.split_labels(0, "test")[i] for i in range(12)]
  assert {k: v["support"] for k, v in m["per_class"].items()} == {c: truth.count(c) for c in instruments_jax.CLASSES}
  cm = np.array(m["confusion_matrix"]["rows_true_cols_predicted"])
  assert cm.sum() == 12 and np.trace(cm) / 12 == m["accuracy"]
  for fig in ("confusion_matrix_test.png", "test_predictions.png"):
    assert (tmp_path / fig).stat().st_size > 10_000


def test_predict_lists_broken_files_and_averages_chunks_of_long_ones(smoke_run, tmp_path):
  spec = synth.clip_spec(0, "test", 0)
  folder = tmp_path / "in"
  folder.mkdir()
  for i in range(3):
    s = synth.clip_spec(0, "test", i)
    sf.write(folder / f"good{i}.wav", synth.render(s, 0, 2.0), s.sample_rate)
  sf.write(folder / "long.flac", np.tile(synth.render(spec, 0, 10.0), (30, 1)), spec.sample_rate)  # 5 minutes
  (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
  out = tmp_path / "pred.csv"
  p = subprocess.run([sys.executable, "-m", "instruments_jax.predict", f"--workdir={smoke_run}", str(folder),
                      f"--output={out}"], capture_output=True, text=True)
  assert p.returncode == 1, p.stderr
  rows = {r.split(",")[0].rsplit("/", 1)[-1]: r.split(",") for r in out.read_text().splitlines()[1:]}
  assert set(rows) == {"good0.wav", "good1.wav", "good2.wav", "long.flac", "broken.wav"}
  for name in ("good0.wav", "good1.wav", "good2.wav", "long.flac"):
    assert rows[name][1] in instruments_jax.CLASSES
    probs = [float(v) for v in rows[name][4:8]]
    assert all(0 <= v <= 1 for v in probs) and instruments_jax.CLASSES[int(np.argmax(probs))] == rows[name][1]
  assert rows["long.flac"][3] == "4"  # 3 s cap / 0.75 s chunks
  assert rows["broken.wav"][-1].startswith("cannot read")
  assert "broken.wav" in p.stdout and "could not be read" in p.stdout


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


def test_exported_artifact_reproduces_apply(smoke_run, tmp_path):
  out = tmp_path / "model.jax"
  subprocess.run([sys.executable, "-m", "instruments_jax.export", f"--workdir={smoke_run}", f"--out={out}"],
                 check=True, capture_output=True)
  exported = jax.export.deserialize(bytearray(out.read_bytes()))
  clf = instruments_jax.load_classifier(str(smoke_run))
  samples = json.load(open(str(out) + ".json"))["samples"]
  assert samples == round(clf.config.prediction.inference_chunk_seconds * clf.sample_rate)
  for batch in (1, 5):
    wave = jnp.asarray(np.random.default_rng(batch).normal(size=(batch, samples)) * 0.1, jnp.float32)
    np.testing.assert_allclose(exported.call(wave), clf.apply(clf.params, wave), atol=1e-5)
