"""Fault injection: `smoke` runs SIGKILLed at 20 seeded moments, each followed by a rerun, end bitwise
equal to uninterrupted runs (parameters, batch losses and evaluation metrics).

Two chains of 10 kills on a small folder of audio files, one per way the shipped configs feed
data: through grain worker processes (as `quick` and `baseline` train on the embedded set, whose
clips the workers render instead of decode), and through the on-disk feature cache (as they train
on a user's folder). Kill moments are drawn from a seeded
generator among: a time after the start (imports, data checks, cache fill, compilation), the middle
of a training step, the middle of a checkpoint write (a temporary checkpoint directory exists),
validation, and the test evaluation; a time that a run ends before (a short rerun on a fast machine)
is tried again on a fresh run, inside the length of the one that ended. Set FAULT_REPORT=FILE to write
the moments tried and their outcomes as JSON (experiments/RESULTS.md records one).
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from instruments_jax import checkpoint

FOLDS = ["--config.data.num_folds=3", "--config.data.validation_fold=2"]  # the kaggle fixture has 3 piano clips

pytestmark = pytest.mark.slow  # about 4 minutes a chain on 2 cores

SEED = 20261127
KILLS_PER_CHAIN = 10
TRAINING_KINDS = ("time", "step", "checkpoint", "validation")  # moments while training is left
DONE_KINDS = ("time", "test")  # moments once it is done (a rerun resumes at the end and evaluates on test)
TIMING = ("samples_per_s", "wall_seconds")  # the only fields of metrics.jsonl allowed to differ


def _args(workdir, data_args):
  return [sys.executable, "-m", "instruments_jax.train", "--config=smoke", f"--workdir={workdir}",
          "--config.train.epochs=3", "--config.train.checkpoint_every_steps=2", *data_args]


class _Run:
  """A training process whose output lines are collected by a thread, with the time each arrived."""

  def __init__(self, cmd):
    self.t0 = time.time()
    self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})  # lines arrive as they are logged
    self.lines = []
    self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
    self.reader.start()

  def finish(self, timeout=900):
    self.proc.wait(timeout=timeout)
    self.seconds = time.time() - self.t0
    self.reader.join(timeout=60)
    return "".join(self.lines)


def _kill_at(run: _Run, kind: str, rng: np.random.Generator, workdir, steps_per_epoch: int, total: int,
             latest: float) -> str:
  """SIGKILLs `run` at a moment of `kind` (a "time" at most `latest` s after its start); returns what happened
  (the moment, or that the run ended first)."""
  epoch_end = re.compile(r"step (%s)/%d " % ("|".join(str(e) for e in range(steps_per_epoch, total + 1,
                                                                           steps_per_epoch)), total))
  ckpt_dir = os.path.join(workdir, "checkpoints")
  delay = float(rng.uniform(0.0, 1.0))
  at_time = float(rng.uniform(0.5, latest))
  seen = len(run.lines)
  fire_at, moment = None, None
  while run.proc.poll() is None:
    now = time.time()
    new = run.lines[seen:]
    seen += len(new)
    if fire_at is None:
      if kind == "time" and now - run.t0 >= at_time:
        fire_at, moment = now, f"{at_time:.1f}s after the start"
      elif kind == "step" and any(re.search(r"step \d+/\d+ ", l) for l in new):
        fire_at, moment = now + delay * 0.3, "mid-step"
      elif kind == "validation" and any(epoch_end.search(l) for l in new):
        fire_at, moment = now + delay, "during validation"
      elif kind == "test" and os.path.isdir(os.path.join(ckpt_dir, str(total))):  # training done and saved
        fire_at, moment = now + 0.3 * delay, "during the test evaluation"
      elif kind == "checkpoint" and os.path.isdir(ckpt_dir) and any(
          "orbax-checkpoint-tmp" in n for n in os.listdir(ckpt_dir)):
        fire_at, moment = now, "during a checkpoint write"
    if fire_at is not None and now >= fire_at:
      lines = "".join(run.lines)
      children = _descendants(run.proc.pid)  # grain workers, the cache fill's processes, their resource tracker
      run.proc.send_signal(signal.SIGKILL)
      run.finish()
      _assert_gone(children)
      last = re.findall(r"step (\d+)/\d+ ", lines)
      return f"killed {moment} (last logged step {last[-1] if last else 'none'})"
    time.sleep(0.002)
  out = run.finish()
  assert run.proc.returncode == 0, out[-3000:]
  return f"{kind}: the run ended before that moment came"


def _descendants(pid: int) -> list[int]:
  """Returns the pids of every process below `pid` (Linux /proc)."""
  out, todo = [], [pid]
  while todo:
    p = todo.pop()
    try:
      for task in os.listdir(f"/proc/{p}/task"):
        with open(f"/proc/{p}/task/{task}/children") as f:
          kids = [int(k) for k in f.read().split()]
        out += kids
        todo += kids
    except FileNotFoundError:  # it ended meanwhile
      pass
  return out


def _assert_gone(pids, timeout=20.0):
  """Asserts that every process of `pids` ends (a killed run's workers must not outlive it)."""
  deadline = time.time() + timeout
  alive = list(pids)
  while alive and time.time() < deadline:
    alive = [p for p in alive if _alive(p)]
    time.sleep(0.05)
  assert not alive, f"processes of the killed run still alive: {alive}"


def _alive(pid: int) -> bool:
  try:
    with open(f"/proc/{pid}/status") as f:
      return "State:\tZ" not in f.read()  # a zombie has ended; only its parent's wait is missing
  except FileNotFoundError:
    return False


def _metrics(workdir):
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  return [{k: v for k, v in r.items() if k not in TIMING} for r in records if set(r) - set(TIMING) - {"step"}]


def _params(workdir):
  _, saved = checkpoint.restore_weights(str(workdir))
  return saved["params"] + saved["model_state"]


def _chain(tmp_path, name, data_args, seed):
  rng = np.random.default_rng(seed)
  straight_dir, killed_dir = tmp_path / f"{name}_straight", tmp_path / f"{name}_killed"
  straight = _Run(_args(straight_dir, data_args(f"{name}_straight")))
  out = straight.finish()
  assert straight.proc.returncode == 0, out[-3000:]
  epochs, steps_per_epoch = map(int, re.search(r"training (\d+) epochs x (\d+) steps", out).groups())

  total = epochs * steps_per_epoch
  tried = []
  for k in range(KILLS_PER_CHAIN):
    done = os.path.isdir(killed_dir / "checkpoints" / str(total))
    if k < len(TRAINING_KINDS) and not done:  # each kind at least once, the test evaluation last
      kind = TRAINING_KINDS[k]
    elif k == KILLS_PER_CHAIN - 1:
      kind = "test"
    else:
      kinds = DONE_KINDS if done else TRAINING_KINDS
      kind = kinds[int(rng.integers(len(kinds)))]
    latest = 12.0  # a first try's time: 0.5-12 s after the start
    for tries in range(1, 4):
      run = _Run(_args(killed_dir, data_args(f"{name}_killed")))
      outcome = _kill_at(run, kind, rng, killed_dir, steps_per_epoch, total, latest)
      if kind != "time" or outcome.startswith("killed"):
        break
      # The run ended before its time (a rerun with little left is short on a fast machine): again on a fresh
      # run, at a time inside the one that just ended. Every other kind comes in any run that reaches it.
      latest = 0.8 * run.seconds
    tried.append({"chain": name, "kill": k + 1, "kind": kind, "outcome": outcome, "tries": tries})
  final = _Run(_args(killed_dir, data_args(f"{name}_killed")))
  out = final.finish()
  assert final.proc.returncode == 0 and "Traceback" not in out, out[-3000:]

  assert _metrics(killed_dir) == _metrics(straight_dir)
  for a, b in zip(_params(straight_dir), _params(killed_dir), strict=True):
    np.testing.assert_array_equal(a, b)
  leftovers = [n for n in os.listdir(killed_dir / "checkpoints") if not n.isdigit()]
  assert not leftovers, leftovers  # killed writes leave nothing behind once a run saves again
  assert not (killed_dir / "damaged_checkpoints").exists()  # a kill never leaves a half-written checkpoint
  return tried


def test_twenty_sigkills_at_seeded_moments_end_bitwise_equal_to_uninterrupted_runs(tmp_path, kaggle_dir):
  from concurrent.futures import ThreadPoolExecutor

  files = [f"--config.data.path={kaggle_dir}", "--config.data.data_sample=1.0", *FOLDS]
  chains = [("grain_workers", lambda _: [*files, "--config.data.num_workers=2", "--config.data.cache_dir=none"]),
            ("feature_cache", lambda run: [*files, f"--config.data.cache_dir={tmp_path / run}_cache"])]
  with ThreadPoolExecutor(len(chains)) as pool:  # side by side: each run is mostly single-threaded start-up
    results = [pool.submit(_chain, tmp_path, name, args, SEED + n) for n, (name, args) in enumerate(chains)]
    tried = [t for r in results for t in r.result()]
  for t in tried:
    print(f"{t['chain']:>13} kill {t['kill']:>2} ({t['kind']}, try {t['tries']}): {t['outcome']}")
  if os.environ.get("FAULT_REPORT"):
    with open(os.environ["FAULT_REPORT"], "w") as f:
      json.dump(tried, f, indent=1)
  assert all(t["outcome"].startswith("killed") for t in tried), tried  # every moment came
