"""The compute of a run: optimizer, train state, mesh, and the jitted train and predict steps.

`setup(cfg, total_steps)` builds all of them once; `train`, `profile` and the
benchmarks in experiments/ call it, so what is profiled is what trains. The
Keras model runs as a pure function (`stateless_call`) inside `jax.jit`.
"""

from __future__ import annotations

import dataclasses

import instruments_jax  # noqa: F401  (selects the JAX backend before keras loads)
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from instruments_jax import losses
from instruments_jax.data import augment, features, sources


def make_optimizer(cfg, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Returns the optimizer (AdamW, the recipe's, or SGD) under its schedule (cosine to 0, optional warmup)."""
  t = cfg.train
  updates = max(1, total_steps // t.grad_accumulation)
  warmup = int(round(t.warmup_epochs * updates / max(t.epochs, 1)))
  if t.schedule == "cosine" and warmup:
    schedule = optax.warmup_cosine_decay_schedule(0.0, t.learning_rate, warmup, max(updates, warmup + 1), 0.0)
  elif t.schedule == "cosine":
    schedule = optax.cosine_decay_schedule(t.learning_rate, updates)
  else:
    schedule = optax.constant_schedule(t.learning_rate)
  if t.optimizer == "adamw":
    tx = optax.adamw(schedule, weight_decay=t.weight_decay)
  else:
    tx = optax.chain(optax.add_decayed_weights(t.weight_decay), optax.sgd(schedule, momentum=0.9))
  if t.gradient_clip > 0:
    tx = optax.chain(optax.clip_by_global_norm(t.gradient_clip), tx)
  if t.grad_accumulation > 1:
    tx = optax.MultiSteps(tx, t.grad_accumulation)
  return tx, schedule


def train_state(model, tx, averages: bool = False) -> dict:
  """Returns the train state of a freshly built model: params, model state, optimizer state, step.

  `averages` adds "average": the running mean of params and model state (`average_start`).
  """
  params = [v.value for v in model.trainable_variables]
  state = {"params": params, "model_state": [v.value for v in model.non_trainable_variables],
           "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}
  if averages:
    # copies: the step donates the state, and one buffer may not be donated twice
    state["average"] = jax.tree.map(jnp.copy, {"params": params, "model_state": state["model_state"]})
  return state


def average_start(cfg, total_steps: int) -> int:
  """The first step whose weights enter the mean `train.average_from` asks for; 0 when it is off.

  f in (0, 1] averages the weights after steps ceil(f * total), ..., total (at least the last).
  """
  f = cfg.train.average_from
  return 0 if f <= 0 else min(max(int(np.ceil(f * total_steps)), 1), max(total_steps, 1))


def weights(state) -> tuple[list, list]:
  """(params, model state) that evaluation and inference use: the running mean when the run keeps one."""
  w = state.get("average", state)
  return w["params"], w["model_state"]


def _running_mean(average, new, n):
  """Folds `new` into a mean of n - 1 values (n <= 1: restarts it at `new`); integer leaves (seed states) follow
  `new`."""
  def fold(a, x):
    if not jnp.issubdtype(x.dtype, jnp.floating):
      return x
    return (a + (x - a) / jnp.maximum(n, 1).astype(x.dtype)).astype(x.dtype)
  return jax.tree.map(fold, average, new)


def make_mesh():
  """Returns a one-axis ("data") mesh over every device: the state is replicated, batches split."""
  return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def shard(x: np.ndarray, mesh) -> jax.Array:
  """Puts a global batch on the devices: split along the batch axis when it divides, else replicated.

  Every process holds the same global batch (same seed, same pipeline), so this also
  builds the global array when several hosts share the mesh.
  """
  sharding = NamedSharding(mesh, P("data") if x.shape[0] % mesh.size == 0 else P())
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def replicate(tree, mesh):
  """Returns `tree` copied onto every device of `mesh`."""
  return jax.device_put(tree, NamedSharding(mesh, P()))


def make_steps(model, tx, cfg, seed: int = 0, predict_model=None, donate: bool = True, average_from: int = 0):
  """Returns (train_step, predict), jitted: the Keras model called as a pure function.

  With `average_from` (a step, `average_start`), the step also keeps state["average"]: the mean of the
  weights after steps average_from, ..., now (before it, the current weights).

  `predict(params, model_state, x)` returns probabilities; it runs `predict_model`
  (the same weights in the inference precision) when one is given.
  """
  predict_model = predict_model or model
  num_classes = len(sources.class_names(cfg))

  def train_step(state, x, y):
    if cfg.audio.features_on_device:  # waveforms [B, samples] in; the log-mel is part of the step
      x = features.log_mel(x, cfg.audio, xp=jnp)[..., None]
    if cfg.augmentation.mix_audio == "mixup":
      key = jax.random.fold_in(jax.random.key(seed), state["step"])
      x, y = augment.mixup(x, jax.nn.one_hot(y, num_classes) if y.ndim == 1 else y, key, cfg.augmentation)

    def loss_fn(params):
      logits, model_state = model.stateless_call(params, state["model_state"], x, training=True)
      return losses.loss_value(logits, y, cfg.train.loss, cfg.train.label_smoothing), model_state

    (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    new = {"params": params, "model_state": model_state, "opt_state": opt_state, "step": state["step"] + 1}
    if average_from:
      n = new["step"] - average_from + 1  # the weights of this step are the n-th of the mean
      new["average"] = _running_mean(state["average"], {"params": params, "model_state": model_state}, n)
    return new, loss

  def predict(params, model_state, x):
    logits, _ = predict_model.stateless_call(params, model_state, x, training=False)
    return losses.probabilities(logits.astype(jnp.float32), cfg.train.loss, xp=jnp)

  return jax.jit(train_step, donate_argnums=0 if donate else ()), jax.jit(predict)


@dataclasses.dataclass
class Setup:
  """Everything `setup` builds: the model, optimizer and schedule, the mesh, the state and both steps."""

  model: object
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  mesh: jax.sharding.Mesh
  state: dict
  train_step: object
  predict: object


def setup(cfg, total_steps: int, seed: int = 0, donate: bool = True, evaluates: bool = True) -> Setup:
  """Builds the model (loading `model.weights`), optimizer, replicated state and jitted steps of `cfg`.

  `evaluates=False` (profiling, benchmarks) skips the second model that `predict` runs when
  `prediction.mixed_precision` differs from `train.mixed_precision`; `predict` then uses the training model.
  """
  import keras

  from instruments_jax.model import build_model

  keras.utils.set_random_seed(seed)
  model = build_model(cfg)
  predict_model = None
  if evaluates and cfg.prediction.mixed_precision != cfg.train.mixed_precision:  # the inference precision
    predict_model = build_model(cfg, mixed_precision=cfg.prediction.mixed_precision, load_weights=False)
  tx, schedule = make_optimizer(cfg, total_steps)
  mesh = make_mesh()
  start = average_start(cfg, total_steps)
  state = replicate(train_state(model, tx, averages=bool(start)), mesh)
  train_step, predict = make_steps(model, tx, cfg, seed, predict_model, donate, start)
  return Setup(model, tx, schedule, mesh, state, train_step, predict)
