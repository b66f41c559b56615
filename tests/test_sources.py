import os
import shutil

import numpy as np
import pytest

from instruments_jax.data import sources, synth
from instruments_jax.data.synth import DEFAULT_CLASSES as CLASSES
from instruments_jax.data.audio import DataError


def test_kaggle_layout_reads_back_what_synth_wrote(kaggle_dir):
  ds = sources.open_dataset(str(kaggle_dir), "train")
  assert len(ds) == 24 and not ds.skipped
  expected = [CLASSES.index(l) for l in synth.split_labels(0, "train")[:24]]
  assert ds.labels.tolist() == expected
  for clip in ds.clips[:3]:
    spec = synth.clip_spec(0, "train", int(clip.name[-8:-4]))
    assert clip.sample_rate == spec.sample_rate and clip.channels == spec.channels
    assert abs(clip.duration - spec.duration) < 1e-3
  wave = ds.load(0, 0.5, 1.0, 44100)
  assert wave.shape == (44100,) and wave.dtype == np.float32 and np.abs(wave).max() > 0


def test_kaggle_test_csv_typo_maps_to_guitar(kaggle_dir):
  text = (kaggle_dir / "Metadata_Test.csv").read_text()
  assert "Sound_Guiatr" in text and "Sound_Guitar" not in text
  ds = sources.open_dataset(str(kaggle_dir), "test")
  truth = synth.split_labels(0, "test")[:12]
  assert ds.labels.tolist() == [CLASSES.index(l) for l in truth]
  assert ds.classes == ("guitar", "drum", "violin", "piano")
  assert sources.canonical_label("Sound_Guiatr") == "guitar"
  assert sources.canonical_label("Sound_Kazoo") == "kazoo"
  assert sources.canonical_label("  ") is None


def test_class_folder_layout(tmp_path, kaggle_dir):
  src = sources.open_dataset(str(kaggle_dir), "train")
  for clip in src.clips[:8]:
    d = tmp_path / ("Drums" if clip.tags[0] == "drum" else clip.tags[0])
    d.mkdir(exist_ok=True)
    shutil.copy(clip.path, d / os.path.basename(clip.path))
  ds = sources.open_dataset(str(tmp_path), "train")
  assert sorted(c.tags for c in ds.clips) == sorted(c.tags for c in src.clips[:8])
  assert sources.open_dataset(str(tmp_path), "test") is None


def test_missing_file_and_unknown_label_stop_with_the_row_named(tmp_path, kaggle_dir):
  shutil.copytree(kaggle_dir, tmp_path / "d")
  csv_path = tmp_path / "d" / "Metadata_Train.csv"
  csv_path.write_text(csv_path.read_text() + "nowhere.wav,Sound_Drum\n")
  with pytest.raises(DataError, match=r"row 26 \('nowhere.wav'\): file not found"):
    sources.open_dataset(str(tmp_path / "d"), "train")
  ds = sources.open_dataset(str(tmp_path / "d"), "train", skip_bad_files=True)
  assert len(ds) == 24 and ds.skipped[0][0] == "nowhere.wav"
  csv_path.write_text(csv_path.read_text().replace("nowhere.wav,Sound_Drum", "synth_train_0000.wav,"))
  with pytest.raises(DataError, match=r"row 26 \('synth_train_0000.wav'\): empty label ''"):
    sources.open_dataset(str(tmp_path / "d"), "train")
  csv_path.write_text(csv_path.read_text().replace("synth_train_0000.wav,\n", "synth_train_0000.wav,Sound_Kazoo\n"))
  with pytest.raises(DataError, match=r"row 26 .*label 'kazoo' is not one of the run's classes \(guitar, drum, "):
    sources.open_dataset(str(tmp_path / "d"), "train", classes=CLASSES)


def test_paths_escaping_the_data_root_are_never_opened(tmp_path, kaggle_dir):
  shutil.copytree(kaggle_dir, tmp_path / "d")
  csv_path = tmp_path / "d" / "Metadata_Train.csv"
  csv_path.write_text(csv_path.read_text() + "../../../etc/passwd,Sound_Drum\n/etc/hostname,Sound_Drum\n")
  with pytest.raises(DataError, match="escapes the data root"):
    sources.open_dataset(str(tmp_path / "d"), "train")
  ds = sources.open_dataset(str(tmp_path / "d"), "train", skip_bad_files=True)
  assert len(ds) == 24
  assert [(n, "refused, never opened" in why) for n, why in ds.skipped] == [("../../../etc/passwd", True),
                                                                          ("/etc/hostname", True)]


def test_seed_validation_split_is_stratified_fold_4_of_5():
  labels = sources.synth_dataset(0, "train").labels
  train, val = sources.kfold_split(labels, 5, 4, seed=0)
  assert (len(train), len(val)) == (2104, 525)  # the seed's log: 2104 train / 525 validation
  assert not set(train) & set(val)
  fractions = np.bincount(labels[val], minlength=4) / np.bincount(labels, minlength=4)
  assert np.allclose(fractions, 0.2, atol=0.01)
  again, _ = sources.kfold_split(labels, 5, 4, seed=0)
  assert np.array_equal(train, again)


def test_program_validation_holds_out_one_program_per_class():
  ds = sources.synth_dataset(0, "train", train_mix=synth.SOUNDFONT)
  train, val = sources.program_split(ds)
  assert len(train) + len(val) == len(ds) and not set(train) & set(val)
  programs = lambda idx: {(ds.clips[i].tags, synth.clip_spec(0, "train", int(i)).program) for i in idx[:400]}
  held = programs(val)
  assert len(held) == 4 and not held & programs(train)
  assert sorted(np.unique(ds.labels[val])) == [0, 1, 2, 3]


def test_program_validation_holds_out_one_voice_per_class_and_engine():
  ds = sources.synth_dataset(0, "train")  # every engine
  train, val = sources.program_split(ds)
  voices = lambda idx: {(ds.clips[i].tags, ds.synth_spec(int(i)).engine, ds.synth_spec(int(i)).program)
                        for i in idx[:600]}
  held = voices(val)
  assert len(held) == 4 * 3 and not held & voices(train)  # 4 classes x 3 engines, one voice each
  assert {e for _, e, _ in held} == {"soundfont", "physical", "spectral"}


def test_a_csv_with_a_header_and_no_rows_is_named(tmp_path, kaggle_dir):
  shutil.copytree(kaggle_dir, tmp_path / "d")
  csv_path = tmp_path / "d" / "Metadata_Train.csv"
  csv_path.write_text(csv_path.read_text().splitlines()[0] + "\n")
  with pytest.raises(DataError, match=r"Metadata_Train.csv: the CSV has a header and no rows"):
    sources.open_dataset(str(tmp_path / "d"), "train")


def test_macos_metadata_beside_class_folders_is_ignored(tmp_path, kaggle_dir):
  src = sources.open_dataset(str(kaggle_dir), "train")
  for clip in src.clips[:4]:
    d = tmp_path / clip.tags[0]
    d.mkdir(exist_ok=True)
    shutil.copy(clip.path, d / os.path.basename(clip.path))
    (d / ("._" + os.path.basename(clip.path))).write_bytes(b"\x00\x05\x16\x07 Mac OS X resource fork")
  (tmp_path / "__MACOSX" / "guitar").mkdir(parents=True)
  (tmp_path / "__MACOSX" / "guitar" / "._x.wav").write_bytes(b"\x00\x05\x16\x07")
  ds = sources.open_dataset(str(tmp_path), "train")  # no bad clip, no "not a class"
  assert sorted(c.name for c in ds.clips) == sorted(
      os.path.join(c.tags[0], os.path.basename(c.path)) for c in src.clips[:4])


def test_skip_bad_files_that_leaves_no_clip_is_an_error(tmp_path):
  d = tmp_path / "drum"
  d.mkdir()
  (d / "a.wav").write_bytes(b"")
  (d / "b.wav").write_bytes(b"not audio at all")
  with pytest.raises(DataError, match=r"all 2 file\(s\) are bad"):
    sources.open_dataset(str(tmp_path), "train", skip_bad_files=True)
