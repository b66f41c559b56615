r"""Trains the classifier: `python -m instruments_jax.train --config=NAME --workdir=DIR`.

    python -m instruments_jax.train --config=quick --workdir=runs/quick
    python -m instruments_jax.train --config=baseline --config.model.weights=none --workdir=runs/base
    python -m instruments_jax.train --config=baseline --print_config      # the resolved config as JSON
    python -m instruments_jax.train --config=baseline --describe_config   # every field, its value and meaning

`--config.FIELD=VALUE` overrides any field. The workdir receives config.json,
metrics.jsonl, chart.png and checkpoints/<step>/; re-running the same command
resumes from the newest checkpoint.
"""

from __future__ import annotations

if __name__ == "__main__":  # SIGTERM / SIGINT stop cleanly from the first line, imports included
  from instruments_jax import cli as _cli

  _cli.stop_on_signals()

import contextlib
import logging as pylogging
import os
import signal
import sys
import time

import instruments_jax  # noqa: F401  (selects the JAX backend)
import jax
import jax.numpy as jnp
import numpy as np
from absl import flags, logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from instruments_jax import board as board_lib
from instruments_jax import checkpoint, cli, configs, losses, metrics, plots, rundir, step
from instruments_jax.data import augment, cache, features, pipeline, sources

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config, metrics, figures and checkpoints.")


def itstime(step_: int, every: int, last: int | None = None) -> bool:
  """Returns whether a periodic action is due at `step_`: every `every` steps (0: never), and at `last`."""
  return (every > 0 and step_ % every == 0) or step_ == last


def load_data(cfg, feature_cache=None):
  """Returns (train dataset, train indices, validation indices, test dataset or None, feature cache or None).

  Every file in use is decoded in full first (in threads), into the FeatureCache when there
  is one, so files that fail to decode stop the run here, before training, or with
  data.skip_bad_files are left out and listed in the dataset's `skipped`. (Opening a dataset
  reads headers only; the embedded synth set cannot fail.) A cache that cannot be written (a full or
  read-only disk) is dropped with a warning: the run goes on without one.
  """
  d = cfg.data
  train_ds, train_idx, val_idx = sources.train_validation(d)
  d.classes = ",".join(train_ds.classes)  # the run owns its classes: config.json lists them, in the model's order
  if train_ds.multi_label and cfg.train.loss == "softmax":
    several = sum(len(c.tags) != 1 for c in train_ds.clips)
    raise configs.ConfigError([f"train.loss='softmax': the training data is multi-label ({several} clip(s) have "
                               f"other than one label); softmax picks exactly one class: use train.loss=bce"])
  logging.info("classes%s: %s", " (multi-label)" if train_ds.multi_label else "",
               ", ".join(f"{c} ({n})" for c, n in zip(train_ds.classes, train_ds.support())))
  test_ds = sources.open_split(d, "test")
  if feature_cache is not None:
    decode = feature_cache.fill
  elif train_ds.clips[0].path is not None:  # files, read later in windows: try each in full now
    decode = sources.decode_all
  else:
    return train_ds, train_idx, val_idx, test_ds, None
  t0 = time.time()
  splits = [(train_ds, np.concatenate([train_idx, val_idx]))]
  if test_ds is not None:
    splits.append((test_ds, np.arange(len(test_ds))))
  bad = [_failures(decode(ds, idx, d.num_workers), ds, d) for ds, idx in splits]
  train_idx, val_idx = (np.setdiff1d(idx, bad[0], assume_unique=True) for idx in (train_idx, val_idx))
  if test_ds is not None:
    test_ds = sources.without(test_ds, bad[1])
  if feature_cache is None:
    logging.info("decoded every clip in full in %.0fs (no feature cache)", time.time() - t0)
    return train_ds, train_idx, val_idx, test_ds, None
  unkept = sum(len(feature_cache.missing(ds, np.setdiff1d(idx, b))) for (ds, idx), b in zip(splits, bad))
  if unkept:
    logging.warning("feature cache %s could not keep %d clip(s) (see the warning above); training without the "
                    "cache", feature_cache.directory, unkept)
    return train_ds, train_idx, val_idx, test_ds, None
  logging.info("feature cache %s ready in %.0fs", feature_cache.directory, time.time() - t0)
  return train_ds, train_idx, val_idx, test_ds, feature_cache


def _failures(failed, ds, data_cfg) -> list[int]:
  """Raises on the first of `failed` [(index, reason)] unless skip_bad_files; else lists them, returns the indices."""
  failed = sorted(failed)
  if failed and not data_cfg.skip_bad_files:
    raise sources.DataError(f"{failed[0][1]} ({len(failed)} file(s) fail to decode); run with "
                            f"--config.data.skip_bad_files=true to continue without them")
  ds.skipped.extend((ds.clips[i].name, why) for i, why in failed)
  return [i for i, _ in failed]


def write_train_data(cfg, ds, indices, feature_cache, path: str) -> None:
  """Draws the first `logging.number_of_audios` training chunks of step 1 onward as the model sees them.

  The same pipeline and seed as the run (waveform augmentation and SpecAugment included, mixup
  with step k's key), in a separate iterator: the run's own data order is untouched.
  """
  one = cfg.copy_and_resolve_references()
  one.data.num_workers = 0
  batches = iter(pipeline.train_batches(ds, indices, one, cfg.seed, 1, feature_cache))
  mels, titles = [], []
  for k, batch in enumerate(batches):
    x, y = batch["x"], batch["y"]
    if cfg.audio.features_on_device:
      x = np.stack([features.log_mel(w, cfg.audio) for w in x])[..., None]
    targets = np.eye(len(ds.classes), dtype=np.float32)[y] if y.ndim == 1 else y
    if cfg.augmentation.mix_audio == "mixup":  # what step k + 1 mixes, with its key
      x, targets = (np.asarray(v) for v in augment.mixup(x, targets, jax.random.fold_in(jax.random.key(cfg.seed), k),
                                                          cfg.augmentation))
    for mel, t in zip(x[..., 0], targets):
      parts = [f"{ds.classes[c]} ({t[c]:.3f})" for c in np.argsort(-t) if t[c] > 5e-4]
      mels.append(mel)
      titles.append("label: " + (" + ".join(parts) or "none"))
    if len(mels) >= cfg.logging.number_of_audios:
      break
  n = cfg.logging.number_of_audios
  plots.plot_train_data(mels[:n], titles[:n], mels[0].shape[1] * cfg.audio.hop_size / cfg.audio.sample_rate,
                        f"training data: the first {min(n, len(mels))} chunks of step 1, as the model sees them", path)


def _validation_views(board, workdir, step_, ds, idx, probs, m, cfg) -> None:
  """Writes the validation's confusion matrix and predictions figures and logs them, with the worst clips' audio."""
  targets = ds.target(idx)
  clip_loss = losses.clip_losses(probs, targets, cfg.train.loss)
  confusion = os.path.join(workdir, "validation_confusion.png")
  with checkpoint.space_for(confusion, 200_000):
    plots.plot_confusion(m["confusion_matrix"], f"validation at step {step_}: accuracy {m['accuracy']:.3f}", confusion)
  shown = os.path.join(workdir, "validation_predictions.png")
  with checkpoint.space_for(shown, 500_000):
    plots.plot_predictions(ds, idx, probs, clip_loss, cfg, f"validation at step {step_}: the highest-loss clips",
                           shown)
  board.image("validation/confusion_matrix", confusion, step_)
  board.image("validation/predictions", shown, step_)
  seconds = min(cfg.prediction.inference_chunk_seconds, board_lib.AUDIO_SECONDS)
  for rank, k in enumerate(np.argsort(-clip_loss)[:cfg.logging.number_of_audios]):
    i = int(idx[k])
    truth = "|".join(ds.clips[i].tags) or "none"
    board.audio(f"validation/worst_{rank}", ds.load(i, 0.0, seconds, cfg.audio.sample_rate), cfg.audio.sample_rate,
                step_)
    board.text(f"validation/worst_{rank}", f"{ds.clips[i].name}: true {truth}, predicted "
               f"{ds.classes[int(probs[k].argmax())]} ({probs[k].max():.3f}), loss {clip_loss[k]:.3f}", step_)
  board.flush()


def _fmt_time(seconds):
  m, s = divmod(int(seconds), 60)
  return f"{m}m{s:02d}s"


class _Preemption:
  """Turns SIGTERM and SIGINT into a flag the loop reads, so the run checkpoints and exits cleanly."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __enter__(self):
    self.signum = None
    self._previous = [signal.signal(sig, self._handle) for sig in self.SIGNALS]
    return self

  @property
  def requested(self) -> bool:
    return self.signum is not None

  def _handle(self, signum, frame):
    del frame
    self.signum = self.signum or signum

  def __exit__(self, *_):
    for sig, previous in zip(self.SIGNALS, self._previous):
      signal.signal(sig, previous)


def train_and_evaluate(cfg, workdir: str) -> dict:
  """Trains per `cfg`, evaluating every `evaluation_epochs`; returns the last metrics per split.

  Raises configs.ConfigError, listing every invalid field, before any data or model work.
  """
  t_start = time.time()
  configs.validate(cfg, device_count=jax.device_count())
  primary = jax.process_index() == 0
  lock = rundir.open_run(cfg, workdir, jax.process_index(), jax.process_count())
  if jax.process_count() > 1:  # process 0 may have moved an old run aside (train.restart)
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("open_run")
  logging.info("config %s, seed %d, workdir %s, devices %s", cfg.name, cfg.seed, workdir, jax.devices())
  cli.check_stop()  # before the loop a stop signal raises cli.Stopped where it lands; these catch one swallowed

  from instruments_jax.model import weights_path

  weights_path(str(cfg.model.weights))  # fetch (or fail on) a download (ImageNet, musicnn) before any data work
  feature_cache = cache.from_config(cfg.data, cfg.audio)
  train_ds, train_idx, val_idx, test_ds, feature_cache = load_data(cfg, feature_cache)
  cli.check_stop()
  if primary:
    rundir.write_config(cfg, workdir)  # with data.classes resolved
    rundir.write_skipped(workdir, train_ds.skipped + (test_ds.skipped if test_ds else []))
  logging.info("data %s: %d train / %d validation clips; test: %s", cfg.data.path, len(train_idx), len(val_idx),
               f"{len(test_ds)} clips" if test_ds else "none")

  b, epochs = cfg.train.batch_size, cfg.train.epochs
  steps_per_epoch = pipeline.train_steps_per_epoch(train_ds, train_idx, cfg)
  total_steps = steps_per_epoch * epochs
  s = step.setup(cfg, total_steps, cfg.seed)
  cli.check_stop()
  logging.info("model: %s, %d parameters, weights=%s; %d device(s) (%s), each holding %d of every batch of %d",
               cfg.model.backbone, s.model.count_params(), cfg.model.weights, s.mesh.size,
               jax.devices()[0].platform, b // s.mesh.size, b)
  batches = iter(pipeline.train_batches(train_ds, train_idx, cfg, cfg.seed, epochs, feature_cache))
  manager = checkpoint.manager(workdir, cfg.train.keep_checkpoints)
  state, start = s.state, 0
  restored = checkpoint.restore_latest(manager, state, batches, workdir)
  if restored is not None:
    state, start = restored
    state = step.replicate(state, s.mesh)
    logging.info("resuming from the checkpoint of step %d in %s", start, manager.directory)
    cli.STOP_NOTE[0] = f"nothing needed saving: a re-run resumes from the checkpoint of step {start}"
  log = rundir.MetricsLog(os.path.join(workdir, "metrics.jsonl") if primary else None,
                          keep_until_step=start if restored else None)
  board = board_lib.Board(workdir if primary else None, resume_step=start if restored else None)
  if primary and not restored:
    figure = os.path.join(workdir, "train_data.png")
    with checkpoint.space_for(figure, 500_000):
      write_train_data(cfg, train_ds, train_idx, feature_cache, figure)
    board.image("train_data", figure, 0)
  gather = jax.jit(lambda v: v, out_shardings=NamedSharding(s.mesh, P()))  # every host gets every row
  all_finite = jax.jit(lambda tree: jnp.all(jnp.stack([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)])))

  validation_batches = pipeline.KeptBatches(train_ds, val_idx, cfg, feature_cache)  # rendered once, replayed

  def evaluate(split, ds, idx):
    t0 = time.time()
    def predict_fn(x):
      cli.check_stop()  # after the loop a stop abandons the test evaluation, even one whose first raise was lost
      return gather(s.predict(*step.weights(state), step.shard(x, s.mesh)))

    probs, _ = metrics.predict_clips(predict_fn, ds, idx, cfg, cache=feature_cache,
                                     batches=validation_batches if split == "validation" else None)
    m = metrics.classification_metrics(probs, ds.target(idx), cfg.train.loss, ds.classes,
                                       cfg.prediction.probability_threshold, detailed=True)
    logging.info("%s: loss %.4f  accuracy %.4f  roc_auc %.4f  (%d clips, %.0fs)", split, m["loss"],
                 m["accuracy"], m["roc_auc"], m["clips"], time.time() - t0)
    board.metrics(split, i if split == "validation" else total_steps, m)
    return m, probs

  def scores(m):  # what metrics.jsonl keeps of an evaluation: the numbers, not the tables
    return {k: v for k, v in m.items() if not isinstance(v, (dict, bool))}

  def kept():
    latest = manager.latest_step()
    return (f"the checkpoint of step {latest} is kept: free space and re-run the same command to resume from it"
            if latest is not None else "no checkpoint was written yet: free space and re-run the same command")

  def kept_checkpoint():
    latest = manager.latest_step()
    return "no checkpoint written (none was due yet)" if latest is None else f"the checkpoint of step {latest} kept"

  def stop_if_diverged(values, at):
    """Raises at the first non-finite loss of `values`, the losses of the steps up to `at`."""
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):  # never overwrite the last good checkpoint with a diverged state
      first = at - len(values) + 1 + int(bad[0])
      raise FloatingPointError(f"loss is {values[bad[0]]} at step {first}, the first non-finite one; stopping "
                               f"with {kept_checkpoint()}")

  results, losses = {}, []
  cli.check_stop()
  t_last, step_last = time.time(), start
  logging.info("training %d epochs x %d steps of batch %d", epochs, steps_per_epoch, b)
  with _Preemption() as preemption, _disk_full_note(kept):
    for i in range(start + 1, total_steps + 1):
      batch = next(batches)
      state, loss = s.train_step(state, step.shard(batch["x"], s.mesh), step.shard(batch["y"], s.mesh))
      losses.append(loss)
      epoch, epoch_end = (i - 1) // steps_per_epoch + 1, itstime(i, steps_per_epoch)
      stopping = preemption.requested  # read once: a signal during this step's work acts at the next one
      saving = epoch_end or itstime(i, cfg.train.checkpoint_every_steps) or stopping

      if itstime(i, cfg.train.log_every_steps) or saving:  # a checkpoint closes the log interval: no loss lost
        batch_losses, losses = [float(v) for v in jax.device_get(losses)], []
        now = time.time()
        rate, t_last, step_last = (i - step_last) * b / (now - t_last), now, i
        lr = float(s.schedule(max(i // cfg.train.grad_accumulation - 1, 0)))
        log.write(step=i, samples=i * b, epoch=epoch, lr=lr, train_loss=float(np.mean(batch_losses)),
                  samples_per_s=rate, batch_losses=batch_losses)
        board.train(i, batch_losses, lr, rate)
        logging.info("epoch %d/%d  step %d/%d  loss %.4f  lr %.2e  %.1f samples/s  ETA %s", epoch, epochs, i,
                     total_steps, np.mean(batch_losses), lr, rate, _fmt_time((total_steps - i) * b / rate))
        stop_if_diverged(batch_losses, i)

      if epoch_end and itstime(epoch, cfg.train.evaluation_epochs, last=epochs):
        m, probs = evaluate("validation", train_ds, val_idx)
        results["validation"] = m
        log.write(step=i, samples=i * b, epoch=epoch, split="validation", **scores(m))
        if primary:
          chart = os.path.join(workdir, "chart.png")
          with checkpoint.space_for(chart, 200_000):
            plots.plot_chart(log.path, chart)
          board.image("chart", chart, i)
          _validation_views(board, workdir, i, train_ds, val_idx, probs, m, cfg)
        t_last = time.time()
        if preemption.requested and not stopping:  # a stop asked for while evaluating: checkpoint now
          stopping = saving = True

      if saving:
        if not bool(all_finite((state["params"], state["model_state"]))):  # a finite loss, then a diverged update
          raise FloatingPointError(f"the parameters after step {i} are not finite; stopping with "
                                   f"{kept_checkpoint()}")
        checkpoint.save(manager, i, state, batches)
        board.flush()  # what TensorBoard shows up to a checkpoint survives a kill
      if stopping or (saving and preemption.requested):  # a stop that came while saving: saved already
        name = signal.Signals(preemption.signum).name
        logging.warning("%s: saved the checkpoint of step %d; re-run the same command to resume", name, i)
        board.close()
        return {"preempted_at_step": i, "signal": preemption.signum}

  cli.STOP_NOTE[0] = (f"training is complete (checkpoint {total_steps} holds the final state); the test "
                      f"evaluation was abandoned: re-run the same command to run it")
  with _disk_full_note(kept):
    if test_ds is not None:
      results["test"] = m = evaluate("test", test_ds, np.arange(len(test_ds)))[0]
      log.write(step=total_steps, samples=total_steps * b, epoch=epochs, split="test", **scores(m))
    wall = time.time() - t_start
    log.write(step=total_steps, wall_seconds=wall)
  board.close()
  logging.info("done in %s; the final state is checkpoint %d in %s", _fmt_time(wall), total_steps, manager.directory)
  lock.close()
  for split, m in results.items():
    print(f"{split:>10}: accuracy {m['accuracy']:.4f}  ROC-AUC {m['roc_auc']:.4f}  loss {m['loss']:.4f}  "
          f"({m['clips']} clips)", flush=True)
  return results


@contextlib.contextmanager
def _disk_full_note(kept):
  """Adds what was kept, and how to go on, to a DiskFull."""
  try:
    yield
  except checkpoint.DiskFull as e:
    raise checkpoint.DiskFull(e.path, e.needed, e.free, note=kept()) from None


def main(argv):
  del argv
  if os.environ.get("JAX_COORDINATOR_ADDRESS"):  # several hosts: join them before touching devices
    jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"], int(os.environ["JAX_NUM_PROCESSES"]),
                               int(os.environ["JAX_PROCESS_ID"]))
  cfg = cli.config_or_exit(device_count=jax.device_count())
  if not _WORKDIR.value:
    print("error: --workdir is required", file=sys.stderr)
    sys.exit(cli.CONFIG_ERROR_STATUS)
  pylogging.getLogger("absl").setLevel(pylogging.INFO)
  logging.get_absl_handler().python_handler.stream = sys.stdout
  with cli.clean_errors(FloatingPointError):  # a diverged run names the step and the checkpoint it kept
    results = train_and_evaluate(cfg, _WORKDIR.value)
  if results.get("signal") == signal.SIGINT:
    sys.exit(cli.SIGNAL_STATUS[signal.SIGINT])


if __name__ == "__main__":
  cli.run(main)
