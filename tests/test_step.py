"""step: the optimizer and schedule of a config, and the one set-up everyone uses."""

import numpy as np
import pytest

from instruments_jax import step
from instruments_jax.configs import get_config


def _lr(cfg, total, at):
  _, schedule = step.make_optimizer(cfg, total)
  return [float(schedule(i)) for i in at]


def test_cosine_decays_from_the_learning_rate_to_zero_over_all_steps():
  cfg = get_config("smoke")
  cfg.train.learning_rate = 0.002
  np.testing.assert_allclose(_lr(cfg, 100, [0, 50, 100]), [0.002, 0.001, 0.0], atol=1e-9)  # half way: cos = 0


def test_warmup_rises_linearly_then_decays():
  cfg = get_config("smoke")
  cfg.train.epochs, cfg.train.warmup_epochs, cfg.train.learning_rate = 4, 1.0, 0.001
  lr = _lr(cfg, 400, [0, 50, 100, 400])  # warmup: one epoch of 4 = 100 steps
  np.testing.assert_allclose(lr, [0.0, 0.0005, 0.001, 0.0], atol=1e-9)


def test_constant_schedule_and_grad_accumulation_counts_updates():
  cfg = get_config("smoke")
  cfg.train.schedule = "constant"
  assert _lr(cfg, 10, [0, 9]) == pytest.approx([0.001, 0.001])
  cfg.train.schedule, cfg.train.grad_accumulation = "cosine", 4
  # 100 steps of accumulation 4 are 25 updates: the cosine reaches 0 at update 25
  assert _lr(cfg, 100, [25])[0] == pytest.approx(0.0, abs=1e-9) and _lr(cfg, 100, [12])[0] > 0.0004


def test_setup_builds_a_replicated_state_and_steps_that_train():
  cfg = get_config("smoke")
  s = step.setup(cfg, total_steps=10)
  x = np.random.default_rng(0).normal(-40, 15, (4, 32, 65, 1)).astype(np.float32)
  y = np.arange(4, dtype=np.int32)
  state, first = s.train_step(s.state, step.shard(x, s.mesh), step.shard(y, s.mesh))
  assert int(state["step"]) == 1 and np.isfinite(float(first))
  probs = np.asarray(s.predict(state["params"], state["model_state"], step.shard(x, s.mesh)))
  assert probs.shape == (4, 4) and ((probs > 0) & (probs < 1)).all()  # BCE: independent sigmoids


def test_setup_builds_an_inference_model_in_the_prediction_precision():
  cfg = get_config("smoke")
  cfg.prediction.mixed_precision = True
  s = step.setup(cfg, total_steps=10)
  x = step.shard(np.random.default_rng(0).normal(-40, 15, (4, 32, 65, 1)).astype(np.float32), s.mesh)
  fp32 = step.setup(get_config("smoke"), total_steps=10)
  a = np.asarray(s.predict(s.state["params"], s.state["model_state"], x))
  b = np.asarray(fp32.predict(s.state["params"], s.state["model_state"], x))
  assert not np.array_equal(a, b) and np.allclose(a, b, atol=0.05)  # bf16 compute, same weights


def test_average_start_is_the_first_step_of_the_mean_and_0_when_off():
  cfg = get_config("smoke")
  assert step.average_start(cfg, 10) == 0  # off in every shipped config
  for f, want in ((0.5, 5), (1.0, 10), (1e-6, 1), (0.31, 4)):
    cfg.train.average_from = f
    assert step.average_start(cfg, 10) == want, f


def test_average_from_keeps_the_mean_of_the_weights_from_its_step_on():
  import jax

  cfg = get_config("smoke")
  cfg.train.average_from = 0.5  # of 6 steps: the weights after steps 3, 4, 5 and 6
  s = step.setup(cfg, total_steps=6, donate=False)
  rng = np.random.default_rng(0)
  state, after = s.state, []
  for _ in range(6):
    x = rng.normal(-40, 15, (4, 32, 65, 1)).astype(np.float32)
    state, _ = s.train_step(state, step.shard(x, s.mesh), step.shard(np.arange(4, dtype=np.int32), s.mesh))
    after.append(jax.device_get({"params": state["params"], "model_state": state["model_state"]}))
  params, model_state = step.weights(state)
  for kind, got in (("params", params), ("model_state", model_state)):
    for k, value in enumerate(got):
      want = np.mean([a[kind][k] for a in after[2:]], axis=0)
      np.testing.assert_allclose(np.asarray(value), want, rtol=1e-5, atol=1e-6)
  assert not np.allclose(np.asarray(params[0]), after[-1]["params"][0])  # the mean, not the last weights
  off = step.setup(get_config("smoke"), total_steps=6)
  assert "average" not in off.state and step.weights(off.state)[0] is off.state["params"]
