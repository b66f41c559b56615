"""A run directory: its config, its checkpoint, and the trained model as a pure JAX function.

    clf = instruments_jax.load_classifier("runs/quick")
    probs = jax.jit(clf.apply)(clf.params, waveforms)        # [B, samples] at clf.sample_rate
    probs = jax.jit(clf.apply_log_mel)(clf.params, log_mels)  # [B, mel_bins, frames]
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os

import instruments_jax  # noqa: F401  (selects the JAX backend)
import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from instruments_jax import CLASSES
from instruments_jax.data import features

CHECKPOINT = "checkpoint"


@contextlib.contextmanager
def _quiet_orbax():
  """Silences orbax, which narrates every write and read at INFO."""
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)
  try:
    yield
  finally:
    logging.set_verbosity(verbosity)


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """Returns the resolved config a run wrote to config.json."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{workdir!r} is not a run directory: no config.json")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def train_state(model, tx) -> dict:
  """Returns the train state pytree of a freshly built model: params, model state, optimizer state, step."""
  params = [v.value for v in model.trainable_variables]
  return {"params": params, "model_state": [v.value for v in model.non_trainable_variables],
          "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}


def save_checkpoint(workdir: str, state) -> None:
  """Writes the train state with orbax (atomically: a temporary directory, then a rename)."""
  import orbax.checkpoint as ocp

  with _quiet_orbax():
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(os.path.abspath(os.path.join(workdir, CHECKPOINT)), jax.device_get(state), force=True)
    ckpt.wait_until_finished()


def restore_checkpoint(workdir: str, template):
  """Returns the checkpointed train state, shaped like `template`."""
  import orbax.checkpoint as ocp

  path = os.path.abspath(os.path.join(workdir, CHECKPOINT))
  if not os.path.isdir(path):
    raise FileNotFoundError(f"{workdir!r} holds no checkpoint (expected {path})")
  with _quiet_orbax():
    return ocp.StandardCheckpointer().restore(path, jax.device_get(template))


@dataclasses.dataclass(frozen=True)
class Classifier:
  """A trained model as pure functions of (params, input); works under jit, vmap and grad."""

  config: ml_collections.ConfigDict
  model: object  # the keras.Model, called statelessly
  params: dict  # {"params": trainable values, "model_state": BatchNorm statistics etc.}
  classes: tuple = CLASSES

  @property
  def sample_rate(self) -> int:
    return int(self.config.audio.sample_rate)

  def apply_log_mel(self, params, log_mel):
    """Returns class probabilities [..., C] for log-mel input [..., mel_bins, frames]."""
    from instruments_jax.evaluate import probabilities

    single = log_mel.ndim == 2
    x = log_mel[None] if single else log_mel
    logits, _ = self.model.stateless_call(params["params"], params["model_state"], x[..., None], training=False)
    probs = probabilities(logits.astype(jnp.float32), self.config.train.loss, xp=jnp)
    return probs[0] if single else probs

  def apply(self, params, waveform):
    """Returns class probabilities [..., C] for mono waveforms [..., samples] at `sample_rate`."""
    return self.apply_log_mel(params, features.log_mel(waveform, self.config.audio, xp=jnp))


def load_classifier(workdir: str) -> Classifier:
  """Returns the classifier a training run saved in `workdir`."""
  from instruments_jax.model import build_model
  from instruments_jax.train import make_optimizer

  cfg = load_config(workdir)
  with cfg.unlocked():
    cfg.model.weights = "none"  # the checkpoint holds every weight
  model = build_model(cfg, (cfg.audio.mel_bins, None, 1))
  tx, _ = make_optimizer(cfg, total_steps=1)
  state = restore_checkpoint(workdir, train_state(model, tx))
  params = {"params": [jnp.asarray(p) for p in state["params"]],
            "model_state": [jnp.asarray(p) for p in state["model_state"]]}
  return Classifier(cfg, model, params)


# --- resumable training: periodic checkpoints with the data iterator, and a workdir lock ---


def checkpoint_manager(workdir: str, keep: int):
  """Returns an orbax manager of workdir/checkpoints/<step> keeping the last `keep`; writes are synchronous."""
  import orbax.checkpoint as ocp

  with _quiet_orbax():
    return ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "checkpoints")),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False))


def save_step(manager, step: int, state, iterator) -> None:
  """Saves the train state and the grain iterator's position at `step` (atomically: tmp dir + rename)."""
  import grain
  import orbax.checkpoint as ocp

  with _quiet_orbax():
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(jax.device_get(state)),
                                               data=grain.checkpoint.CheckpointSave(iterator)), force=True)
    manager.wait_until_finished()


def restore_latest(manager, template, iterator):
  """Returns (state, step) of the newest checkpoint, moving `iterator` to where it was; None if there is none."""
  import grain
  import orbax.checkpoint as ocp

  step = manager.latest_step()
  if step is None:
    return None
  with _quiet_orbax():
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(jax.device_get(template)), data=grain.checkpoint.CheckpointRestore(iterator)))
  return restored.state, step


class WorkdirBusy(RuntimeError):
  """Another live run holds this workdir."""


def lock_workdir(workdir: str, name: str = ".lock"):
  """Takes an exclusive lock on workdir/<name> for this process's lifetime; returns the open file."""
  import fcntl

  os.makedirs(workdir, exist_ok=True)
  f = open(os.path.join(workdir, name), "a+")
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    f.seek(0)
    holder = f.read().strip() or "unknown"
    f.close()
    raise WorkdirBusy(f"workdir {workdir!r} is in use by another live run (pid {holder}); "
                      "wait for it, stop it, or choose another --workdir") from None
  f.seek(0)
  f.truncate()
  f.write(str(os.getpid()))
  f.flush()
  return f
