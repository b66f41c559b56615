"""losses: the loss and the probabilities it implies, against values worked out by hand."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from instruments_jax import losses


def test_bce_probabilities_are_independent_sigmoids():
  p = losses.probabilities(np.array([[0.0, math.log(3.0), -math.log(3.0)]]), "bce")
  np.testing.assert_allclose(p, [[0.5, 0.75, 0.25]], rtol=1e-12)  # sigmoid(ln 3) = 3 / 4


def test_softmax_probabilities_sum_to_one_and_ignore_a_shift():
  p = losses.probabilities(np.array([[0.0, math.log(3.0)], [1000.0, 1000.0 + math.log(3.0)]]), "softmax")
  np.testing.assert_allclose(p, [[0.25, 0.75], [0.25, 0.75]], rtol=1e-12)


def test_numpy_and_jax_give_the_same_probabilities():
  logits = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
  for kind in losses.KINDS:
    np.testing.assert_allclose(losses.probabilities(jnp.asarray(logits), kind, xp=jnp),
                               losses.probabilities(logits, kind), rtol=1e-5)


def test_loss_value_by_hand():
  logits = jnp.array([[0.0, 0.0]])
  # BCE: each of the 2 classes contributes -log(1/2); the mean over classes is log 2.
  assert float(losses.loss_value(logits, jnp.array([1]), "bce")) == pytest.approx(math.log(2), rel=1e-6)
  # softmax cross-entropy of two equal logits: -log(1/2)
  assert float(losses.loss_value(logits, jnp.array([0]), "softmax")) == pytest.approx(math.log(2), rel=1e-6)
  # mixed targets: a target distribution [B, C] is taken as it is
  mixed = losses.loss_value(jnp.array([[math.log(3.0), 0.0]]), jnp.array([[0.5, 0.5]]), "softmax")
  assert float(mixed) == pytest.approx(-(0.5 * math.log(0.75) + 0.5 * math.log(0.25)), rel=1e-6)


def test_clip_losses_score_averaged_probabilities_by_hand():
  probs = np.array([[0.75, 0.25], [0.5, 0.5]])
  labels = np.array([0, 1])
  np.testing.assert_allclose(losses.clip_losses(probs, labels, "softmax"), [-math.log(0.75), -math.log(0.5)])
  bce = [-(math.log(0.75) + math.log(0.75)) / 2, -(math.log(0.5) + math.log(0.5)) / 2]
  np.testing.assert_allclose(losses.clip_losses(probs, labels, "bce"), bce)


@pytest.mark.parametrize("kind, smoothed", [("bce", [0.1, 0.1, 0.9, 0.1]), ("softmax", [0.05, 0.05, 0.85, 0.05])])
def test_label_smoothing_moves_the_targets_towards_uniform(kind, smoothed):
  logits = jnp.array([[0.3, -1.2, 2.0, 0.5], [1.0, 0.0, -0.5, 0.25]])
  by_hand = losses.loss_value(logits, jnp.array([smoothed, np.roll(smoothed, -1)]), kind)
  assert float(losses.loss_value(logits, jnp.array([2, 1]), kind, 0.2)) == pytest.approx(float(by_hand), rel=1e-6)
  assert float(losses.loss_value(logits, jnp.array([2, 1]), kind, 0.0)) != pytest.approx(float(by_hand), rel=1e-3)
