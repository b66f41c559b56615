"""Every bad-input case of the data contract, in one Kaggle-layout folder beside good files."""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from instruments_jax.configs import get_config
from instruments_jax.data import audio, inspect, sources
from instruments_jax.data.audio import DataError

AUDIO_DIR = "Train_submission/Train_submission"
# file (or CSV row) -> a phrase its reason must hold
BAD = {
    "empty.wav": "the file is empty",
    "zero_samples.wav": "holds no audio samples",
    "truncated_header.wav": "cannot read",
    "text.wav": "cannot read",
    "image.wav": "cannot read",
    "nan.wav": "NaN or infinite",
    "inf.wav": "NaN or infinite",
    "missing.wav": "file not found",
    "synth_train_0001.wav": "duplicate of row 3",
    "nolabel.wav": "empty label ''",
    "../../etc/passwd": "escapes the data root",
    "/etc/passwd": "escapes the data root",
}
if os.geteuid() != 0:  # root reads files whatever their permissions
  BAD["unreadable.wav"] = "cannot read"


@pytest.fixture(scope="module")
def messy_dir(tmp_path_factory, kaggle_dir):
  """The kaggle fixture's 24 good clips, plus every bad case, with a BOM, CRLF line ends and an extra column."""
  root = tmp_path_factory.mktemp("messy")
  shutil.copytree(kaggle_dir, root, dirs_exist_ok=True)
  d = root / AUDIO_DIR
  good = (d / "synth_train_0000.wav").read_bytes()
  (d / "empty.wav").write_bytes(b"")
  sf.write(d / "zero_samples.wav", np.zeros((0, 1), np.float32), 22050)
  (d / "truncated_header.wav").write_bytes(good[:20])
  (d / "text.wav").write_text("FileName,Class\nthis is not audio\n")
  (d / "image.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
  wave = np.sin(np.arange(22050) / 10).astype(np.float32)
  for name, value in (("nan.wav", np.nan), ("inf.wav", np.inf)):
    w = wave.copy()
    w[1000] = value
    sf.write(d / name, w, 22050, subtype="FLOAT")
  sf.write(d / "silent.wav", np.zeros(22050, np.float32), 22050)  # valid: silence trains
  sf.write(d / "nolabel.wav", wave, 22050)
  sf.write(d / "unreadable.wav", wave, 22050)
  os.chmod(d / "unreadable.wav", 0)
  rows = (root / "Metadata_Train.csv").read_text().splitlines()
  rows = [rows[0] + ",Notes"] + [r + ",ok" for r in rows[1:]]  # an extra column is ignored
  rows += [f"{n},Sound_Drum,bad" for n in BAD if n not in ("nolabel.wav", "synth_train_0001.wav")]
  rows += ["synth_train_0001.wav,Sound_Piano,again", "nolabel.wav,,x", "silent.wav,Sound_Drum,fine"]
  (root / "Metadata_Train.csv").write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
  return root


def test_inspect_lists_every_bad_file_with_its_reason_and_exits_1(messy_dir, capsys):
  assert inspect.main([str(messy_dir)]) == 1
  out = capsys.readouterr().out
  listed = [l for l in out.splitlines() if l.startswith("  [train] ")]
  assert len(listed) == len(BAD), out
  for name, phrase in BAD.items():
    line = next(l for l in listed if l.startswith(f"  [train] {name}: "))
    assert phrase in line, line
  assert "silent.wav" not in "\n".join(listed)
  assert f"bad files: {len(BAD)}" in out
  assert next(l for l in out.splitlines() if l.startswith("total")).split() == ["total", "25", "12"]
  assert "sample rate:" in out and "duration s:" in out


def test_inspect_exits_0_on_a_clean_dataset(kaggle_dir, capsys):
  assert inspect.main([str(kaggle_dir)]) == 0
  assert "bad files: 0" in capsys.readouterr().out


def test_default_policy_stops_naming_the_file_the_row_and_the_reason(messy_dir):
  with pytest.raises(DataError) as e:
    sources.open_dataset(str(messy_dir), "train")
  assert "Metadata_Train.csv row 26 ('empty.wav')" in str(e.value) and "the file is empty" in str(e.value)
  assert "skip_bad_files=true" in str(e.value)


def test_skip_keeps_the_good_files_and_lists_every_skipped_one(messy_dir):
  ds = sources.open_dataset(str(messy_dir), "train", skip_bad_files=True)
  assert len(ds) == 25
  assert sorted(n for n, _ in ds.skipped) == sorted(BAD)
  assert ds.clips[0].name == "synth_train_0000.wav"
  assert [c.name for c in ds.clips].count("synth_train_0001.wav") == 1  # the first row keeps it


@pytest.mark.slow
def test_training_stops_by_default_and_skips_with_the_list_in_the_workdir(messy_dir, tmp_path):
  from instruments_jax.train import train_and_evaluate

  cfg = get_config("smoke")
  cfg.data.path = str(messy_dir)
  cfg.data.data_sample = 1.0
  cfg.data.num_folds, cfg.data.validation_fold = 3, 2  # the kaggle fixture has 3 piano clips
  with pytest.raises(DataError, match="empty.wav"):
    train_and_evaluate(cfg, str(tmp_path / "strict"))
  assert not os.path.exists(tmp_path / "strict" / "metrics.jsonl")
  cfg.data.skip_bad_files = True
  results = train_and_evaluate(cfg, str(tmp_path / "lenient"))
  assert np.isfinite(results["validation"]["loss"])
  listed = (tmp_path / "lenient" / "skipped_files.txt").read_text().splitlines()
  assert sorted(l.split("\t")[0] for l in listed) == sorted(BAD)


def test_silent_clip_gives_finite_features():
  from instruments_jax.data import features

  mel = features.log_mel(np.zeros(44100, np.float32), get_config("smoke").audio)
  assert np.isfinite(mel).all()


def test_nan_in_a_file_is_found_when_a_window_is_decoded(messy_dir):
  with pytest.raises(DataError, match="NaN or infinite"):
    audio.load_window(str(messy_dir / AUDIO_DIR / "nan.wav"), 0.0, 1.0, 22050)
