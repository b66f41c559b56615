"""Your own labels, end to end: train `smoke` on label sets other than the seed's, then evaluate, predict,
load_classifier and both exports, each with outputs of the right width and names."""

import csv
import json
from collections import Counter

import numpy as np
import pytest

from instruments_jax.configs import get_config
from instruments_jax.data import synth

pytestmark = pytest.mark.slow  # each case trains

EIGHT = synth.FAMILIES  # guitar, drum, violin, piano, flute, trumpet, cello, organ
NONE_OF_THE_SEEDS = ("flute", "cello", "organ")


def _first_with_two_of_each(classes) -> int:
  """The smallest train prefix holding at least 2 clips of every class (2-fold validation needs them)."""
  labels = synth.split_labels(0, "train", classes)
  return next(n for n in range(len(classes), len(labels))
              if len(Counter(labels[:n])) == len(classes) and min(Counter(labels[:n]).values()) >= 2)


def _write(root, classes, layout, multi_label=False, train=None, test=12):
  for split, limit in (("train", train or _first_with_two_of_each(classes)), ("test", test)):
    synth.write_split(str(root), split, seed=0, limit=limit, workers=1, classes=classes, layout=layout,
                      multi_label=multi_label)
  return root


def _train(root, workdir):
  from instruments_jax.train import train_and_evaluate

  cfg = get_config("smoke")
  cfg.data.path = str(root)
  cfg.data.data_sample = 1.0
  cfg.data.num_folds, cfg.data.validation_fold = 2, 1
  return train_and_evaluate(cfg, str(workdir))


def _through_everything(root, workdir, tmp_path, classes, multi):
  """Trains on `root`, then checks every tool downstream names `classes`, in order, and has their width."""
  import keras

  import instruments_jax
  from instruments_jax import evaluate, export, predict

  results = _train(root, workdir)
  assert np.isfinite(results["validation"]["loss"]) and np.isfinite(results["test"]["map"])
  saved = json.load(open(workdir / "config.json"))
  assert saved["data"]["classes"] == ",".join(classes)

  clf = instruments_jax.load_classifier(str(workdir))
  assert clf.classes == classes
  probs = clf.apply_log_mel(clf.params, np.zeros((2, clf.config.audio.mel_bins, 40), np.float32))
  assert probs.shape == (2, len(classes))

  m = evaluate.evaluate_run(str(workdir), split="test", out_dir=str(tmp_path))
  assert list(m["per_class"]) == list(classes) and m["confusion_matrix"]["classes"] == list(classes)
  assert m["multi_label"] == multi and 0 <= m["map"] <= 1
  assert (tmp_path / "confusion_matrix_test.png").stat().st_size > 5_000

  audio_dir = next(p for p in sorted(root.rglob("*.wav")))
  out = tmp_path / "pred.csv"
  assert predict.main(["--workdir", str(workdir), str(audio_dir.parent), "--output", str(out)]) == 0
  rows = list(csv.DictReader(open(out)))
  assert rows and list(rows[0])[5:5 + len(classes)] == list(classes) and rows[0]["label"] in classes

  export.main(["--workdir", str(workdir), "--out", str(tmp_path / "m.jax")])
  assert json.load(open(tmp_path / "m.jax.json"))["classes"] == list(classes)
  export.main(["--workdir", str(workdir), "--out", str(tmp_path / "m.keras"), "--format=keras"])
  assert export.keras_metadata(str(tmp_path / "m.keras"))["classes"] == list(classes)
  model = keras.saving.load_model(str(tmp_path / "m.keras"))
  x = np.random.default_rng(0).uniform(-80, 0, (2, clf.config.audio.mel_bins, 40, 1)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(model(x)), clf.apply_log_mel(clf.params, x[..., 0]), atol=1e-5)


def test_eight_embedded_families_in_class_folders(tmp_path):
  root = _write(tmp_path / "data", EIGHT, "folders")
  _through_everything(root, tmp_path / "run", tmp_path, EIGHT, multi=False)


def test_three_classes_none_of_them_the_seeds(tmp_path):
  root = _write(tmp_path / "data", NONE_OF_THE_SEEDS, "folders", test=9)
  _through_everything(root, tmp_path / "run", tmp_path, NONE_OF_THE_SEEDS, multi=False)


def test_multi_label_csv(tmp_path):
  root = _write(tmp_path / "data", synth.DEFAULT_CLASSES, "kaggle", multi_label=True, train=24)
  cells = [r["Class"] for r in csv.DictReader(open(root / "Metadata_Train.csv"))]
  assert all(len(c.split("|")) == 2 for c in cells)
  _through_everything(root, tmp_path / "run", tmp_path, synth.DEFAULT_CLASSES, multi=True)
