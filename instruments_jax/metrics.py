"""Clip predictions from chunk predictions, and their scores.

`predict_clips` runs any `predict_fn(x) -> probabilities` over a split's fixed
inference chunks and averages them per clip (the recipe's fixed-chunk
inference); `classification_metrics` scores the averaged probabilities. The
trainer, `evaluate` and `predict` all use these two, and none of them is
imported here.
"""

from __future__ import annotations

import numpy as np

from instruments_jax import losses
from instruments_jax.data import pipeline
from instruments_jax.data.audio import DataError


def predict_clips(predict_fn, dataset, indices, cfg, tolerate_errors: bool = False,
                  cache=None, batches=None) -> tuple[np.ndarray, dict[int, str]]:
  """Returns ([len(indices), C] probabilities, {position: reason} of clips that failed to decode).

  `predict_fn(x) -> probs` runs over each clip's chunks, averaged per clip. A clip whose
  audio cannot be decoded raises DataError, or with `tolerate_errors` gets NaN
  probabilities and its reason in the dict. With a FeatureCache, chunks are cut from it.
  `batches` brings the chunk batches ready-made (pipeline.KeptBatches).
  """
  if batches is None:
    _, batches = pipeline.eval_batches(dataset, indices, cfg, cache=cache)
  sums = None
  counts = np.zeros(len(indices))
  failures: dict[int, str] = {}
  for batch in batches:
    probs = np.asarray(predict_fn(batch["x"]))
    if sums is None:
      sums = np.zeros((len(indices), probs.shape[1]))
    real = batch["clip"] >= 0
    for pos, why in zip(batch["clip"][real & ~batch["ok"]], batch["error"][real & ~batch["ok"]]):
      failures.setdefault(int(pos), why)
    np.add.at(sums, batch["clip"][real], probs[real])
    np.add.at(counts, batch["clip"][real], 1)
  if sums is None:  # no clips
    sums = np.zeros((len(indices), 0))
  if failures and not tolerate_errors:
    raise DataError(f"{failures[min(failures)]} ({len(failures)} clip(s) fail to decode)")
  probs = sums / counts[:, None]
  probs[list(failures)] = np.nan
  return probs, failures


def classification_metrics(probs: np.ndarray, targets: np.ndarray, loss: str, classes, threshold: float = 0.5,
                           detailed: bool = False) -> dict:
  """Scores clip probabilities [N, C] against class indices [N] or, multi-label, multi-hot rows [N, C].

  Always: loss, macro one-vs-rest ROC-AUC (the recipe's metric), mAP (macro average
  precision) and `clips`. Single-label: accuracy and macro F1 of the top class. Multi-label:
  accuracy is the share of clips whose labels at or above `threshold` are exactly right, and
  macro F1 is at `threshold`. `detailed` adds per-class scores (precision / recall / F1 of the
  top class, or at `threshold` when multi-label; F1 at `threshold`; AP; support) and the
  confusion matrix (multi-label: per class, clips true / predicted at `threshold`).
  """
  from sklearn.metrics import (average_precision_score, confusion_matrix, multilabel_confusion_matrix,
                               precision_recall_fscore_support, roc_auc_score)

  probs = np.asarray(probs, np.float64)
  multi = targets.ndim == 2
  onehot = targets.astype(np.int64) if multi else np.eye(len(classes), dtype=np.int64)[targets]
  both = [c for c in range(len(classes)) if 0 < onehot[:, c].sum() < len(onehot)]  # AUC needs both kinds
  present = [c for c in range(len(classes)) if onehot[:, c].sum() > 0]
  aucs = [roc_auc_score(onehot[:, c], probs[:, c]) for c in both]
  aps = {c: average_precision_score(onehot[:, c], probs[:, c]) for c in present}
  above = (probs >= threshold).astype(np.int64)
  _, _, f1_at, _ = precision_recall_fscore_support(onehot, above, average=None, zero_division=0)
  if multi:
    precision, recall, f1, support = precision_recall_fscore_support(onehot, above, average=None, zero_division=0)
    accuracy = float(np.mean(np.all(above == onehot, axis=1)))
  else:
    pred = probs.argmax(1)
    precision, recall, f1, support = precision_recall_fscore_support(targets, pred, labels=list(range(len(classes))),
                                                                     zero_division=0)
    accuracy = float(np.mean(pred == targets))
  out = {"loss": float(losses.clip_losses(probs, targets, loss).mean()), "accuracy": accuracy,
         "macro_f1": float(np.mean(f1)), "roc_auc": float(np.mean(aucs)) if aucs else float("nan"),
         "map": float(np.mean(list(aps.values()))) if aps else float("nan"), "clips": int(len(targets))}
  if detailed:
    out["multi_label"] = multi
    out["per_class"] = {name: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                               "f1_at_threshold": float(f1_at[c]), "ap": float(aps.get(c, float("nan"))),
                               "support": int(support[c])} for c, name in enumerate(classes)}
    if multi:
      per = multilabel_confusion_matrix(onehot, above)  # [C, 2, 2]: [[tn, fp], [fn, tp]]
      out["confusion_matrix"] = {"classes": list(classes), "threshold": threshold, "columns": ["tp", "fn", "fp", "tn"],
                                 "rows_class": [[int(m[1, 1]), int(m[1, 0]), int(m[0, 1]), int(m[0, 0])] for m in per]}
    else:
      out["confusion_matrix"] = {"classes": list(classes), "rows_true_cols_predicted":
                                 confusion_matrix(targets, pred, labels=list(range(len(classes)))).tolist()}
  return out
