"""Clip predictions from chunk predictions, and their scores.

`predict_clips` runs any `predict_fn(x) -> probabilities` over a split's fixed
inference chunks and averages them per clip (the recipe's fixed-chunk
inference); `classification_metrics` scores the averaged probabilities. The
trainer, `evaluate` and `predict` all use these two, and none of them is
imported here.
"""

from __future__ import annotations

import numpy as np

from instruments_jax import CLASSES, losses
from instruments_jax.data import pipeline
from instruments_jax.data.audio import DataError


def predict_clips(predict_fn, dataset, indices, cfg, tolerate_errors: bool = False,
                  cache=None) -> tuple[np.ndarray, dict[int, str]]:
  """Returns ([len(indices), C] probabilities, {position: reason} of clips that failed to decode).

  `predict_fn(x) -> probs` runs over each clip's chunks, averaged per clip. A clip whose
  audio cannot be decoded raises DataError, or with `tolerate_errors` gets NaN
  probabilities and its reason in the dict. With a FeatureCache, chunks are cut from it.
  """
  _, batches = pipeline.eval_batches(dataset, indices, cfg, cache=cache)
  sums = np.zeros((len(indices), len(CLASSES)))
  counts = np.zeros(len(indices))
  failures: dict[int, str] = {}
  for batch in batches:
    probs = np.asarray(predict_fn(batch["x"]))
    real = batch["clip"] >= 0
    for pos, why in zip(batch["clip"][real & ~batch["ok"]], batch["error"][real & ~batch["ok"]]):
      failures.setdefault(int(pos), why)
    np.add.at(sums, batch["clip"][real], probs[real])
    np.add.at(counts, batch["clip"][real], 1)
  if failures and not tolerate_errors:
    raise DataError(f"{failures[min(failures)]} ({len(failures)} clip(s) fail to decode)")
  probs = sums / counts[:, None]
  probs[list(failures)] = np.nan
  return probs, failures


def classification_metrics(probs: np.ndarray, labels: np.ndarray, loss: str, detailed: bool = False) -> dict:
  """Returns loss, accuracy, macro F1 and macro one-vs-rest ROC-AUC (the recipe's metric); per class when detailed."""
  from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

  probs = np.asarray(probs, np.float64)
  onehot = np.eye(len(CLASSES))[labels]
  pred = probs.argmax(1)
  aucs = [roc_auc_score(onehot[:, c], probs[:, c]) for c in range(len(CLASSES)) if 0 < onehot[:, c].sum() < len(labels)]
  classes = list(range(len(CLASSES)))
  precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=classes, zero_division=0)
  out = {"loss": float(losses.clip_losses(probs, labels, loss).mean()), "accuracy": float(np.mean(pred == labels)),
         "macro_f1": float(np.mean(f1)), "roc_auc": float(np.mean(aucs)) if aucs else float("nan"),
         "clips": int(len(labels))}
  if detailed:
    out["per_class"] = {name: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                               "support": int(support[c])} for c, name in enumerate(CLASSES)}
    out["confusion_matrix"] = {"classes": list(CLASSES), "rows_true_cols_predicted":
                               confusion_matrix(labels, pred, labels=classes).tolist()}
  return out
