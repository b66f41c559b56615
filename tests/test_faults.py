"""Faults around the happy path, through the real command lines: damaged runs, changed configs,
full disks, stop signals. Each ends in a clear message, a known exit status and no traceback."""

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from instruments_jax import checkpoint, configs, rundir
from instruments_jax.configs import get_config

FOLDS = ["--config.data.num_folds=3", "--config.data.validation_fold=2"]  # the kaggle fixture has 3 piano clips

TRAIN = [sys.executable, "-m", "instruments_jax.train", "--config=smoke"]
UNBUFFERED = {**os.environ, "PYTHONUNBUFFERED": "1"}  # each log line reaches the test when it is written


def _cli(*args, timeout=600):
  return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout)


def _clean(p, status):
  """Asserts exit status `status` and no traceback; returns stdout + stderr."""
  out = p.stdout + p.stderr
  assert p.returncode == status, (p.returncode, out[-3000:])
  assert "Traceback" not in out, out[-3000:]
  return out


def _fake_run(workdir, cfg=None):
  """A workdir as a run leaves it, as far as open_run looks: config.json and a checkpoint folder."""
  os.makedirs(os.path.join(workdir, "checkpoints", "4"))
  cfg = cfg or get_config("smoke")
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(cfg.to_json_best_effort(indent=2))


def _signal_when(args, pattern, sig, delay=0.0, timeout=600, ready=lambda: True):
  """Starts train with `args`; after a line matching `pattern` and then `ready()`, waits `delay` s and sends `sig`.

  Returns (exit status, output).
  """
  proc = subprocess.Popen([*TRAIN, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=UNBUFFERED)
  lines, deadline = [], time.time() + timeout
  for line in proc.stdout:
    lines.append(line)
    if re.search(pattern, line):
      while not ready():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.01)
      time.sleep(delay)
      proc.send_signal(sig)
      break
    assert time.time() < deadline
  else:
    raise AssertionError(f"the run ended before {pattern!r}:\n" + "".join(lines)[-3000:])
  rest = proc.communicate(timeout=timeout)[0]
  return proc.returncode, "".join(lines) + rest


@contextlib.contextmanager
def _tmpfs(path, size):
  """Mounts a tmpfs of `size` at `path` (skips the test where that is not allowed: not root, no mount)."""
  if os.geteuid() != 0 or shutil.which("mount") is None:
    pytest.skip("a small filesystem needs root and mount(8)")
  os.makedirs(path, exist_ok=True)
  p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                     text=True)
  if p.returncode:
    pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
  try:
    yield lambda new_size: subprocess.run(["mount", "-o", f"remount,size={new_size}", str(path)], check=True)
  finally:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


# --- item 2: a workdir remembers its config ---


def test_a_config_that_changes_the_checkpoints_meaning_is_refused_before_any_work(tmp_path):
  _fake_run(tmp_path)
  before = (tmp_path / "config.json").read_text()
  p = subprocess.run([*TRAIN, f"--workdir={tmp_path}", "--config.train.batch_size=8", "--config.model.dropout=0.5",
                      "--config.train.log_every_steps=5", "--config.data.num_workers=1"],
                     capture_output=True, text=True, timeout=300)
  out = _clean(p, 2)
  assert "train.batch_size: 4 in the run, 8 now" in out and "model.dropout: 0.0 in the run, 0.5 now" in out
  assert "log_every_steps" not in out and "num_workers" not in out  # safe to change on resume
  assert "--config.train.restart=true" in out and "2 config problems" in out
  assert (tmp_path / "config.json").read_text() == before and not (tmp_path / "metrics.jsonl").exists()


def test_only_logging_evaluation_keeping_and_loading_fields_may_change_on_resume():
  old, new = get_config("smoke"), get_config("smoke")
  for path in configs.RESUME_SAFE:
    section, _, name = path.rpartition(".")
    node = new[section] if section else new
    value = node[name]
    node[name] = (not value) if isinstance(value, bool) else type(value)(value * 2 + 1) if isinstance(value, (int, float)) else "x"
  assert configs.changed_on_resume(old, new) == []
  new.train.epochs, new.audio.mel_bins, new.seed = 3, 64, 7
  assert configs.changed_on_resume(old, new) == [("seed", 0, 7), ("audio.mel_bins", 32, 64), ("train.epochs", 1, 3)]


def test_restart_moves_the_old_run_aside_and_never_deletes_it(tmp_path):
  workdir = tmp_path / "run"
  _fake_run(workdir)
  (workdir / "metrics.jsonl").write_text('{"step": 2}\n')
  cfg = get_config("smoke")
  cfg.train.batch_size, cfg.train.restart = 8, True
  rundir.open_run(cfg, str(workdir)).close()
  (aside,) = [d for d in tmp_path.iterdir() if d.name.startswith("run.before-restart-")]
  assert sorted(os.listdir(aside)) == ["checkpoints", "config.json", "metrics.jsonl"]
  assert sorted(os.listdir(workdir)) == [".lock", "config.json"]
  assert json.loads((workdir / "config.json").read_text())["train"]["batch_size"] == 8


def test_a_resumed_run_keeps_the_seed_it_drew(tmp_path):
  cfg = get_config("smoke")
  cfg.seed = 1234
  _fake_run(tmp_path, cfg)
  again = get_config("smoke")
  again.seed = -1
  rundir.open_run(again, str(tmp_path)).close()
  assert again.seed == 1234


# --- item 1: damaged run directories ---


def test_a_config_json_that_does_not_read_is_named(tmp_path):
  (tmp_path / "config.json").write_text('{"name": "smo')
  p = _cli("instruments_jax.evaluate", f"--workdir={tmp_path}")
  out = _clean(p, 1)
  assert "config.json does not read" in out and str(tmp_path) in out


def test_a_metrics_line_cut_short_is_dropped_on_resume(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 2, "train_loss": 1.0}\n\n{"step": 4, "train_loss": 0.5}\n{"step": 6, "tra')
  log = rundir.MetricsLog(str(path), keep_until_step=6)
  log.write(step=8, train_loss=0.25)
  assert [json.loads(l)["step"] for l in path.read_text().splitlines()] == [2, 4, 8]


def test_unretrieved_reads_of_a_reported_damaged_checkpoint_log_no_traceback(tmp_path, caplog):
  """orbax reads arrays in concurrent tasks: after the first failure is reported, the others reach
  asyncio's "Task exception was never retrieved" (with a traceback) whenever they are collected."""
  import asyncio
  import logging as pylogging

  damaged, other = str(tmp_path / "checkpoints" / "10"), str(tmp_path / "checkpoints" / "8")
  checkpoint._hush_reported(damaged)
  loop = asyncio.new_event_loop()
  try:
    with caplog.at_level(pylogging.ERROR, logger="asyncio"):
      for step_dir in (damaged, other):
        error = ValueError(f'OUT_OF_RANGE: Error reading "opt_state.0" at local file "{step_dir}/state/"')
        loop.default_exception_handler({"message": "Task exception was never retrieved", "exception": error})
  finally:
    loop.close()
  logged = [r for r in caplog.records if r.name == "asyncio"]
  assert len(logged) == 1 and other in str(logged[0].exc_info[1])  # only the unreported checkpoint's error


@pytest.fixture(scope="module")
def three_checkpoints(tmp_path_factory):
  """A smoke run trained through the CLI with checkpoints at steps 4, 8 and 10."""
  workdir = tmp_path_factory.mktemp("three") / "run"
  p = subprocess.run([*TRAIN, f"--workdir={workdir}", "--config.train.checkpoint_every_steps=4"],
                     capture_output=True, text=True, timeout=900)
  _clean(p, 0)
  assert sorted(int(n) for n in os.listdir(workdir / "checkpoints")) == [4, 8, 10]
  return workdir


def _damaged_copy(run, tmp_path, how):
  copy = tmp_path / "damaged"
  shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".lock"))
  newest = copy / "checkpoints" / "10"
  if how == "truncated arrays":
    for f in (newest / "state" / "ocdbt.process_0" / "d").iterdir():
      os.truncate(f, 100)
  elif how == "damaged metadata":
    (newest / "state" / "_METADATA").write_text('{"tree_metadata": {"params')
  elif how == "missing state":
    shutil.rmtree(newest / "state")
  return copy


DAMAGE = ["truncated arrays", "damaged metadata", "missing state"]


@pytest.mark.slow
@pytest.mark.parametrize("command,how", [("predict", how) for how in DAMAGE] + [("evaluate", DAMAGE[0]),
                                                                               ("export", DAMAGE[1])])
def test_inference_on_a_damaged_checkpoint_fails_in_one_line(three_checkpoints, tmp_path, how, command):
  import soundfile

  run = _damaged_copy(three_checkpoints, tmp_path, how)
  soundfile.write(tmp_path / "a.wav", np.zeros(22050, np.float32), 22050)
  args = {"predict": [str(tmp_path / "a.wav")], "evaluate": [], "export": [f"--out={tmp_path / 'x.jax'}"]}[command]
  out = _clean(_cli(f"instruments_jax.{command}", f"--workdir={run}", *args), 1)
  (error,) = [l for l in out.splitlines() if l.startswith("error:")]
  assert f"checkpoint {run / 'checkpoints' / '10'} is damaged" in error and repr(str(run)) in error
  assert "re-run train on this workdir" in error and "the checkpoint of step 8" in error


@pytest.mark.slow
def test_resume_skips_a_damaged_checkpoint_keeps_it_and_ends_as_the_undamaged_run(three_checkpoints, tmp_path):
  run = _damaged_copy(three_checkpoints, tmp_path, "truncated arrays")
  p = subprocess.run([*TRAIN, f"--workdir={run}", "--config.train.checkpoint_every_steps=4"], capture_output=True,
                     text=True, timeout=900)
  out = _clean(p, 0)
  assert re.search(r"checkpoint \S+/checkpoints/10 is damaged \(.+\): moved it to \S+/damaged_checkpoints/10", out)
  assert "resuming from the checkpoint of step 8" in out
  assert (run / "damaged_checkpoints" / "10" / "state").is_dir()  # kept, not deleted
  _, want = checkpoint.restore_weights(str(three_checkpoints))
  _, got = checkpoint.restore_weights(str(run))
  for a, b in zip(want["params"] + want["model_state"], got["params"] + got["model_state"], strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_a_checkpoint_of_another_model_is_refused_naming_the_mismatch(three_checkpoints):
  _, saved = checkpoint.restore_weights(str(three_checkpoints))
  expected = {k: [(v.shape, str(v.dtype)) for v in saved[k]] for k in ("params", "model_state")}
  expected["params"][0] = ((3, 3), "float32")
  with pytest.raises(checkpoint.RunDirError, match=r"does not fit the model .*params\[0\] is float32\[.*\] where "
                                                   r"the config's model has float32\[3, 3\]"):
    checkpoint.restore_weights(str(three_checkpoints), expected)


# --- item 3: full disks ---


def test_a_full_disk_is_named_with_the_bytes_needed(tmp_path):
  with pytest.raises(checkpoint.DiskFull, match=r"no space left to write .*chart.png: it needs about 1,234 bytes"):
    with checkpoint.space_for(str(tmp_path / "chart.png"), 1234):
      raise OSError(errno.ENOSPC, "No space left on device")
  with pytest.raises(PermissionError):  # other errors pass through as they are
    with checkpoint.space_for(str(tmp_path / "chart.png"), 1234):
      raise PermissionError(errno.EACCES, "denied")


@pytest.mark.slow
def test_a_checkpoint_write_that_runs_out_of_space_leaves_the_last_one_restorable(tmp_path, monkeypatch):
  import grain

  with _tmpfs(tmp_path / "small", "2m"):
    mgr = checkpoint.manager(str(tmp_path / "small"), keep=3)
    ds = grain.MapDataset.range(10).to_iter_dataset()
    it = iter(ds)
    rng = np.random.default_rng(0)  # random: orbax compresses, and constant arrays would fit anywhere
    small = {"params": [rng.random(1000, np.float32)], "model_state": [np.zeros((3,), np.float32)],
             "step": np.int32(1)}
    checkpoint.save(mgr, 1, small, it)
    big = {**small, "params": [rng.random(1_000_000, np.float32)]}  # 4 MB: does not fit
    with pytest.raises(checkpoint.DiskFull, match=r"checkpoints/2: it needs about 4,0\d\d,\d\d\d bytes"):
      checkpoint.save(mgr, 2, big, it)  # refused before writing
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1 << 40))
    with pytest.raises(checkpoint.DiskFull):  # the write itself fails for want of space
      checkpoint.save(mgr, 2, big, it)
    monkeypatch.setattr(shutil, "disk_usage", real)
    assert os.listdir(tmp_path / "small" / "checkpoints") == ["1"]  # no partial write left behind
    _, state = checkpoint.restore_weights(str(tmp_path / "small"))
    np.testing.assert_array_equal(state["params"][0], small["params"][0])


@pytest.mark.slow
def test_training_on_a_full_disk_stops_clearly_and_resumes_once_there_is_space(tmp_path):
  # The smoke state (cnn8's params and AdamW moments) is about 13 MB a checkpoint, the rest of the
  # run about 1.3 MB: 22 MB hold one checkpoint, not two.
  with _tmpfs(tmp_path / "small", "22m") as resize:
    workdir = tmp_path / "small" / "run"
    args = [f"--workdir={workdir}", "--config.train.checkpoint_every_steps=4"]
    out = _clean(subprocess.run([*TRAIN, *args], capture_output=True, text=True, timeout=900), 1)
    (error,) = [l for l in out.splitlines() if l.startswith("error:")]
    assert re.search(r"no space left to write \S+/checkpoints/8: it needs about [\d,]+ bytes, [\d,]+ bytes free; the "
                     r"checkpoint of step 4 is kept: free space and re-run the same command", error), error
    resize("80m")
    out = _clean(subprocess.run([*TRAIN, *args], capture_output=True, text=True, timeout=900), 0)
    assert "resuming from the checkpoint of step 4" in out and "test: accuracy" in out


@pytest.mark.slow
def test_a_feature_cache_that_cannot_be_written_degrades_to_no_cache(tmp_path, kaggle_dir):
  with _tmpfs(tmp_path / "cache", "64k"):
    p = subprocess.run([*TRAIN, f"--workdir={tmp_path / 'run'}", f"--config.data.path={kaggle_dir}",
                        "--config.data.data_sample=1.0", *FOLDS, f"--config.data.cache_dir={tmp_path / 'cache'}"],
                       capture_output=True, text=True, timeout=900)
    out = _clean(p, 0)
  assert re.search(r"feature cache: cannot write \S+\.npy \(.+\); features are computed without keeping them", out)
  assert re.search(r"could not keep \d+ clip\(s\) \(see the warning above\); training without the cache", out)
  assert "test: accuracy" in out


# --- item 5: stop signals from the first line ---


@pytest.mark.slow
@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_a_stop_before_the_loop_exits_cleanly_saying_nothing_needed_saving(tmp_path, sig, status):
  code, out = _signal_when([f"--workdir={tmp_path}"], r"data synth: \d+ train", sig, delay=0.5)
  assert code == status, out[-3000:]
  assert f"{sig.name}: stopped; nothing needed saving" in out and "Traceback" not in out
  assert not os.listdir(tmp_path / "checkpoints") if (tmp_path / "checkpoints").exists() else True


@pytest.mark.slow
def test_a_stop_while_starting_exits_at_once(tmp_path):
  proc = subprocess.Popen([*TRAIN, f"--workdir={tmp_path}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  deadline = time.time() + 60
  while not _catches(proc.pid, signal.SIGTERM):  # train.py's first lines take SIGTERM over
    assert time.time() < deadline and proc.poll() is None
    time.sleep(0.001)
  proc.send_signal(signal.SIGTERM)  # jax, keras and the data modules are still importing
  out = proc.communicate(timeout=120)[0]
  assert proc.returncode == 0 and "Traceback" not in out, out[-3000:]
  assert out.strip().splitlines()[-1] == "SIGTERM: stopped while starting; nothing needed saving", out[-3000:]
  assert not os.path.exists(tmp_path / "config.json")


def _catches(pid, sig):
  """Returns whether process `pid` has a handler for `sig` (Linux: SigCgt in /proc/PID/status)."""
  with open(f"/proc/{pid}/status") as f:
    mask = next(int(l.split()[1], 16) for l in f if l.startswith("SigCgt:"))
  return bool(mask >> (sig - 1) & 1)


@pytest.mark.slow
def test_a_stop_during_the_last_checkpoint_write_stops_after_it(tmp_path):
  code, out = _signal_when([f"--workdir={tmp_path}"], r"validation: loss", signal.SIGTERM, delay=0.1)
  assert code == 0 and "Traceback" not in out, out[-3000:]
  assert "SIGTERM: saved the checkpoint of step 10" in out and "test: accuracy" not in out


@pytest.mark.slow
def test_sigint_in_the_loop_checkpoints_and_exits_130(tmp_path):
  code, out = _signal_when([f"--workdir={tmp_path}"], r"step 2/10", signal.SIGINT)
  assert code == 130 and "Traceback" not in out, out[-3000:]
  assert re.search(r"SIGINT: saved the checkpoint of step \d+; re-run the same command to resume", out)


@pytest.mark.slow
def test_a_stop_during_validation_finishes_it_checkpoints_and_resumes(tmp_path):
  args = [f"--workdir={tmp_path}", "--config.train.epochs=2"]
  code, out = _signal_when(args, r"step 10/20", signal.SIGTERM, delay=0.3)
  assert code == 0 and "Traceback" not in out, out[-3000:]
  assert "SIGTERM: saved the checkpoint of step 10" in out and "validation: loss" in out
  records = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in records if r.get("split") == "validation"] == [10]
  out = _clean(subprocess.run([*TRAIN, *args], capture_output=True, text=True, timeout=900), 0)
  assert "resuming from the checkpoint of step 10" in out and "test: accuracy" in out


@pytest.mark.slow
def test_a_stop_during_the_test_evaluation_keeps_the_finished_training(tmp_path):
  # after validation comes the last checkpoint, then the test evaluation (about 8 s)
  code, out = _signal_when([f"--workdir={tmp_path}"], r"validation: loss", signal.SIGTERM, delay=0.5,
                           ready=lambda: (tmp_path / "checkpoints" / "10").is_dir())
  assert code == 0 and "Traceback" not in out, out[-3000:]
  assert "SIGTERM: stopped; training is complete (checkpoint 10 holds the final state)" in out
  out = _clean(subprocess.run([*TRAIN, f"--workdir={tmp_path}"], capture_output=True, text=True, timeout=900), 0)
  assert "resuming from the checkpoint of step 10" in out and "test: accuracy" in out


# --- a file that fails only when decoded in full ---


@pytest.fixture(scope="module")
def lost_sync_dir(tmp_path_factory, kaggle_dir):
  """The kaggle fixture plus a FLAC whose middle is garbage: its header and its first and last windows read."""
  import soundfile

  root = tmp_path_factory.mktemp("lost_sync")
  shutil.copytree(kaggle_dir, root, dirs_exist_ok=True)
  path = root / "Train_submission" / "Train_submission" / "damaged.flac"
  soundfile.write(path, (0.5 * np.sin(np.arange(4 * 22050) / 10)).astype(np.float32), 22050)
  data = bytearray(path.read_bytes())
  data[len(data) // 2:len(data) // 2 + 4000] = np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes()
  path.write_bytes(bytes(data))
  with open(root / "Metadata_Train.csv", "a") as f:
    f.write("damaged.flac,Sound_Drum\n")
  rows = (root / "Metadata_Train.csv").read_text().splitlines()
  return root, len(rows)  # the damaged clip's row number


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["none", "folder"])
def test_a_file_failing_past_its_header_stops_before_training_naming_its_row(lost_sync_dir, tmp_path, cache):
  root, row = lost_sync_dir
  cache_dir = "none" if cache == "none" else str(tmp_path / "cache")
  p = subprocess.run([*TRAIN, f"--workdir={tmp_path / 'run'}", f"--config.data.path={root}",
                      "--config.data.data_sample=1.0", *FOLDS, f"--config.data.cache_dir={cache_dir}"],
                     capture_output=True, text=True, timeout=900)
  out = _clean(p, 1)
  (error,) = [l for l in out.splitlines() if l.startswith("error:")]
  assert f"Metadata_Train.csv row {row} ('damaged.flac'): cannot decode" in error and "lost sync" in error
  assert "skip_bad_files=true" in error and "training 1 epochs" not in out
  assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_a_file_failing_past_its_header_is_skipped_and_listed_on_request(lost_sync_dir, tmp_path):
  root, row = lost_sync_dir
  p = subprocess.run([*TRAIN, f"--workdir={tmp_path}", f"--config.data.path={root}", "--config.data.data_sample=1.0",
                      *FOLDS, "--config.data.cache_dir=none", "--config.data.skip_bad_files=true"],
                     capture_output=True, text=True, timeout=900)
  out = _clean(p, 0)
  assert "skipped 1 bad file(s)" in out
  (listed,) = (tmp_path / "skipped_files.txt").read_text().splitlines()
  assert listed.startswith("damaged.flac\t") and f"row {row}" in listed


# --- item 6: the divergence guard, through the CLI ---


@pytest.mark.slow
def test_a_diverging_run_stops_in_one_line_and_keeps_a_finite_checkpoint(tmp_path):
  p = subprocess.run([*TRAIN, f"--workdir={tmp_path}", "--config.train.learning_rate=1e30",
                      "--config.train.checkpoint_every_steps=1"], capture_output=True, text=True, timeout=900)
  out = _clean(p, 1)
  (error,) = [l for l in out.splitlines() if l.startswith("error:")]
  m = re.search(r"(loss is \S+ at step (\d+), the first non-finite one|the parameters after step (\d+) are not "
                r"finite); stopping with the checkpoint of step (\d+) kept", error)
  assert m, error
  bad_step, kept = int(m.group(2) or m.group(3)), int(m.group(4))
  assert kept == bad_step - 1
  step, saved = checkpoint.restore_weights(str(tmp_path))
  assert step == kept and all(np.isfinite(a).all() for a in saved["params"] + saved["model_state"])


@pytest.mark.slow
def test_load_classifier_names_a_damaged_checkpoint(three_checkpoints, tmp_path):
  import instruments_jax

  run = _damaged_copy(three_checkpoints, tmp_path, "damaged metadata")
  with pytest.raises(checkpoint.RunDirError, match=r"checkpoint \S+/checkpoints/10 is damaged \(.+\); re-run train"):
    instruments_jax.load_classifier(str(run))


@pytest.mark.slow
def test_restart_through_the_cli_starts_over_beside_the_old_run(tmp_path):
  workdir = tmp_path / "run"
  _fake_run(workdir)
  p = subprocess.run([*TRAIN, f"--workdir={workdir}", "--config.train.batch_size=8", "--config.train.restart=true"],
                     capture_output=True, text=True, timeout=900)
  out = _clean(p, 0)
  (aside,) = [d for d in tmp_path.iterdir() if d.name.startswith("run.before-restart-")]
  assert f"train.restart: moved the run that was in {workdir} to {aside}; starting over" in out
  assert sorted(os.listdir(aside)) == ["checkpoints", "config.json"]  # the old run, whole
  assert "test: accuracy" in out and "resuming" not in out
  assert json.loads((workdir / "config.json").read_text())["train"]["batch_size"] == 8
