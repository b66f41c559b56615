"""Any label set: classes read from the data or listed, multi-label cells and columns, balanced sampling."""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from instruments_jax import configs
from instruments_jax.configs import get_config
from instruments_jax.data import inspect, pipeline, sources
from instruments_jax.data.audio import DataError


def _tone(path, seed, seconds=1.0, rate=22050):
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * rate)) / rate
  sf.write(path, (0.3 * np.sin(2 * np.pi * rng.uniform(110, 1760) * t)).astype(np.float32), rate)


def _folders(root, counts: dict):
  """Writes a class-folder dataset: counts[name] short tones in root/name/."""
  for k, (name, n) in enumerate(counts.items()):
    (root / name).mkdir(parents=True)
    for j in range(n):
      _tone(root / name / f"{j}.wav", 100 * k + j)
  return root


def _kaggle(root, rows, test_rows=None, header="FileName,Class"):
  """Writes a Kaggle-layout CSV (rows: "file,cells...") and a short tone for every file it names."""
  audio = root / "Train_submission" / "Train_submission"
  audio.mkdir(parents=True)
  for k, r in enumerate(rows):
    _tone(audio / r.split(",")[0], k)
  for k, r in enumerate(test_rows or []):  # the loader also looks in the data root
    _tone(root / r.split(",")[0], 100 + k)
  (root / "Metadata_Train.csv").write_text("\n".join([header] + rows) + "\n")
  if test_rows is not None:
    (root / "Metadata_Test.csv").write_text("\n".join([header] + test_rows) + "\n")
  return root


def _cfg(path, **data):
  cfg = get_config("smoke")
  cfg.data.path = str(path)
  cfg.data.data_sample = 1.0
  cfg.data.num_folds = 2
  cfg.data.validation_fold = 1
  for k, v in data.items():
    setattr(cfg.data, k, v)
  return cfg


def test_auto_reads_the_classes_of_the_folders_in_a_stable_order(tmp_path):
  root = _folders(tmp_path, {"Zither": 2, "banjo": 2, "flute": 2, "Guitars": 2})
  ds = sources.open_dataset(str(root), "train")
  # the embedded set's families first (guitar, then flute), then the rest alphabetically
  assert ds.classes == ("guitar", "flute", "banjo", "zither")
  assert ds.labels.tolist() == [0, 0, 3, 3, 2, 2, 1, 1]  # folders in sorted order: Guitars, Zither, banjo, flute
  assert not ds.multi_label and ds.support().tolist() == [2, 2, 2, 2]


def test_a_listed_label_set_fixes_the_order_and_rejects_other_labels(tmp_path):
  root = _folders(tmp_path, {"banjo": 2, "kazoo": 2, "zither": 2})
  ds = sources.open_split(_cfg(root, classes="zither,Banjo,kazoo").data, "train")
  assert ds.classes == ("zither", "banjo", "kazoo") and ds.labels.tolist() == [1, 1, 2, 2, 0, 0]
  with pytest.raises(DataError, match=r"folder .*kazoo' is not one of the run's classes \(zither, banjo\)"):
    sources.open_split(_cfg(root, classes="zither,banjo").data, "train")
  ds = sources.open_split(_cfg(root, classes="zither,banjo", skip_bad_files=True).data, "train")
  assert len(ds) == 4 and sorted(n for n, _ in ds.skipped) == ["kazoo/0.wav", "kazoo/1.wav"]


def test_a_test_label_outside_the_training_classes_names_its_row(tmp_path):
  root = _kaggle(tmp_path, [f"t{i}.wav,Sound_{c}" for i, c in enumerate(["Banjo", "Kazoo"] * 2)],
                 ["a.wav,Sound_Banjo", "b.wav,Sound_Oboe"])
  cfg = _cfg(root)
  train, _, _ = sources.train_validation(cfg.data)
  assert train.classes == ("banjo", "kazoo")
  cfg.data.classes = ",".join(train.classes)  # what training writes to config.json
  with pytest.raises(DataError, match=r"Metadata_Test.csv row 3 \('b.wav'\): label 'oboe' is not one of the run's "
                                      r"classes \(banjo, kazoo\)"):
    sources.open_split(cfg.data, "test")
  cfg.data.skip_bad_files = True
  test = sources.open_split(cfg.data, "test")
  assert [c.name for c in test.clips] == ["a.wav"] and test.skipped[0][0] == "b.wav"


def test_too_few_classes_or_clips_per_class_stop_before_training(tmp_path):
  one = _folders(tmp_path / "one", {"banjo": 4})
  with pytest.raises(DataError, match=r"found 1 class \(banjo\); a classifier needs at least 2"):
    sources.train_validation(_cfg(one).data)
  few = _folders(tmp_path / "few", {"banjo": 4, "kazoo": 1, "oboe": 2})
  with pytest.raises(DataError, match=r"class kazoo \(1\) has fewer than data.num_folds=2 clips"):
    sources.train_validation(_cfg(few).data)
  with pytest.raises(DataError, match=r"classes kazoo \(1\), oboe \(2\) have fewer than data.num_folds=3"):
    sources.train_validation(_cfg(few, num_folds=3).data)


def test_multi_label_cells_and_class_columns(tmp_path):
  root = _kaggle(tmp_path / "cells", ["a.wav,guitar|piano", "b.wav,Sound_Drum", "c.wav,piano | drum", "d.wav,guitar"])
  ds = sources.open_dataset(str(root), "train")
  assert ds.multi_label and ds.classes == ("guitar", "drum", "piano")
  np.testing.assert_array_equal(ds.targets, [[1, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0]])
  assert ds.support().tolist() == [2, 2, 2]
  assert not sources.open_dataset(str(root), "train", label_separator="").multi_label  # one label per cell
  cols = _kaggle(tmp_path / "cols", ["a.wav,1,0,1", "b.wav,0,0,0", "c.wav,0,1,0"], header="FileName,Oboe,Harp,Bell")
  ds = sources.open_dataset(str(cols), "train", label_columns=("Oboe", "Harp", "Bell"))
  assert ds.multi_label and ds.classes == ("oboe", "harp", "bell")  # the columns' order
  np.testing.assert_array_equal(ds.targets, [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
  (cols / "Metadata_Train.csv").write_text("FileName,Oboe,Harp,Bell\na.wav,1,0,yes please\n")
  with pytest.raises(DataError, match=r"row 2 \('a.wav'\): column 'Bell' holds 'yes please'; a class column holds 1 "):
    sources.open_dataset(str(cols), "train", label_columns=("Oboe", "Harp", "Bell"))


def test_softmax_on_multi_label_data_is_a_config_error(tmp_path):
  from instruments_jax.train import load_data

  root = _kaggle(tmp_path, ["a.wav,guitar|piano", "b.wav,piano", "c.wav,guitar", "d.wav,piano|guitar"])
  cfg = _cfg(root)
  cfg.train.loss = "softmax"
  with pytest.raises(configs.ConfigError, match=r"train.loss='softmax': the training data is multi-label \(2 clip"):
    load_data(cfg)


def test_config_rules_for_the_label_fields():
  cfg = get_config("smoke")
  for value, why in (("guitar", "must name 2 or more"), ("guitar,,drum", "none empty"),
                     ("guitar,Guitar", "names guitar more than once")):
    cfg.data.classes = value
    with pytest.raises(configs.ConfigError, match=why):
      configs.validate(cfg)
  cfg.data.classes = "auto"
  cfg.data.sampling = "balanced"
  cfg.data.length_buckets = (5.0,)
  with pytest.raises(configs.ConfigError, match="cannot also hold every class equally"):
    configs.validate(cfg)


def test_balanced_batches_hold_every_class_equally_and_see_rare_clips_before_repeats():
  labels = np.array([0] * 100 + [1] * 10)  # 10:1
  order = pipeline.balanced_order(labels, steps=20, batch_size=8, seed=[3, 0])
  batches = labels[order].reshape(20, 8)
  assert (batches.sum(axis=1) == 4).all()  # 4 of each class in every batch of 8
  rare = order[labels[order] == 1]
  assert sorted(rare[:10]) == list(range(100, 110))  # each rare clip once before any repeats
  np.testing.assert_array_equal(order, pipeline.balanced_order(labels, 20, 8, [3, 0]))
  three = pipeline.balanced_order(np.array([0] * 50 + [1] * 5 + [2] * 5), steps=30, batch_size=4, seed=1)
  counts = np.stack([np.bincount(np.array([0] * 50 + [1] * 5 + [2] * 5)[b], minlength=3) for b in three.reshape(30, 4)])
  assert (counts.max(axis=1) - counts.min(axis=1) <= 1).all()  # 4 slots over 3 classes: 2/1/1 in some order


def test_balanced_training_batches_from_an_imbalanced_folder_set(tmp_path):
  root = _folders(tmp_path, {"banjo": 20, "kazoo": 2})
  cfg = _cfg(root, sampling="balanced", num_workers=0)
  ds = sources.open_split(cfg.data, "train")
  batches = list(pipeline.train_batches(ds, np.arange(len(ds)), cfg, seed=0, epochs=2))
  assert len(batches) == 2 * (22 // 4)
  freq = np.mean([np.bincount(b["y"], minlength=2) / 4 for b in batches], axis=0)
  np.testing.assert_allclose(freq, [0.5, 0.5])  # natural order would give 20:2


def test_balanced_batches_continue_the_same_from_a_saved_iterator_state(tmp_path):
  root = _folders(tmp_path, {"banjo": 20, "kazoo": 2})
  cfg = _cfg(root, sampling="balanced", num_workers=0)
  ds = sources.open_split(cfg.data, "train")
  key = lambda b: (b["y"].tolist(), hash(b["x"].tobytes()))  # which clips, and which windows of them
  straight = [key(b) for b in pipeline.train_batches(ds, np.arange(len(ds)), cfg, seed=5, epochs=2)]
  it = iter(pipeline.train_batches(ds, np.arange(len(ds)), cfg, seed=5, epochs=2))
  head = [key(next(it)) for _ in range(3)]
  again = iter(pipeline.train_batches(ds, np.arange(len(ds)), cfg, seed=5, epochs=2))
  again.set_state(it.get_state())  # what a checkpoint holds
  assert head + [key(b) for b in again] == straight and len(straight) == 10


def test_inspect_shows_per_class_support_and_suggests_balanced_sampling(tmp_path, capsys):
  root = _folders(tmp_path, {"banjo": 8, "kazoo": 2})
  assert inspect.main([str(root), "--headers_only"]) == 0
  out = capsys.readouterr().out
  assert "banjo        8   80%" in out and "kazoo        2   20%" in out
  assert "2 classes; the largest has 4.0x the clips of the smallest; consider --config.data.sampling=balanced" in out


def test_a_run_written_before_data_classes_loads_with_the_seed_classes(tmp_path):
  import json

  from instruments_jax import rundir

  cfg = get_config("smoke").to_dict()
  del cfg["data"]["classes"]
  (tmp_path / "config.json").write_text(json.dumps(cfg))
  assert rundir.load_config(str(tmp_path)).data.classes == "guitar,drum,violin,piano"
