r"""Trains the classifier: `python -m instruments_jax.train --config=NAME --workdir=DIR`.

    python -m instruments_jax.train --config=quick --workdir=runs/quick
    python -m instruments_jax.train --config=baseline --config.model.weights=none --workdir=runs/base
    python -m instruments_jax.train --config=baseline --print_config

`--config.FIELD=VALUE` overrides any field; `--helpfull` lists them all. The
workdir receives config.json, metrics.jsonl and the final checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging as pylogging
import os
import signal
import sys
import time

import instruments_jax  # noqa: F401  (selects the JAX backend)
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from ml_collections import config_flags

from instruments_jax import CLASSES, configs, run
from instruments_jax.data import cache, features, pipeline, sources
from instruments_jax.evaluate import classification_metrics, plot_chart, predict_clips, probabilities

_CONFIG = config_flags.DEFINE_config_file("config", None, "A named config (baseline, quick, smoke) or a config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config, metrics and checkpoints.")
_PRINT_CONFIG = flags.DEFINE_bool("print_config", False, "Print the resolved config as JSON and exit.")


class ConfigError(ValueError):
  """A config that cannot run as given; the message says which field and why."""


def resolve_seed(cfg) -> int:
  """Returns cfg.seed, drawing and storing one when it is -1 (the seed's `seed: -1`)."""
  if cfg.seed < 0:
    with cfg.unlocked():
      cfg.seed = int(np.random.SeedSequence().entropy % (2**31))
  return int(cfg.seed)


def make_optimizer(cfg, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Returns AdamW under the seed's schedule (cosine to 0 over all steps), with optional clipping."""
  t = cfg.train
  updates = max(1, total_steps // t.grad_accumulation)
  warmup = int(round(t.warmup_epochs * updates / max(t.epochs, 1)))
  if t.schedule == "cosine" and warmup:
    schedule = optax.warmup_cosine_decay_schedule(0.0, t.learning_rate, warmup, max(updates, warmup + 1), 0.0)
  elif t.schedule == "cosine":
    schedule = optax.cosine_decay_schedule(t.learning_rate, updates)
  elif t.schedule == "constant":
    schedule = optax.constant_schedule(t.learning_rate)
  else:
    raise ValueError(f"train.schedule={t.schedule!r}: choose cosine or constant")
  if t.optimizer == "adamw":
    tx = optax.adamw(schedule, weight_decay=t.weight_decay)
  elif t.optimizer == "sgd":
    tx = optax.chain(optax.add_decayed_weights(t.weight_decay), optax.sgd(schedule, momentum=0.9))
  else:
    raise ConfigError(f"train.optimizer={t.optimizer!r}: choose adamw or sgd")
  if t.gradient_clip > 0:
    tx = optax.chain(optax.clip_by_global_norm(t.gradient_clip), tx)
  if t.grad_accumulation > 1:
    tx = optax.MultiSteps(tx, t.grad_accumulation)
  return tx, schedule


def loss_value(logits, labels, kind: str):
  """Returns the mean training loss: BCE on one-hot targets (the seed's) or softmax cross-entropy.

  `labels` are class indices [B] or (mixed) target distributions [B, C].
  """
  onehot = jax.nn.one_hot(labels, len(CLASSES)) if labels.ndim == 1 else labels
  logits = logits.astype(jnp.float32)
  if kind == "bce":
    return optax.sigmoid_binary_cross_entropy(logits, onehot).mean()
  if kind == "softmax":
    return optax.softmax_cross_entropy(logits, onehot).mean()
  raise ValueError(f"train.loss={kind!r}: choose bce or softmax")


def make_steps(model, tx, cfg, seed: int = 0):
  """Returns jitted (train_step, predict) that call the Keras model as a pure function."""
  from instruments_jax.data import augment

  def train_step(state, x, y):
    if cfg.audio.get("features_on_device", False):  # waveforms [B, samples] in; the log-mel is part of the step
      x = features.log_mel(x, cfg.audio, xp=jnp)[..., None]
    if cfg.augmentation.mix_audio == "mixup":
      key = jax.random.fold_in(jax.random.key(seed), state["step"])
      x, y = augment.mixup(x, jax.nn.one_hot(y, len(CLASSES)), key, cfg.augmentation)

    def loss_fn(params):
      logits, model_state = model.stateless_call(params, state["model_state"], x, training=True)
      return loss_value(logits, y, cfg.train.loss), model_state

    (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"params": params, "model_state": model_state, "opt_state": opt_state, "step": state["step"] + 1}, loss

  def predict(params, model_state, x):
    logits, _ = model.stateless_call(params, model_state, x, training=False)
    return probabilities(logits.astype(jnp.float32), cfg.train.loss, xp=jnp)

  return jax.jit(train_step, donate_argnums=0), jax.jit(predict)


class MetricsLog:
  """Appends one JSON object per line to workdir/metrics.jsonl; on resume keeps lines up to the checkpoint."""

  def __init__(self, path, keep_until_step: int | None = None):
    self.path = path
    if path is None:  # a secondary host: process 0 keeps the log
      return
    kept = []
    if keep_until_step is not None and os.path.exists(path):
      kept = [l for l in open(path) if l.strip() and json.loads(l).get("step", 0) <= keep_until_step]
    with open(path, "w") as f:
      f.writelines(kept)

  def write(self, **record):
    if self.path is None:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")


def load_data(cfg, cache=None):
  """Returns (train dataset, train indices, validation indices, test dataset or None).

  With a FeatureCache, every clip in use is decoded into it first (in threads),
  so files that fail to decode stop the run here, before training,
  or with data.skip_bad_files are left out and listed in the dataset's `skipped`.
  """
  d = cfg.data
  train_ds = sources.open_split(d, "train")
  if train_ds is None:
    raise sources.DataError(f"{d.path!r} has no training split")
  labels = train_ds.labels
  try:
    train_idx, val_idx = sources.validation_split(train_ds, d)
  except ValueError as e:  # an unknown strategy or a fold out of range
    raise ConfigError(str(e)) from None
  train_idx = sources.subsample(train_idx, labels, d.data_sample, d.fold_seed)
  val_idx = sources.subsample(val_idx, labels, d.data_sample, d.fold_seed)
  test_ds = sources.open_split(d, "test")
  if cache is not None:
    t0 = time.time()
    bad = _fill(cache, train_ds, np.concatenate([train_idx, val_idx]), d)
    train_idx, val_idx = (np.setdiff1d(idx, bad, assume_unique=True) for idx in (train_idx, val_idx))
    if test_ds is not None:
      keep = np.setdiff1d(np.arange(len(test_ds)), _fill(cache, test_ds, np.arange(len(test_ds)), d))
      if len(keep) < len(test_ds):
        test_ds = dataclasses.replace(test_ds, clips=[test_ds.clips[i] for i in keep])
    logging.info("feature cache %s ready in %.0fs", cache.directory, time.time() - t0)
  return train_ds, train_idx, val_idx, test_ds


def _fill(cache, ds, indices, data_cfg) -> list[int]:
  """Fills the cache for `indices`; returns the indices that failed (raising unless skip_bad_files)."""
  failed = sorted(cache.fill(ds, indices, data_cfg.num_workers))
  if failed and not data_cfg.skip_bad_files:
    raise sources.DataError(f"{failed[0][1]} ({len(failed)} file(s) fail to decode); run with "
                            f"--config.data.skip_bad_files=true to continue without them")
  ds.skipped.extend((ds.clips[i].name, why) for i, why in failed)
  return [i for i, _ in failed]


def shard(x: np.ndarray, mesh) -> jax.Array:
  """Puts a global batch on the devices: split along the batch axis when it divides, else replicated.

  Every process holds the same global batch (same seed, same pipeline), so this also
  builds the global array when several hosts share the mesh.
  """
  sharding = NamedSharding(mesh, P("data") if x.shape[0] % mesh.size == 0 else P())
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def _fmt_time(seconds):
  m, s = divmod(int(seconds), 60)
  return f"{m}m{s:02d}s"


def train_and_evaluate(cfg, workdir: str) -> dict:
  """Trains per `cfg`, evaluating every `evaluation_epochs`; returns the last metrics per split."""
  t_start = time.time()
  # Several hosts share one workdir: each holds its own lock; only process 0 writes logs and figures.
  primary = jax.process_index() == 0
  lock_name = ".lock" if jax.process_count() == 1 else f".lock.{jax.process_index()}"
  lock = run.lock_workdir(workdir, lock_name)  # held until this process ends, SIGKILL included
  saved_config = os.path.join(workdir, "config.json")
  if cfg.seed < 0 and os.path.isdir(os.path.join(workdir, "checkpoints")) and os.path.exists(saved_config):
    with open(saved_config) as f, cfg.unlocked():  # resuming: the seed this run drew at its start
      cfg.seed = int(json.load(f)["seed"])
  seed = resolve_seed(cfg)
  if cfg.augmentation.mix_audio not in ("disabled", "mixup"):
    raise ConfigError(f"augmentation.mix_audio={cfg.augmentation.mix_audio!r}: choose disabled or mixup")
  if cfg.audio.get("features_on_device", False) and (cfg.augmentation.freq_masks or cfg.augmentation.time_masks):
    raise ConfigError("audio.features_on_device=true computes the log-mel in the train step, after the "
                      "workers' SpecAugment would run; set augmentation.freq_masks=0 and time_masks=0")
  if primary:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(cfg.to_json_best_effort(indent=2))
  logging.info("seed %d, workdir %s, devices %s", seed, workdir, jax.devices())

  import keras

  from instruments_jax.model import build_model

  keras.utils.set_random_seed(seed)
  shape = features.input_shape(cfg.audio, cfg.audio.training_chunk_seconds)
  # Any number of frames: the same model serves training chunks and inference chunks.
  model = build_model(cfg, (cfg.audio.mel_bins, None, 1))  # fails here, before data work, without weights
  logging.info("model: ResNet50, input %s, %d parameters, weights=%s", shape, model.count_params(), cfg.model.weights)

  feature_cache = cache.from_config(cfg.data, cfg.audio)
  train_ds, train_idx, val_idx, test_ds = load_data(cfg, feature_cache)
  skipped = train_ds.skipped + (test_ds.skipped if test_ds else [])
  if skipped and primary:
    with open(os.path.join(workdir, "skipped_files.txt"), "w") as f:
      f.writelines(f"{name}\t{why}\n" for name, why in skipped)
    logging.warning("skipped %d bad file(s); list in %s", len(skipped), os.path.join(workdir, "skipped_files.txt"))
  logging.info("data %s: %d train / %d validation clips (fold %d of %d held out); test: %s", cfg.data.path,
               len(train_idx), len(val_idx), cfg.data.validation_fold, cfg.data.num_folds,
               f"{len(test_ds)} clips" if test_ds else "none")

  b = cfg.train.batch_size
  mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  if b % mesh.size:
    raise ConfigError(f"train.batch_size={b} does not divide over {mesh.size} devices; "
                     f"choose a multiple of {mesh.size}")
  logging.info("devices: %d (%s); each holds %d of every batch of %d", mesh.size, jax.devices()[0].platform,
               b // mesh.size, b)
  steps_per_epoch = pipeline.train_steps_per_epoch(train_ds, train_idx, cfg)
  total_steps = steps_per_epoch * cfg.train.epochs
  tx, schedule = make_optimizer(cfg, total_steps)
  state = jax.device_put(run.train_state(model, tx), NamedSharding(mesh, P()))  # replicated
  train_step, predict = make_steps(model, tx, cfg, seed)
  batches = pipeline.train_batches(train_ds, train_idx, cfg, seed, cfg.train.epochs, feature_cache).__iter__()
  manager = run.checkpoint_manager(workdir, cfg.train.keep_checkpoints)
  restored = run.restore_latest(manager, state, batches)
  start = 0
  if restored is not None:
    state, start = restored
    state = jax.device_put(state, NamedSharding(mesh, P()))
    logging.info("resuming from the checkpoint of step %d in %s", start, manager.directory)
  log = MetricsLog(os.path.join(workdir, "metrics.jsonl") if primary else None,
                   keep_until_step=start if restored else None)

  gather = jax.jit(lambda v: v, out_shardings=NamedSharding(mesh, P()))  # every host gets every row

  def evaluate(split, ds, idx):
    t0 = time.time()
    probs = predict_clips(lambda x: gather(predict(state["params"], state["model_state"], shard(x, mesh))), ds, idx,
                          cfg, cache=feature_cache)
    m = classification_metrics(probs, ds.labels[idx], cfg.train.loss)
    logging.info("%s: loss %.4f  accuracy %.4f  roc_auc %.4f  (%d clips, %.0fs)", split, m["loss"],
                 m["accuracy"], m["roc_auc"], m["clips"], time.time() - t0)
    return m

  results, losses = {}, []
  t_last, step_last = time.time(), start
  preempted = []
  previous_handler = signal.signal(signal.SIGTERM, lambda *_: preempted.append(True))
  every = cfg.train.checkpoint_every_steps

  def checkpoint(step):
    values = [float(v) for v in jax.device_get(losses)]
    if not np.all(np.isfinite(values)):  # never overwrite the last good checkpoint with a diverged state
      raise FloatingPointError(f"loss is {values} at or before step {step}; stopping with the checkpoint "
                               f"of step {manager.latest_step()} kept")
    run.save_step(manager, step, state, batches)

  logging.info("training %d epochs x %d steps of batch %d", cfg.train.epochs, steps_per_epoch, b)
  for step in range(start + 1, total_steps + 1):
    batch = next(batches)
    state, loss = train_step(state, shard(batch["x"], mesh), shard(batch["y"], mesh))
    losses.append(loss)
    epoch = (step - 1) // steps_per_epoch + 1
    if step % cfg.train.log_every_steps == 0 or step % steps_per_epoch == 0:
      batch_losses = [float(v) for v in jax.device_get(losses)]
      mean_loss = float(np.mean(batch_losses))
      losses = []
      now = time.time()
      rate = (step - step_last) * b / (now - t_last)
      t_last, step_last = now, step
      lr = float(schedule(max(step // cfg.train.grad_accumulation - 1, 0)))
      log.write(step=step, samples=step * b, epoch=epoch, lr=lr, train_loss=mean_loss, samples_per_s=rate,
                batch_losses=batch_losses)
      logging.info("epoch %d/%d  step %d/%d  loss %.4f  lr %.2e  %.1f samples/s  ETA %s", epoch, cfg.train.epochs,
                   step, total_steps, mean_loss, lr, rate, _fmt_time((total_steps - step) * b / rate))
      if not np.isfinite(mean_loss):
        raise FloatingPointError(f"loss is {mean_loss} at step {step}; stopping with the checkpoint "
                                 f"of step {manager.latest_step()} kept")
    if step % steps_per_epoch == 0 and (epoch % cfg.train.evaluation_epochs == 0 or epoch == cfg.train.epochs):
      results["validation"] = m = evaluate("validation", train_ds, val_idx)
      log.write(step=step, samples=step * b, epoch=epoch, split="validation", **m)
      if primary:
        plot_chart(log.path, os.path.join(workdir, "chart.png"))
      t_last = time.time()
    if step % steps_per_epoch == 0 or (every and step % every == 0) or preempted:
      checkpoint(step)
    if preempted:
      logging.warning("SIGTERM: saved the checkpoint of step %d; re-run the same command to resume", step)
      signal.signal(signal.SIGTERM, previous_handler)
      return {"preempted_at_step": step}
  signal.signal(signal.SIGTERM, previous_handler)

  if test_ds is not None:
    results["test"] = m = evaluate("test", test_ds, np.arange(len(test_ds)))
    log.write(step=total_steps, samples=total_steps * b, epoch=cfg.train.epochs, split="test", **m)
  run.save_checkpoint(workdir, state)
  logging.info("saved checkpoint %s", os.path.join(workdir, run.CHECKPOINT))
  wall = time.time() - t_start
  log.write(step=total_steps, wall_seconds=wall)
  logging.info("done in %s; workdir %s", _fmt_time(wall), workdir)
  lock.close()
  for split, m in results.items():
    print(f"{split:>10}: accuracy {m['accuracy']:.4f}  ROC-AUC {m['roc_auc']:.4f}  loss {m['loss']:.4f}  "
          f"({m['clips']} clips)", flush=True)
  return results


def main(argv):
  del argv
  cfg = _CONFIG.value
  if cfg is None:
    raise app.UsageError("--config is required (baseline, quick, smoke or a config file)")
  if _PRINT_CONFIG.value:
    print(cfg.to_json_best_effort(indent=2))
    return
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required")
  if os.environ.get("JAX_COORDINATOR_ADDRESS"):  # several hosts: join them before touching devices
    jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"], int(os.environ["JAX_NUM_PROCESSES"]),
                               int(os.environ["JAX_PROCESS_ID"]))
  pylogging.getLogger("absl").setLevel(pylogging.INFO)
  logging.get_absl_handler().python_handler.stream = sys.stdout
  try:
    train_and_evaluate(cfg, _WORKDIR.value)
  except (sources.DataError, FileNotFoundError, ConfigError, run.WorkdirBusy) as e:
    sys.exit(f"error: {e}")
  except Exception as e:
    from instruments_jax.model import WeightsUnavailable

    if isinstance(e, WeightsUnavailable):
      sys.exit(f"error: {e}")
    raise


def named_config_argv(argv: list[str]) -> list[str]:
  """Rewrites `--config=NAME` into the path of configs/NAME.py, so named configs work with config_flags."""
  out = []
  for i, a in enumerate(argv):
    if a.startswith("--config="):
      name = a.split("=", 1)[1]
      if name in configs.NAMES:
        a = "--config=" + os.path.join(os.path.dirname(configs.__file__), f"{name}.py")
    elif i > 0 and argv[i - 1] == "--config" and a in configs.NAMES:
      a = os.path.join(os.path.dirname(configs.__file__), f"{a}.py")
    out.append(a)
  return out


def cli():
  app.run(main, argv=named_config_argv(sys.argv))


if __name__ == "__main__":
  cli()
