import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import instruments_jax
from instruments_jax import checkpoint

pytestmark = pytest.mark.slow  # each test trains in subprocesses: minutes on 2 cores

ARGS = ["-m", "instruments_jax.train", "--config=smoke", "--config.train.epochs=2",
        "--config.train.checkpoint_every_steps=2"]


def _train(workdir, *extra, **kw):
  return subprocess.Popen([sys.executable, *ARGS, f"--workdir={workdir}", *extra], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


def _wait_for_checkpoint(workdir, step, proc, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline:
    d = os.path.join(workdir, "checkpoints")
    if os.path.isdir(d) and any(n.isdigit() and int(n) >= step for n in os.listdir(d)):
      return
    assert proc.poll() is None, proc.stdout.read()[-3000:]
    time.sleep(0.2)
  raise TimeoutError(f"no checkpoint of step {step} in {timeout}s")


def _final_params(workdir):
  clf = instruments_jax.load_classifier(str(workdir))
  return [np.asarray(p) for p in clf.params["params"] + clf.params["model_state"]]


def _train_steps(workdir):
  return [l for l in open(os.path.join(workdir, "metrics.jsonl")) if '"train_loss"' in l]


def _sigkill_and_rerun_matches_a_straight_run(tmp_path, *extra, kill_after_step=6):
  """Trains straight; trains again, SIGKILLs it mid-step after checkpoint `kill_after_step`, reruns it; compares."""
  straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
  straight = _train(straight_dir, *extra)
  out = straight.communicate(timeout=600)[0]
  assert straight.returncode == 0, out[-3000:]
  epochs, steps = re.search(r"training (\d+) epochs x (\d+) steps", out).groups()
  total = int(epochs) * int(steps)
  assert kill_after_step < total, (kill_after_step, total)

  killed = _train(killed_dir, *extra)
  _wait_for_checkpoint(killed_dir, kill_after_step, killed)
  time.sleep(0.5)  # die somewhere after that checkpoint, mid-step
  killed.send_signal(signal.SIGKILL)
  assert killed.wait() == -signal.SIGKILL, "the run ended before it was killed"
  saved = max(int(n) for n in os.listdir(killed_dir / "checkpoints") if n.isdigit())
  assert saved < total, f"killed after the last checkpoint ({saved} of {total} steps): nothing left to resume"
  resumed = _train(killed_dir, *extra)
  out = resumed.communicate(timeout=600)[0]
  assert resumed.returncode == 0, out[-3000:]
  assert "resuming from the checkpoint of step" in out

  for a, b in zip(_final_params(straight_dir), _final_params(killed_dir), strict=True):
    np.testing.assert_array_equal(a, b)
  assert len(_train_steps(killed_dir)) == len(_train_steps(straight_dir))
  # TensorBoard: the resumed run appended a second event file; read back, no step appears twice
  straight_tb, killed_tb = _board_scalars(straight_dir), _board_scalars(killed_dir)
  assert len(os.listdir(killed_dir / "tensorboard")) == 2
  assert straight_tb.keys() == killed_tb.keys() and "train/batch_loss" in killed_tb
  for tag, steps in killed_tb.items():
    assert steps == straight_tb[tag], tag  # every step once, none missing


def _board_scalars(workdir):
  """Returns {tag: [steps]} of a run's TensorBoard scalars as TensorBoard reads them."""
  from tensorboard.backend.event_processing import event_accumulator as ea

  acc = ea.EventAccumulator(str(workdir / "tensorboard"), size_guidance={ea.SCALARS: 0})
  acc.Reload()
  return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_sigkill_then_rerun_ends_bitwise_equal_with_balanced_sampling_of_a_10_to_1_set(tmp_path):
  # The natural order, with grain worker processes and with the feature cache: tests/test_fault_injection.py
  # (20 kills). Here the balanced sampler's plan, on class folders.
  import soundfile as sf

  for name, n in (("banjo", 30), ("kazoo", 3)):  # 10:1
    (tmp_path / "data" / name).mkdir(parents=True)
    for j in range(n):
      t = np.arange(11025) / 22050
      sf.write(tmp_path / "data" / name / f"{j}.wav", (0.3 * np.sin(2 * np.pi * (200 + 37 * j) * t)).astype(np.float32),
               22050)
  _sigkill_and_rerun_matches_a_straight_run(
      tmp_path, f"--config.data.path={tmp_path / 'data'}", "--config.data.sampling=balanced",
      "--config.data.data_sample=1", "--config.data.num_folds=3", "--config.data.validation_fold=2",
      kill_after_step=2)


def test_sigkill_then_rerun_ends_bitwise_equal_with_the_mean_of_the_weights(tmp_path):
  # train.average_from keeps a running mean in the train state: a resume restores it, and what a run's
  # classifier loads is that mean, not the last weights.
  import orbax.checkpoint as ocp

  _sigkill_and_rerun_matches_a_straight_run(tmp_path, "--config.train.average_from=0.5")
  run = tmp_path / "straight"
  directory = run / "checkpoints"
  last = max(int(n) for n in os.listdir(directory) if n.isdigit())
  saved = ocp.CheckpointManager(str(directory)).restore(last, args=ocp.args.Composite(
      state=ocp.args.StandardRestore())).state
  loaded = instruments_jax.load_classifier(str(run)).params
  for a, b in zip(loaded["params"], saved["average"]["params"], strict=True):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(loaded["params"], saved["params"]))


def test_sigterm_writes_a_checkpoint_and_exits_0(tmp_path):
  proc = _train(tmp_path)
  _wait_for_checkpoint(tmp_path, 2, proc)
  proc.send_signal(signal.SIGTERM)
  out = proc.communicate(timeout=300)[0]
  assert proc.returncode == 0, out[-3000:]
  assert "SIGTERM: saved the checkpoint of step" in out


def test_a_second_run_on_a_live_workdir_is_refused(tmp_path):
  held = checkpoint.lock_workdir(str(tmp_path))
  try:
    p = subprocess.run([sys.executable, *ARGS, f"--workdir={tmp_path}"], capture_output=True, text=True, timeout=300)
  finally:
    held.close()
  assert p.returncode != 0
  assert f"pid {os.getpid()}" in p.stderr and "in use by another live run" in p.stderr


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  # A valid config does not diverge in a few smoke steps (inf is refused by the config check,
  # BCE on huge logits stays finite, and ReLU turns NaN inputs into zeros), so the fault is
  # injected: from the 5th step on, the step reports a NaN loss.
  import math

  import pytest

  from instruments_jax import step
  from instruments_jax.configs import get_config
  from instruments_jax.train import train_and_evaluate

  real_setup = step.setup

  def diverging_setup(*args, **kwargs):
    s = real_setup(*args, **kwargs)
    real_step, calls = s.train_step, []

    def train_step(state, x, y):
      calls.append(1)
      state, loss = real_step(state, x, y)
      return state, loss * np.float32("nan") if len(calls) >= 5 else loss

    s.train_step = train_step
    return s

  monkeypatch.setattr(step, "setup", diverging_setup)
  cfg = get_config("smoke")
  cfg.train.log_every_steps = 3  # the first NaN (step 5) lies inside the interval that ends at step 6
  cfg.train.checkpoint_every_steps = 4
  with pytest.raises(FloatingPointError, match=r"loss is nan at step 5, the first non-finite one; stopping with "
                                               r"the checkpoint of step 4 kept"):
    train_and_evaluate(cfg, str(tmp_path))
  kept = sorted(int(n) for n in os.listdir(tmp_path / "checkpoints") if n.isdigit())
  assert kept == [4]
  clf = instruments_jax.load_classifier(str(tmp_path))  # the kept checkpoint holds a finite state
  assert clf.step == 4 and all(np.isfinite(p).all() for p in clf.params["params"] + clf.params["model_state"])
  batch = sum((json.loads(l)["batch_losses"] for l in open(tmp_path / "metrics.jsonl")), [])
  assert len(batch) == 6 and all(math.isfinite(v) for v in batch[:4]) and all(math.isnan(v) for v in batch[4:])


def test_a_diverged_update_behind_a_finite_loss_is_never_checkpointed(tmp_path, monkeypatch):
  import pytest

  from instruments_jax import step
  from instruments_jax.configs import get_config
  from instruments_jax.train import train_and_evaluate

  real_setup = step.setup

  def exploding_setup(*args, **kwargs):
    s = real_setup(*args, **kwargs)
    real_step, calls = s.train_step, []

    def train_step(state, x, y):  # step 4's update overflows; its loss, computed before the update, is finite
      calls.append(1)
      state, loss = real_step(state, x, y)
      if len(calls) == 4:
        state = {**state, "params": [p * np.float32("inf") for p in state["params"]]}
      return state, loss

    s.train_step = train_step
    return s

  monkeypatch.setattr(step, "setup", exploding_setup)
  cfg = get_config("smoke")
  cfg.train.checkpoint_every_steps = 2
  with pytest.raises(FloatingPointError, match=r"parameters after step 4 are not finite; stopping with the "
                                               r"checkpoint of step 2 kept"):
    train_and_evaluate(cfg, str(tmp_path))
  clf = instruments_jax.load_classifier(str(tmp_path))
  assert clf.step == 2 and all(np.isfinite(p).all() for p in clf.params["params"])


def test_the_cli_reports_a_diverged_run_in_one_line(capsys):
  import pytest

  from instruments_jax import cli

  with pytest.raises(SystemExit) as e, cli.clean_errors(FloatingPointError):
    raise FloatingPointError("loss is nan at step 5, the first non-finite one")
  assert e.value.code == 1 and capsys.readouterr().err == "error: loss is nan at step 5, the first non-finite one\n"
