import csv
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from instruments_jax.data import sources, synth


def test_split_sizes_match_the_seed_dataset():
  train = Counter(synth.split_labels(0, "train"))
  assert sum(train.values()) == 2629
  assert sorted(train.values()) == [529, 700, 700, 700]
  assert Counter(synth.split_labels(0, "test")) == {"guitar": 20, "drum": 20, "violin": 20, "piano": 20}


def test_clip_is_a_pure_function_of_seed_split_and_index():
  a, b = synth.clip_spec(0, "train", 17), synth.clip_spec(0, "train", 17)
  assert np.array_equal(a.notes, b.notes) and a.duration == b.duration
  assert np.array_equal(synth.render(a, 1.0, 1.5), synth.render(b, 1.0, 1.5))
  assert not np.array_equal(synth.clip_spec(1, "train", 17).notes, a.notes)


def test_clips_vary_like_real_recordings():
  specs = [synth.clip_spec(0, "train", i) for i in range(400)]
  durations = np.array([s.duration for s in specs])
  assert 10 < np.median(durations) < 18
  assert durations.max() > 60
  assert {s.sample_rate for s in specs} == {22050, 44100, 48000}
  assert {s.channels for s in specs} == {1, 2}
  for label in ("piano", "guitar", "violin", "drum"):
    of_class = [s for s in specs if s.label == label]
    assert len({s.program for s in of_class}) >= 2, label
    assert len({s.style for s in of_class}) >= 3, label
  assert all(len(s.notes) > 0 for s in specs)


def test_window_render_matches_the_same_stretch_of_the_whole_clip():
  spec = synth.clip_spec(0, "train", 3)
  full = synth.render(spec)
  assert full.shape == (round(spec.duration * spec.sample_rate), spec.channels)
  sr = spec.sample_rate
  window = synth.render(spec, 3.0, 2.0)[:, 0]
  segment = full[3 * sr:5 * sr, 0]
  assert np.corrcoef(segment, window)[0, 1] > 0.8


def test_unseen_split_uses_programs_never_in_train():
  train = {(s.label, s.program) for s in (synth.clip_spec(0, "train", i) for i in range(300))}
  unseen = {(s.label, s.program) for s in (synth.clip_spec(0, "unseen", i) for i in range(80))}
  assert not train & unseen


@pytest.mark.slow
def test_cli_writes_test_split_in_kaggle_layout_with_the_typo(tmp_path):
  subprocess.run([sys.executable, "-m", "instruments_jax.data.synth", f"--out={tmp_path}", "--split=test"],
                 check=True, capture_output=True)
  rows = list(csv.DictReader(open(tmp_path / "Metadata_Test.csv")))
  assert len(rows) == 80 and set(rows[0]) == {"FileName", "Class"}
  assert Counter(r["Class"] for r in rows)["Sound_Guiatr"] == 20
  assert len(list((tmp_path / "Test_submission" / "Test_submission").glob("*.wav"))) == 80
  ds = sources.open_dataset(str(tmp_path), "test")
  assert Counter(ds.labels.tolist()) == {0: 20, 1: 20, 2: 20, 3: 20}
