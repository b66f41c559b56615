r"""Scores the average of a run's kept checkpoints against its last one, on a split (issue 15, twelfth round).

    python experiments/checkpoint_average.py --split=validation RUN [RUN ...]

A probe, not a recipe: whether weights averaged along the end of training (the kept epoch-end
checkpoints, params and BatchNorm statistics alike) score higher on the held-out-engine validation
than the final weights, before any averaging is built into training. Rows: accuracy / macro F1 /
ROC-AUC / guitar recall / piano recall, for the last checkpoint, the last two and the last three.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from instruments_jax import checkpoint
from instruments_jax.classifier import load_classifier
from instruments_jax.data import sources
from instruments_jax.evaluate import scores
from engine_select import _row  # experiments/ is this script's folder: the same row format as engine_select


def _weights(run: str, step: int) -> dict:
  import orbax.checkpoint as ocp

  with checkpoint._quiet_orbax():
    mgr = ocp.CheckpointManager(os.path.abspath(os.path.join(run, checkpoint.DIRECTORY)),
                                options=ocp.CheckpointManagerOptions(create=False))
    state = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
  return {"params": list(state["params"]), "model_state": list(state["model_state"])}


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("runs", nargs="+")
  p.add_argument("--split", default="validation", choices=["validation", "test", "unseen"])
  a = p.parse_args(argv)
  print(f"| run ({a.split}) | last | mean of last 2 | mean of last 3 |\n|---|---|---|---|")
  for run in a.runs:
    clf = load_classifier(run)
    cfg = clf.config
    ds, idx = sources.split(cfg.data, a.split, cfg.data.path)
    steps = sorted(int(s) for s in os.listdir(os.path.join(run, checkpoint.DIRECTORY)) if s.isdigit())
    kept = [_weights(run, s) for s in steps]
    cols = []
    for k in (1, 2, 3):
      if k > len(kept):
        cols.append("-")
        continue
      avg = jax.tree.map(lambda *xs: jnp.asarray(np.mean([np.asarray(x, np.float32) for x in xs], 0),
                                                 np.asarray(xs[0]).dtype), *kept[-k:])
      cols.append(_row(scores(dataclasses.replace(clf, params=avg), ds, idx)[1]))
    print(f"| {run} (steps {', '.join(map(str, steps))}) | {' | '.join(cols)} |", flush=True)


if __name__ == "__main__":
  main()
