"""Checkpoints of a run (orbax) and the lock that keeps two live runs off one workdir.

A run keeps `workdir/checkpoints/<step>/`: the train state (params, model state,
optimizer state, step) and grain's iterator position, written every
`train.checkpoint_every_steps`, at every epoch end and on SIGTERM; the last
`train.keep_checkpoints` are kept. The final state is simply the newest step:
there is no second copy. `restore_weights` reads only what inference needs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging as pylogging
import os
import shutil

import jax
from absl import logging

DIRECTORY = "checkpoints"


@contextlib.contextmanager
def _quiet_orbax(level=logging.WARNING):
  """Silences orbax, which narrates every write and read at INFO (and some at WARNING)."""
  verbosity = logging.get_verbosity()
  logging.set_verbosity(level)
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
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False,
                                                 cleanup_tmp_directories=True))  # a killed write's leftovers


def save(mgr, step: int, state, iterator) -> None:
  """Saves the train state and the grain iterator's position at `step` (atomically: tmp dir + rename).

  Raises DiskFull, before writing anything, when the filesystem lacks the state's bytes, and when a
  write fails for want of space; the partial write is removed and older checkpoints stay intact.
  """
  import grain
  import orbax.checkpoint as ocp

  state = jax.device_get(state)
  directory = str(mgr.directory)
  needed = sum(int(getattr(x, "nbytes", 8)) for x in jax.tree.leaves(state)) + (1 << 16)
  free = shutil.disk_usage(directory).free
  if free < needed:
    raise DiskFull(os.path.join(directory, str(step)), needed, free)
  try:
    with _quiet_orbax():
      mgr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             data=grain.checkpoint.CheckpointSave(iterator)), force=True)
      mgr.wait_until_finished()
  except Exception as e:  # orbax wraps an ENOSPC in other errors ("Event loop is closed"): ask the disk
    for name in os.listdir(directory):  # our own unfinished write of this step; never a finished checkpoint
      if name.startswith(f"{step}.orbax-checkpoint-tmp"):
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    free = shutil.disk_usage(directory).free
    if _no_space(e) or free < needed:
      raise DiskFull(os.path.join(directory, str(step)), needed, free) from None
    raise


def _no_space(e: BaseException | None) -> bool:
  """Returns whether `e`, or an error it wraps, is a full or read-only filesystem."""
  while e is not None:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
      return True
    if any(m in str(e) for m in _NO_SPACE_MESSAGES):  # tensorstore reports errno 28 inside a ValueError
      return True
    e = e.__cause__ or e.__context__
  return False


_NO_SPACE_MESSAGES = ("No space left on device", "Disk quota exceeded", "Read-only file system",
                      "os_error_code='28'")


class DiskFull(OSError):
  """A write that found no space: names the path, the bytes it needed and those free."""

  def __init__(self, path: str, needed: int, free: int | None = None, note: str = ""):
    self.path, self.needed, self.free = path, needed, free
    free_text = "" if free is None else f", {free:,} bytes free"
    super().__init__(f"no space left to write {path}: it needs about {needed:,} bytes{free_text}"
                     + (f"; {note}" if note else ""))


@contextlib.contextmanager
def space_for(path: str, needed: int):
  """Turns a full (or read-only) filesystem while writing `path` into DiskFull."""
  try:
    yield
  except OSError as e:
    if isinstance(e, DiskFull) or not _no_space(e):
      raise
    try:
      free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except OSError:
      free = None
    raise DiskFull(path, needed, free) from None


def _first_line(e: BaseException) -> str:
  text = str(e).strip() or type(e).__name__
  text = next((l for l in text.splitlines() if l.strip() and not l.startswith("Traceback")), text)
  return text if len(text) < 240 else text[:237] + "..."


def _check_metadata(step_dir: str, expected: dict) -> str | None:
  """Returns why the state saved in `step_dir` does not hold `expected` {key: [(shape, dtype)]}, or None.

  Raises on metadata that does not read (a damaged checkpoint).
  """
  import orbax.checkpoint as ocp

  with _quiet_orbax(logging.ERROR):  # it warns that state/ lacks the step's _CHECKPOINT_METADATA: true, and fine
    tree = ocp.StandardCheckpointer().metadata(os.path.join(step_dir, "state")).item_metadata
  for key, want in expected.items():
    if key not in tree:
      raise ValueError(f"state/_METADATA lacks {key!r}")
    found = [(tuple(m.shape), str(m.dtype)) for m in jax.tree.leaves(tree[key])]
    want = [(tuple(shape), str(dtype)) for shape, dtype in want]
    if len(found) != len(want):
      return f"it holds {len(found)} {key} arrays where the config's model has {len(want)}"
    for n, (f, w) in enumerate(zip(found, want)):
      if f != w:
        return f"its {key}[{n}] is {f[1]}{list(f[0])} where the config's model has {w[1]}{list(w[0])}"
  return None


class _ReportedDamage(pylogging.Filter):
  """Drops asyncio's "Task exception was never retrieved" for reads of a checkpoint already reported damaged.

  orbax reads a checkpoint's arrays in concurrent tasks; the first failure is raised (and reported
  in one line), and the other failed reads are logged with a traceback whenever the collector
  finds them, possibly long after. Only errors that name a reported step directory are dropped.
  """

  def __init__(self):
    super().__init__()
    self.step_dirs: set[str] = set()

  def filter(self, record):
    message = record.getMessage()
    if not message.startswith("Task exception was never retrieved"):
      return True
    error = str(record.exc_info[1]) if record.exc_info else message
    return not any(d in error for d in self.step_dirs)


_REPORTED = _ReportedDamage()


def _hush_reported(step_dir: str) -> None:
  if not _REPORTED.step_dirs:
    pylogging.getLogger("asyncio").addFilter(_REPORTED)
  _REPORTED.step_dirs.add(step_dir)


def _shapes(tree) -> list:
  return [(tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(tree)]


def restore_latest(mgr, template, iterator, workdir: str):
  """Returns (state, step) of the newest intact checkpoint, moving `iterator` to where it was; None if none.

  A checkpoint that does not read back (a truncated file, damaged metadata) is moved to
  workdir/damaged_checkpoints/<step>, never deleted, and the one before it is tried; a warning
  says which and why. A checkpoint of another model (other shapes or dtypes) raises RunDirError.
  """
  import grain
  import orbax.checkpoint as ocp

  template = jax.device_get(template)
  expected = {k: _shapes(template[k]) for k in ("params", "model_state")}  # lists: order is kept
  while (step := mgr.latest_step()) is not None:
    step_dir = os.path.join(str(mgr.directory), str(step))
    try:
      mismatch = _check_metadata(step_dir, expected)
      if mismatch is None:
        with _quiet_orbax():
          restored = mgr.restore(step, args=ocp.args.Composite(
              state=ocp.args.StandardRestore(template), data=grain.checkpoint.CheckpointRestore(iterator)))
        return restored.state, step
    except Exception as e:  # noqa: BLE001  (orbax, tensorstore and json raise many kinds on damaged files)
      _hush_reported(step_dir)
      aside = _set_aside(workdir, step_dir)
      mgr.reload()
      logging.warning("checkpoint %s is damaged (%s): moved it to %s and trying the one before", step_dir,
                      _first_line(e), aside)
      continue
    raise RunDirError(f"run {workdir!r}: checkpoint {step_dir} does not fit this config ({mismatch}); resume with "
                      f"the config in {os.path.join(workdir, 'config.json')}, or start over with "
                      f"--config.train.restart=true")
  return None


def _set_aside(workdir: str, step_dir: str) -> str:
  """Moves a damaged step directory under workdir/damaged_checkpoints/; returns where it went."""
  root = os.path.join(workdir, "damaged_checkpoints")
  os.makedirs(root, exist_ok=True)
  target = os.path.join(root, os.path.basename(step_dir))
  n = 1
  while os.path.exists(target):
    n += 1
    target = os.path.join(root, f"{os.path.basename(step_dir)}.{n}")
  shutil.move(step_dir, target)
  return target


def restore_weights(workdir: str, expected: dict | None = None) -> tuple[int, dict]:
  """Returns (step, {"params", "model_state"}) of the newest checkpoint in `workdir`, as saved (numpy).

  Needs no model or optimizer to restore into: orbax reads the saved tree as it is. With
  `expected` ({"params": [(shape, dtype)], "model_state": [...]}), the checkpoint's metadata is
  checked against it first. A checkpoint that is damaged or does not fit raises RunDirError,
  naming the run, the checkpoint and what to do.
  """
  import orbax.checkpoint as ocp

  directory = os.path.abspath(os.path.join(workdir, DIRECTORY))
  steps = []
  if os.path.isdir(directory):
    with _quiet_orbax():
      mgr = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(create=False))
      steps = list(mgr.all_steps())
  if not steps:
    if os.path.isdir(os.path.join(workdir, "checkpoint")):
      raise RunDirError(f"{workdir!r} holds only checkpoint/, the format of instruments_jax before "
                        f"checkpoints/<step>/ existed; retrain it with this version")
    raise FileNotFoundError(f"{workdir!r} holds no checkpoint (expected {directory}/<step>/); has it trained "
                            f"a step yet?")
  step = max(steps)
  step_dir = os.path.join(directory, str(step))
  try:
    mismatch = _check_metadata(step_dir, expected) if expected else None
    if mismatch is None:
      with _quiet_orbax():
        state = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
      from instruments_jax import step as step_lib  # the one rule for which weights a state's user gets

      params, model_state = step_lib.weights(state)  # with train.average_from: the running mean
      return step, {"params": list(params), "model_state": list(model_state)}
  except Exception as e:  # noqa: BLE001  (orbax, tensorstore and json raise many kinds on damaged files)
    _hush_reported(step_dir)
    older = sorted(set(steps) - {step}, reverse=True)
    fallback = (f"; or move it out of {directory} to use the checkpoint of step {older[0]}" if older else "")
    raise RunDirError(f"run {workdir!r}: checkpoint {step_dir} is damaged ({_first_line(e)}); re-run train on "
                      f"this workdir to resume from its newest intact checkpoint{fallback}") from None
  raise RunDirError(f"run {workdir!r}: checkpoint {step_dir} does not fit the model its config.json describes "
                    f"({mismatch}); the run's config.json was changed after training, or the checkpoint comes "
                    f"from another run")


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
