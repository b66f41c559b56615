import os
import signal
import subprocess
import sys
import time

import numpy as np

import instruments_jax
from instruments_jax import checkpoint

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


def test_sigkill_then_rerun_ends_bitwise_equal_to_an_uninterrupted_run(tmp_path):
  straight = _train(tmp_path / "straight")
  assert straight.wait(600) == 0, straight.stdout.read()[-3000:]

  killed = _train(tmp_path / "killed")
  _wait_for_checkpoint(tmp_path / "killed", 6, killed)
  time.sleep(0.5)  # die somewhere after that checkpoint, mid-step
  killed.send_signal(signal.SIGKILL)
  killed.wait()
  resumed = _train(tmp_path / "killed")
  out = resumed.communicate(timeout=600)[0]
  assert resumed.returncode == 0, out[-3000:]
  assert "resuming from the checkpoint of step" in out

  for a, b in zip(_final_params(tmp_path / "straight"), _final_params(tmp_path / "killed"), strict=True):
    np.testing.assert_array_equal(a, b)
  steps = [l for l in open(tmp_path / "killed" / "metrics.jsonl") if '"train_loss"' in l]
  assert len(steps) == len([l for l in open(tmp_path / "straight" / "metrics.jsonl") if '"train_loss"' in l])


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


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
  p = subprocess.run([sys.executable, *ARGS, f"--workdir={tmp_path}", "--config.train.learning_rate=inf",
                      "--config.train.checkpoint_every_steps=1", "--config.train.log_every_steps=1"],
                     capture_output=True, text=True, timeout=300)
  assert p.returncode != 0
  assert "FloatingPointError: loss is" in p.stderr and "at step" in p.stderr
  kept = sorted(int(n) for n in os.listdir(tmp_path / "checkpoints") if n.isdigit())
  assert kept and f"checkpoint of step {kept[-1]} kept" in p.stderr
