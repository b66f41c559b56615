"""rundir and checkpoint: the files of a run directory, the seed, older runs, the lock."""

import json
import os

import pytest

from instruments_jax import checkpoint, configs, rundir
from instruments_jax.configs import get_config


def test_a_drawn_seed_is_written_and_taken_again_on_resume(tmp_path):
  cfg = get_config("smoke")
  cfg.seed = -1
  rundir.open_run(cfg, str(tmp_path)).close()
  drawn = cfg.seed
  assert drawn >= 0 and json.load(open(tmp_path / "config.json"))["seed"] == drawn
  (tmp_path / checkpoint.DIRECTORY).mkdir()  # a run with checkpoints: resuming
  again = get_config("smoke")
  again.seed = -1
  rundir.open_run(again, str(tmp_path)).close()
  assert again.seed == drawn


def test_a_second_lock_on_a_held_workdir_is_refused_naming_the_holder(tmp_path):
  held = checkpoint.lock_workdir(str(tmp_path))
  try:
    with pytest.raises(checkpoint.WorkdirBusy, match=f"pid {os.getpid()}"):
      checkpoint.lock_workdir(str(tmp_path))
  finally:
    held.close()
  checkpoint.lock_workdir(str(tmp_path)).close()  # free again once the holder let go


def test_metrics_log_keeps_only_lines_up_to_the_restored_step(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  log = rundir.MetricsLog(path)
  for step in (2, 4, 6):
    log.write(step=step, train_loss=1.0 / step)
  rundir.MetricsLog(path, keep_until_step=4).write(step=6, train_loss=0.0)
  assert [json.loads(l)["step"] for l in open(path)] == [2, 4, 6]
  assert json.loads(open(path).readlines()[-1])["train_loss"] == 0.0


def test_skipped_files_are_listed_with_their_reasons(tmp_path):
  rundir.write_skipped(str(tmp_path), [("a.wav", "empty"), ("b.wav", "NaN samples")])
  assert (tmp_path / "skipped_files.txt").read_text() == "a.wav\tempty\nb.wav\tNaN samples\n"
  rundir.write_skipped(str(tmp_path / "none"), [])
  assert not (tmp_path / "none").exists()


def test_load_config_reads_an_older_runs_fields(tmp_path):
  saved = get_config("quick").to_dict()
  saved["model"]["input_channels"] = 1  # a field since dropped
  del saved["audio"]["features_on_device"]  # a field added later
  saved["data"]["length_buckets"] = [5.0]  # JSON lists come back as tuples
  (tmp_path / "config.json").write_text(json.dumps(saved))
  cfg = rundir.load_config(str(tmp_path))
  configs.validate(cfg, check_paths=False)
  assert cfg.audio.mel_bins == 64 and cfg.audio.features_on_device is False
  assert cfg.data.length_buckets == (5.0,) and "input_channels" not in cfg.model


def test_a_folder_without_a_run_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="not a run directory"):
    rundir.load_config(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
    checkpoint.restore_weights(str(tmp_path))
