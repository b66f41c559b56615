"""Checkpoints of a run (orbax) and the lock that keeps two live runs off one workdir.

A run keeps `workdir/checkpoints/<step>/`: the train state (params, model state,
optimizer state, step) and grain's iterator position, written every
`train.checkpoint_every_steps`, at every epoch end and on SIGTERM; the last
`train.keep_checkpoints` are kept. The final state is simply the newest step:
there is no second copy. `restore_weights` reads only what inference needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

import jax
from absl import logging

DIRECTORY = "checkpoints"


@contextlib.contextmanager
def _quiet_orbax():
  """Silences orbax, which narrates every write and read at INFO."""
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)
  try:
    yield
  finally:
    logging.set_verbosity(verbosity)


def manager(workdir: str, keep: int):
  """Returns an orbax manager of workdir/checkpoints/<step> keeping the last `keep`; writes are synchronous."""
  import orbax.checkpoint as ocp

  with _quiet_orbax():
    return ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, DIRECTORY)),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False))


def save(mgr, step: int, state, iterator) -> None:
  """Saves the train state and the grain iterator's position at `step` (atomically: tmp dir + rename)."""
  import grain
  import orbax.checkpoint as ocp

  with _quiet_orbax():
    mgr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(jax.device_get(state)),
                                           data=grain.checkpoint.CheckpointSave(iterator)), force=True)
    mgr.wait_until_finished()


def restore_latest(mgr, template, iterator):
  """Returns (state, step) of the newest checkpoint, moving `iterator` to where it was; None if there is none."""
  import grain
  import orbax.checkpoint as ocp

  step = mgr.latest_step()
  if step is None:
    return None
  with _quiet_orbax():
    restored = mgr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(jax.device_get(template)), data=grain.checkpoint.CheckpointRestore(iterator)))
  return restored.state, step


def restore_weights(workdir: str) -> tuple[int, dict]:
  """Returns (step, {"params", "model_state"}) of the newest checkpoint in `workdir`, as saved (numpy).

  Needs no model or optimizer to restore into: orbax reads the saved tree as it is.
  """
  import orbax.checkpoint as ocp

  directory = os.path.abspath(os.path.join(workdir, DIRECTORY))
  step = None
  if os.path.isdir(directory):
    with _quiet_orbax():
      mgr = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(create=False))
      step = mgr.latest_step()
  if step is None:
    if os.path.isdir(os.path.join(workdir, "checkpoint")):
      raise RunDirError(f"{workdir!r} holds only checkpoint/, the format of instruments_jax before "
                              f"checkpoints/<step>/ existed; retrain it with this version")
    raise FileNotFoundError(f"{workdir!r} holds no checkpoint (expected {directory}/<step>/); has it trained "
                            f"a step yet?")
  with _quiet_orbax():
    state = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
  return step, {"params": list(state["params"]), "model_state": list(state["model_state"])}


class RunDirError(RuntimeError):
  """A run directory that cannot be loaded as it is; the message says why."""


class WorkdirBusy(RuntimeError):
  """Another live run holds this workdir."""


def lock_workdir(workdir: str, name: str = ".lock"):
  """Takes an exclusive lock on workdir/<name> for this process's lifetime; returns the open file.

  The kernel drops a flock when its holder dies (SIGKILL included), so a stale lock never blocks a resume.
  """
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
