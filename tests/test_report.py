"""The listening report: saliency maps, and the HTML page checked in a real (headless) Chromium."""

import os

import numpy as np
import pytest

import chromium  # tests/chromium.py


def _untrained_classifier():
  """A Classifier of a freshly built smoke model: saliency needs a model, not a trained one."""
  import jax.numpy as jnp

  from instruments_jax.classifier import Classifier
  from instruments_jax.configs import get_config
  from instruments_jax.model import build_model

  cfg = get_config("smoke")
  model = build_model(cfg, load_weights=False)
  params = {"params": [jnp.asarray(v.value) for v in model.trainable_variables],
            "model_state": [jnp.asarray(v.value) for v in model.non_trainable_variables]}
  return Classifier(cfg, model, params, 0)


def test_saliency_is_finite_of_the_input_shape_and_depends_on_the_class():
  from instruments_jax import report
  from instruments_jax.data import features, synth

  clf = _untrained_classifier()
  spec = synth.clip_spec(0, "test", 3)
  from instruments_jax.data import audio

  wave = audio.to_mono(synth.render(spec, 0.0, 0.75), spec.sample_rate, 44100, 33075)
  mel = features.log_mel(wave, clf.config.audio)
  grad = report.saliency_fn(clf)
  maps = [np.asarray(grad(mel, k)) for k in range(len(clf.classes))]
  for m in maps:
    assert m.shape == mel.shape and np.isfinite(m).all() and np.abs(m).max() > 0
  assert not np.allclose(maps[0], maps[1]) and not np.allclose(maps[2], maps[3])


def _browser():
  if chromium.find() is None:
    if os.environ.get("CI"):
      pytest.fail("CI needs Chromium for the report test (.ci/run installs Debian's chromium)")
    pytest.skip("no Chromium on PATH (apt-get install chromium)")
  return chromium.Browser()


AUDIO_DURATIONS = """Promise.all([...document.querySelectorAll('audio')].map(a => a.readyState >= 1 ? a.duration :
  new Promise(r => { a.addEventListener('loadedmetadata', () => r(a.duration)); a.addEventListener('error', () => r(-1));
                     setTimeout(() => r(-2), 20000); })))"""
VISIBLE = "[...document.querySelectorAll('tr.clip')].filter(r => r.style.display !== 'none').map(r => r.dataset.name)"


def _choose(browser, select, value):
  browser.eval(f"(() => {{ const s = document.getElementById('{select}'); s.value = '{value}'; "
               f"s.dispatchEvent(new Event('change')); }})()")


@pytest.mark.slow
def test_evaluation_report_in_a_browser(smoke_run, tmp_path):
  from instruments_jax import evaluate

  m = evaluate.evaluate_run(str(smoke_run), split="test", out_dir=str(tmp_path))
  assert m["report"] == str(tmp_path / "report_test.html")
  b = _browser()
  try:
    b.open(m["report"])
    durations = b.eval(AUDIO_DURATIONS)
    assert len(durations) == 16 and all(abs(d - 0.75) < 0.05 for d in durations), durations  # 8 worst + 8 best
    by_loss = b.eval(VISIBLE)
    losses = b.eval("[...document.querySelectorAll('tr.clip')].map(r => parseFloat(r.dataset.loss))")
    assert losses == sorted(losses, reverse=True)  # highest loss first by default
    _choose(b, "sort", "loss-asc")
    assert b.eval(VISIBLE) == by_loss[::-1]
    truth = b.eval("Object.fromEntries([...document.querySelectorAll('tr.clip')].map(r => [r.dataset.name, "
                   "JSON.parse(r.dataset.labels)]))")
    # each class shows exactly its clips (which classes the 16 clips hold depends on the model), and
    # the worst clip's class leaves its clip in view
    counts = {}
    for label in b.eval("[...document.querySelectorAll('#filter option')].map(o => o.value).filter(v => v)"):
      _choose(b, "filter", label)
      counts[label] = b.eval(VISIBLE)
      assert sorted(counts[label]) == sorted(n for n in truth if label in truth[n]), label
    assert set().union(*counts.values()) == set(truth) and len(truth) == 16  # every clip under each of its labels
    label = truth[by_loss[0]][0]
    _choose(b, "filter", label)
    shown = b.eval(VISIBLE)
    assert by_loss[0] in shown and len(shown) == len(counts[label])
    assert b.eval("document.getElementById('count').textContent") == f"{len(shown)} of 16 clips"
    b.screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 20_000
    assert b.errors == []
  finally:
    b.close()


@pytest.mark.slow
def test_prediction_report_in_a_browser(smoke_run, tmp_path):
  import soundfile as sf

  from instruments_jax import predict
  from instruments_jax.data import synth

  for i in range(3):
    spec = synth.clip_spec(0, "test", i)
    sf.write(tmp_path / f"clip{i}.wav", synth.render(spec, 0.0, 2.0), spec.sample_rate)
  (tmp_path / "broken.wav").write_bytes(b"not audio")
  page = tmp_path / "labels.html"
  assert predict.main(["--workdir", str(smoke_run), str(tmp_path), "--report", str(page)]) == 1  # broken.wav
  b = _browser()
  try:
    b.open(str(page))
    assert sorted(b.eval(VISIBLE)) == [str(tmp_path / f"clip{i}.wav") for i in range(3)]
    assert all(abs(d - 0.75) < 0.05 for d in b.eval(AUDIO_DURATIONS))  # the first inference chunk
    assert "broken.wav" in b.eval("document.body.innerText")  # listed, not dropped
    conf = b.eval("[...document.querySelectorAll('tr.clip')].map(r => parseFloat(r.dataset.conf))")
    assert conf == sorted(conf)  # the least confident first
    _choose(b, "sort", "conf-desc")
    assert b.eval("[...document.querySelectorAll('tr.clip')].map(r => parseFloat(r.dataset.conf))") == conf[::-1]
    assert b.errors == []
  finally:
    b.close()
