"""metrics: chunk predictions averaged per clip, and the scores of a hand-made example."""

import numpy as np
import pytest

from instruments_jax import metrics
from instruments_jax.configs import get_config
from instruments_jax.data import sources
from instruments_jax.data.audio import DataError


def test_scores_of_a_hand_made_example():
  # 4 clips, classes 0..3; clip 3 (piano) is predicted as violin
  probs = np.array([[0.9, 0.1, 0.0, 0.0], [0.1, 0.8, 0.1, 0.0], [0.0, 0.1, 0.7, 0.2], [0.0, 0.0, 0.6, 0.4]])
  m = metrics.classification_metrics(probs, np.array([0, 1, 2, 3]), "bce", ("guitar", "drum", "violin", "piano"),
                                     detailed=True)
  assert m["accuracy"] == 0.75 and m["clips"] == 4 and not m["multi_label"]
  assert m["confusion_matrix"]["rows_true_cols_predicted"] == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
  # F1: guitar 1, drum 1, violin 2/3 (precision 1/2, recall 1), piano 0
  assert m["macro_f1"] == pytest.approx((1 + 1 + 2 / 3 + 0) / 4)
  assert m["per_class"]["violin"]["precision"] == 0.5 and m["per_class"]["piano"]["recall"] == 0.0
  assert m["roc_auc"] == 1.0  # each class's own clip still ranks first in its column
  assert m["map"] == 1.0 and m["per_class"]["piano"]["ap"] == 1.0
  # at probability >= 0.5 each of the first three clips is right; the piano clip is called violin (0.6)
  assert m["per_class"]["piano"]["f1_at_threshold"] == 0.0 and m["per_class"]["violin"]["f1_at_threshold"] == 2 / 3


def test_multi_label_scores_of_a_hand_made_example():
  probs = np.array([[0.9, 0.8, 0.1], [0.2, 0.7, 0.6], [0.6, 0.1, 0.2]])
  targets = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]], np.float32)
  m = metrics.classification_metrics(probs, targets, "bce", ("a", "b", "c"), threshold=0.5, detailed=True)
  assert m["multi_label"] and m["clips"] == 3
  assert m["accuracy"] == pytest.approx(1 / 3)  # only clip 0's label set is exactly right at 0.5
  assert m["macro_f1"] == pytest.approx(2 / 3)  # a: 1, b: 1, c: 0 (one false alarm, one miss)
  # AP: a and b rank their positives first; c's only positive (0.2) ranks behind a negative (0.6)
  assert m["map"] == pytest.approx((1 + 1 + 0.5) / 3) and m["per_class"]["c"]["ap"] == pytest.approx(0.5)
  assert m["confusion_matrix"]["rows_class"][2] == [0, 1, 1, 1]  # tp, fn, fp, tn
  assert m["per_class"]["a"]["support"] == 2 and m["per_class"]["c"]["support"] == 1
  bce = -np.mean(targets * np.log(probs) + (1 - targets) * np.log(1 - probs), axis=1).mean()
  assert m["loss"] == pytest.approx(bce)


def _clips(durations):
  return sources.Dataset("t", [sources.Clip(f"c{i}", (), d, 44100, 1, f"/nonexistent/c{i}.wav")
                               for i, d in enumerate(durations)])


def test_chunk_predictions_are_averaged_per_clip(monkeypatch):
  cfg = get_config("smoke")  # 0.75 s chunks
  cfg.prediction.max_inference_chunk_seconds = 3.0
  ds = _clips([0.5, 2.0])  # 1 chunk and 3 chunks
  monkeypatch.setattr(sources.Dataset, "load",
                      lambda self, i, start, seconds, sr: np.full(int(round(seconds * sr)), 0.01 * (1 + start),
                                                                  np.float32))
  seen = []

  def predict_fn(x):  # the k-th chunk of the whole run gets probability k / 10 for every class
    out = np.zeros((len(x), 4))
    for row in range(len(x)):
      seen.append(len(seen))
      out[row] = len(seen) / 10
    return out

  probs, failures = metrics.predict_clips(predict_fn, ds, np.arange(2), cfg)
  assert not failures and len(seen) >= 4
  # chunks in plan order: clip 0 -> chunk 1; clip 1 -> chunks 2, 3, 4 (one batch of 16 holds all four)
  np.testing.assert_allclose(probs, [[0.1] * 4, [0.3] * 4])


def test_a_clip_that_fails_to_decode_raises_or_is_reported(monkeypatch):
  cfg = get_config("smoke")
  ds = _clips([1.0, 1.0])

  def load(self, i, start, seconds, sr):
    if i == 1:
      raise DataError("cannot read 'c1.wav': the file is empty")
    return np.zeros(int(round(seconds * sr)), np.float32)

  monkeypatch.setattr(sources.Dataset, "load", load)
  predict_fn = lambda x: np.full((len(x), 4), 0.5)
  with pytest.raises(DataError, match="c1.wav"):
    metrics.predict_clips(predict_fn, ds, np.arange(2), cfg)
  probs, failures = metrics.predict_clips(predict_fn, ds, np.arange(2), cfg, tolerate_errors=True)
  assert failures == {1: "cannot read 'c1.wav': the file is empty"}
  assert np.isnan(probs[1]).all() and np.allclose(probs[0], 0.5)
