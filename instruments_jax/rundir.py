"""The files of a run directory besides checkpoints: config.json, metrics.jsonl, skipped_files.txt, the lock.

`open_run` is the start of every training run: it locks the workdir, settles
the seed (a resumed `seed: -1` run takes the one it drew) and writes the
resolved config. `load_config` reads a run's config back, also from runs
written by earlier versions.
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import logging

from instruments_jax import checkpoint, configs


def open_run(cfg, workdir: str, process_index: int = 0, process_count: int = 1):
  """Locks `workdir` for this process, resolves `cfg.seed` and writes config.json (process 0); returns the lock.

  Several hosts share one workdir: each holds its own lock and only process 0 writes files.
  """
  lock = checkpoint.lock_workdir(workdir, ".lock" if process_count == 1 else f".lock.{process_index}")
  saved = os.path.join(workdir, "config.json")
  if cfg.seed < 0 and os.path.isdir(os.path.join(workdir, checkpoint.DIRECTORY)) and os.path.exists(saved):
    with open(saved) as f, cfg.unlocked():  # resuming: the seed this run drew at its start
      cfg.seed = int(json.load(f)["seed"])
  if cfg.seed < 0:
    with cfg.unlocked():
      cfg.seed = int(np.random.SeedSequence().entropy % (2**31))
  if process_index == 0:
    with open(saved, "w") as f:
      f.write(cfg.to_json_best_effort(indent=2))
  return lock


def load_config(workdir: str):
  """Returns the resolved config a run wrote to config.json.

  Runs of earlier versions load too: fields they lack take the value of the named
  config they came from (new fields default to the old behaviour), fields since
  removed are dropped with a note.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{workdir!r} is not a run directory: no config.json")
  with open(path) as f:
    saved = json.load(f)
  cfg = configs.get_config(saved.get("name") if saved.get("name") in configs.NAMES else "baseline")
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
  """Appends one JSON object per line to workdir/metrics.jsonl; on resume keeps lines up to the checkpoint."""

  def __init__(self, path: str | None, keep_until_step: int | None = None):
    self.path = path
    if path is None:  # a secondary host: process 0 keeps the log
      return
    kept = []
    if keep_until_step is not None and os.path.exists(path):
      kept = [l for l in open(path) if l.strip() and json.loads(l).get("step", 0) <= keep_until_step]
    with open(path, "w") as f:
      f.writelines(kept)

  def write(self, **record):
    if self.path is None:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")


def write_skipped(workdir: str, skipped: list[tuple[str, str]]) -> None:
  """Lists every skipped file with its reason in workdir/skipped_files.txt and says how many."""
  if not skipped:
    return
  path = os.path.join(workdir, "skipped_files.txt")
  with open(path, "w") as f:
    f.writelines(f"{name}\t{why}\n" for name, why in skipped)
  logging.warning("skipped %d bad file(s); list in %s", len(skipped), path)
