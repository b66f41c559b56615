"""`python -m instruments_jax.predict`: files in, labels out; broken files listed; long files chunked."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import instruments_jax
from instruments_jax.data import synth
from instruments_jax.data.synth import DEFAULT_CLASSES as CLASSES

pytestmark = pytest.mark.slow  # the smoke_run fixture trains


def _predict(smoke_run, folder, out, *extra):
  p = subprocess.run([sys.executable, "-m", "instruments_jax.predict", f"--workdir={smoke_run}", str(folder),
                      f"--output={out}", *extra], capture_output=True, text=True)
  rows = {r["file"].rsplit("/", 1)[-1]: r for r in csv.DictReader(open(out))} if out.exists() else {}
  return p, rows


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  folder = tmp_path_factory.mktemp("in")
  for i in range(3):
    s = synth.clip_spec(0, "test", i)
    sf.write(folder / f"good{i}.wav", synth.render(s, 0, 2.0), s.sample_rate)
  spec = synth.clip_spec(0, "test", 0)
  sf.write(folder / "long.flac", np.tile(synth.render(spec, 0, 10.0), (30, 1)), spec.sample_rate)  # 5 minutes
  (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
  return folder


def test_predict_lists_broken_files_and_averages_chunks_of_long_ones(smoke_run, folder, tmp_path):
  p, rows = _predict(smoke_run, folder, tmp_path / "pred.csv")
  assert p.returncode == 1, p.stderr
  assert set(rows) == {"good0.wav", "good1.wav", "good2.wav", "long.flac", "broken.wav"}
  for name in ("good0.wav", "good1.wav", "good2.wav", "long.flac"):
    probs = [float(rows[name][c]) for c in CLASSES]
    assert all(0 <= v <= 1 for v in probs)
    assert rows[name]["label"] == CLASSES[int(np.argmax(probs))]
  assert rows["long.flac"]["chunks"] == "2"  # smoke's 1.5 s cap / 0.75 s chunks
  assert rows["broken.wav"]["error"].startswith("cannot read")
  assert "broken.wav" in p.stdout and "could not be read" in p.stdout


@pytest.mark.parametrize("threshold", [0.0, 0.3, 1.0])
def test_labels_lists_every_class_at_or_above_the_threshold(smoke_run, folder, tmp_path, threshold):
  _, rows = _predict(smoke_run, folder, tmp_path / "pred.csv", f"--probability_threshold={threshold}")
  for name in ("good0.wav", "good1.wav", "long.flac"):
    listed = set(filter(None, rows[name]["labels"].split(";")))
    if threshold == 0.0:
      assert listed == set(CLASSES)
    elif threshold == 1.0:
      assert listed == set()  # sigmoid probabilities stay below 1
    else:
      assert listed == {c for c in CLASSES if float(rows[name][c]) >= 0.3}


def test_a_threshold_outside_0_1_exits_2(smoke_run, folder, tmp_path):
  p, _ = _predict(smoke_run, folder, tmp_path / "x.csv", "--probability_threshold=1.5")
  assert p.returncode == 2 and "probability_threshold" in p.stderr


def test_nothing_to_label_exits_1_naming_the_folder(tmp_path):
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "notes.txt").write_text("no audio here")
  p = subprocess.run([sys.executable, "-m", "instruments_jax.predict", f"--workdir={tmp_path / 'no_run'}",
                      str(tmp_path / "empty")], capture_output=True, text=True)
  assert p.returncode == 1 and "nothing to label" in p.stderr and "empty" in p.stderr
  assert "Traceback" not in p.stderr
