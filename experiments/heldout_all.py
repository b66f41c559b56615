r"""Re-scores held-out-engine runs on every clip of the engine they never heard (issue 15, twelfth round).

    python experiments/heldout_all.py RUN [RUN ...]

A run trained with `data.validation_strategy=engine` validated on the held-out clips of one fold
(110-181 clips), but none of the held-out clips of any fold trained: this scores the same weights on
all of them (`data.validation_fold=-1`, five times the clips), so the rows of earlier runs can be
compared on a yardstick that moves less by chance. Renders through the run's feature cache, if it
trained with one. Rows: clips, then accuracy / macro F1 / ROC-AUC / guitar recall / piano recall.
"""

from __future__ import annotations

import argparse

from engine_select import _row  # experiments/ is this script's folder

from instruments_jax.classifier import load_classifier
from instruments_jax.data import sources
from instruments_jax.evaluate import scores


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("runs", nargs="+")
  a = p.parse_args(argv)
  print("| run | held-out engine | clips | every held-out clip |\n|---|---|---|---|")
  for run in a.runs:
    clf = load_classifier(run)
    cfg = clf.config
    if cfg.data.validation_strategy != "engine":
      raise SystemExit(f"{run}: trained with validation_strategy={cfg.data.validation_strategy!r}, not engine")
    with cfg.unlocked():
      cfg.data.validation_fold = -1
    ds, idx = sources.split(cfg.data, "validation", cfg.data.path)
    _, m = scores(clf, ds, idx)
    print(f"| {run} | {cfg.data.validation_engine} | {len(idx)} | {_row(m)} |", flush=True)


if __name__ == "__main__":
  main()
