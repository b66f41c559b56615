"""The files of a run directory besides checkpoints: config.json, metrics.jsonl, skipped_files.txt, the lock.

`open_run` is the start of every training run: it locks the workdir, settles
the seed (a resumed `seed: -1` run takes the one it drew) and writes the
resolved config. `load_config` reads a run's config back, also from runs
written by earlier versions.
"""

from __future__ import annotations

import errno
import json
import os
import time

import numpy as np
from absl import logging

from instruments_jax import checkpoint, configs
from instruments_jax.data import synth


def open_run(cfg, workdir: str, process_index: int = 0, process_count: int = 1):
  """Locks `workdir` for this process, checks `cfg` against the run in it, writes config.json; returns the lock.

  A workdir with a checkpoint remembers the config that made it (config.json): a config that
  changes any field outside configs.RESUME_SAFE raises ConfigError listing each change, before
  any work. `train.restart` moves the old run to <workdir>.before-restart-<time> instead (never
  deleting it) and starts over. A resumed `seed: -1` run takes the seed it drew. Several hosts
  share one workdir: each holds its own lock and only process 0 moves or writes files.
  """
  lock = checkpoint.lock_workdir(workdir, ".lock" if process_count == 1 else f".lock.{process_index}")
  saved = os.path.join(workdir, "config.json")
  if cfg.train.restart:
    if process_index == 0:
      aside = _move_run_aside(workdir)
      if aside:
        logging.warning("train.restart: moved the run that was in %s to %s; starting over", workdir, aside)
  elif os.path.isdir(os.path.join(workdir, checkpoint.DIRECTORY)) and os.path.exists(saved):
    old = load_config(workdir)
    if cfg.seed < 0:  # resuming: the seed this run drew at its start
      with cfg.unlocked():
        cfg.seed = int(old.seed)
    if cfg.data.classes == "auto":  # resuming: the classes it read from its data (the data must still agree)
      cfg.data.classes = old.data.classes
    changed = configs.changed_on_resume(old, cfg)
    if changed:
      raise configs.ConfigError(
          [f"{path}: {old_value!r} in the run, {new_value!r} now" for path, old_value, new_value in changed],
          hint=f"workdir {workdir!r} holds a run whose checkpoints these changes would misread; re-run with its "
               f"values ({saved}), choose another --workdir, or add --config.train.restart=true to move that run "
               f"aside and start over")
  if cfg.seed < 0:
    with cfg.unlocked():
      cfg.seed = int(np.random.SeedSequence().entropy % (2**31))
  if process_index == 0:
    write_config(cfg, workdir)
  return lock


def write_config(cfg, workdir: str) -> None:
  """Writes the resolved config to workdir/config.json."""
  path = os.path.join(workdir, "config.json")
  text = cfg.to_json_best_effort(indent=2)
  with checkpoint.space_for(path, len(text)), open(path, "w") as f:
    f.write(text)


def _move_run_aside(workdir: str) -> str | None:
  """Moves everything in `workdir` but its locks to a new sibling folder; returns it (None: nothing to move)."""
  entries = [n for n in os.listdir(workdir) if not n.startswith(".lock")]
  if not entries:
    return None
  base = f"{os.path.abspath(workdir).rstrip(os.sep)}.before-restart-{time.strftime('%Y%m%d-%H%M%S')}"
  aside, n = base, 1
  while os.path.exists(aside):
    n += 1
    aside = f"{base}.{n}"
  os.makedirs(aside)
  for name in entries:
    os.replace(os.path.join(workdir, name), os.path.join(aside, name))
  return aside


def load_config(workdir: str):
  """Returns the resolved config a run wrote to config.json.

  Runs of earlier versions load too: fields they lack take the value of the named
  config they came from (new fields default to the old behaviour), fields since
  removed are dropped with a note.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{workdir!r} is not a run directory: no config.json")
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError) as e:
    raise checkpoint.RunDirError(f"run {workdir!r}: {path} does not read ({e}); restore it from the command that "
                                 f"made the run (--print_config prints it)") from None
  cfg = configs.get_config(saved.get("name") if saved.get("name") in configs.NAMES else "baseline")
  # Runs from before data.classes all trained on the embedded set's four classes.
  saved.setdefault("data", {}).setdefault("classes", ",".join(synth.DEFAULT_CLASSES))
  # ... and from before sound engines and recording chains, on the soundfont alone, dry.
  saved["data"].setdefault("synth_engines", ",".join(synth.SOUNDFONT.engines))
  saved["data"].setdefault("synth_chain_prob", synth.SOUNDFONT.chain_prob)
  saved["data"].setdefault("synth_voice_spread", synth.SOUNDFONT.voice_spread)
  saved["data"].setdefault("synth_distortion_prob", synth.SOUNDFONT.distortion_prob)
  saved["data"].setdefault("synth_guitar_amp", synth.SOUNDFONT.guitar_amp)
  saved["data"].setdefault("synth_formant_shift", synth.SOUNDFONT.formant_shift)
  # ... and from before model.width, at cnn8's first widths.
  saved.setdefault("model", {}).setdefault("width", 1.0)
  # ... and from before data.max_clip_seconds, on whole clips.
  saved["data"].setdefault("max_clip_seconds", 0.0)
  # ... and from before train.average_from, on their last weights.
  saved.setdefault("train", {}).setdefault("average_from", 0.0)
  dropped = []

  def overlay(target, values, prefix):
    for key, value in values.items():
      if key not in target:
        dropped.append(prefix + key)
      elif isinstance(value, dict):
        overlay(target[key], value, f"{prefix}{key}.")
      else:
        target[key] = tuple(value) if isinstance(target[key], tuple) else value

  with cfg.unlocked():
    overlay(cfg, saved, "")
  if dropped:
    logging.info("%s: ignoring field(s) this version no longer has: %s", path, ", ".join(dropped))
  return cfg


class MetricsLog:
  """Appends one JSON object per line to workdir/metrics.jsonl; on resume keeps lines up to the checkpoint.

  What a run writes after its loop (the test split's metrics, wall_seconds) is dropped on
  resume too: the resumed run writes it again.

  A line cut short (by a kill or a full disk) is dropped on resume; a write that finds the disk
  full takes its partial line back and raises checkpoint.DiskFull.
  """

  def __init__(self, path: str | None, keep_until_step: int | None = None):
    self.path = path
    if path is None:  # a secondary host: process 0 keeps the log
      return
    kept, cut = [], 0
    if keep_until_step is not None and os.path.exists(path):
      for line in open(path):
        if not line.strip():
          continue
        try:
          record = json.loads(line)
        except ValueError:
          cut += 1
          continue
        if record.get("step", 0) <= keep_until_step and record.get("split") != "test" and "wall_seconds" not in record:
          kept.append(line.rstrip("\n") + "\n")
    if cut:
      logging.warning("%s: dropped %d line(s) cut short by an earlier stop", path, cut)
    with checkpoint.space_for(path, sum(map(len, kept))):  # the old log stays whole until the new one is
      with open(path + ".tmp", "w") as f:
        f.writelines(kept)
      os.replace(path + ".tmp", path)

  def write(self, **record):
    if self.path is None:
      return
    data = (json.dumps(record) + "\n").encode()
    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
      end = os.lseek(fd, 0, os.SEEK_END)
      try:
        with checkpoint.space_for(self.path, len(data)):
          if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, "short write", self.path)
      except checkpoint.DiskFull:
        os.ftruncate(fd, end)  # no half line for a resume to trip on
        raise
    finally:
      os.close(fd)


def write_skipped(workdir: str, skipped: list[tuple[str, str]]) -> None:
  """Lists every skipped file with its reason in workdir/skipped_files.txt and says how many."""
  if not skipped:
    return
  path = os.path.join(workdir, "skipped_files.txt")
  text = "".join(f"{name}\t{why}\n" for name, why in skipped)
  with checkpoint.space_for(path, len(text)), open(path, "w") as f:
    f.write(text)
  logging.warning("skipped %d bad file(s); list in %s", len(skipped), path)
