"""Clip-level evaluation: chunk predictions averaged per clip, then loss, accuracy and ROC-AUC.

The seed's metric is ROC-AUC, macro-averaged one-vs-rest over the classes.
"""

from __future__ import annotations

import numpy as np

from instruments_jax import CLASSES
from instruments_jax.data import pipeline


def probabilities(logits, loss: str, xp=np):
  """Returns class probabilities from logits: sigmoid per class for BCE, softmax otherwise."""
  if loss == "bce":
    return 1.0 / (1.0 + xp.exp(-logits))
  z = xp.exp(logits - logits.max(axis=-1, keepdims=True))
  return z / z.sum(axis=-1, keepdims=True)


def classification_metrics(probs: np.ndarray, labels: np.ndarray, loss: str) -> dict:
  """Returns loss, accuracy and macro one-vs-rest ROC-AUC of clip probabilities [N, C]."""
  from sklearn.metrics import roc_auc_score

  probs = np.asarray(probs, np.float64)
  onehot = np.eye(len(CLASSES))[labels]
  p = np.clip(probs, 1e-7, 1 - 1e-7)
  if loss == "bce":
    value = -np.mean(onehot * np.log(p) + (1 - onehot) * np.log(1 - p))
  else:
    value = -np.mean(np.log(p[np.arange(len(labels)), labels]))
  aucs = [roc_auc_score(onehot[:, c], probs[:, c]) for c in range(len(CLASSES)) if 0 < onehot[:, c].sum() < len(labels)]
  return {"loss": float(value), "accuracy": float(np.mean(probs.argmax(1) == labels)),
          "roc_auc": float(np.mean(aucs)) if aucs else float("nan"), "clips": int(len(labels))}


def predict_clips(predict_fn, dataset, indices, cfg) -> np.ndarray:
  """Returns [len(indices), C] probabilities: `predict_fn(x) -> probs` over chunks, averaged per clip."""
  _, batches = pipeline.eval_batches(dataset, indices, cfg)
  sums = np.zeros((len(indices), len(CLASSES)))
  counts = np.zeros(len(indices))
  for batch in batches:
    probs = np.asarray(predict_fn(batch["x"]))
    real = batch["clip"] >= 0
    np.add.at(sums, batch["clip"][real], probs[real])
    np.add.at(counts, batch["clip"][real], 1)
  return sums / counts[:, None]
