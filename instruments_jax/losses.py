"""The training loss and the probabilities it implies, written once for train, evaluation and inference.

`train.loss` chooses between the recipe's BCE on one-hot targets (a sigmoid per class)
and softmax cross-entropy. Every caller that turns logits into probabilities or scores
a clip goes through this module, so the two never disagree.
"""

from __future__ import annotations

import numpy as np

KINDS = ("bce", "softmax")


def loss_value(logits, labels, kind: str, smoothing: float = 0.0):
  """Returns the mean loss of logits [B, C] (jax): `labels` are class indices [B] or target distributions [B, C].

  `smoothing` (train.label_smoothing) moves the targets that far towards uniform: towards 1/2 per
  class for BCE, whose classes are independent yes/no questions (keras' convention), towards
  1/C for softmax.
  """
  import jax
  import jax.numpy as jnp
  import optax

  targets = jax.nn.one_hot(labels, logits.shape[-1]) if labels.ndim == 1 else labels
  if smoothing:
    targets = targets * (1.0 - smoothing) + smoothing * (0.5 if kind == "bce" else 1.0 / logits.shape[-1])
  logits = logits.astype(jnp.float32)
  if kind == "bce":
    return optax.sigmoid_binary_cross_entropy(logits, targets).mean()
  return optax.softmax_cross_entropy(logits, targets).mean()


def probabilities(logits, kind: str, xp=np):
  """Returns class probabilities of logits (numpy or jax.numpy): a sigmoid per class for BCE, else softmax."""
  if kind == "bce":
    return 1.0 / (1.0 + xp.exp(-logits))
  z = xp.exp(logits - logits.max(axis=-1, keepdims=True))
  return z / z.sum(axis=-1, keepdims=True)


def clip_losses(probs: np.ndarray, labels: np.ndarray, kind: str) -> np.ndarray:
  """Returns each clip's loss on its (chunk-averaged) probabilities [N, C] for class indices [N] or multi-hot [N, C]."""
  targets = np.eye(probs.shape[1])[labels] if labels.ndim == 1 else np.asarray(labels, np.float64)
  p = np.clip(np.asarray(probs, np.float64), 1e-7, 1 - 1e-7)
  if kind == "bce":
    return -np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p), axis=1)
  return -np.sum(targets * np.log(p), axis=1)
