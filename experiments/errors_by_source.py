r"""Where a run's errors come from on the embedded set: each wrong clip with its engine, voice or program,
style and recording chain, and accuracy per (class, engine).

    python experiments/errors_by_source.py --split=unseen RUN [RUN ...]

Reads only the run's weights and config (and its feature cache, if it trained with one).
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from instruments_jax.classifier import load_classifier
from instruments_jax.data import cache, sources
from instruments_jax import metrics


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("runs", nargs="+")
  p.add_argument("--split", default="unseen", choices=["validation", "test", "unseen"])
  a = p.parse_args(argv)
  for run in a.runs:
    clf = load_classifier(run)
    cfg = clf.config
    ds, idx = sources.split(cfg.data, a.split, cfg.data.path)
    probs, _ = metrics.predict_clips(clf.chunk_predictor(), ds, idx, cfg, cache=cache.from_config(cfg.data, cfg.audio))
    pred = np.asarray(probs).argmax(-1)
    cells = collections.defaultdict(lambda: [0, 0])
    print(f"## {run} ({a.split})\n\n| clip | true | called | engine | voice/program | style | chain |\n|---|---|---|---|---|---|---|")
    for k, i in enumerate(idx):
      s = ds.synth_spec(int(i))
      called = clf.classes[pred[k]]
      ok = called == s.label
      cell = cells[(s.label, s.engine)]
      cell[0] += ok
      cell[1] += 1
      if not ok:
        ch = s.chain
        chain = "dry" if ch is None else (f"room {ch.room} wet {ch.room_wet:.2f}, {ch.curve}, dist {ch.distortion}, "
                                          f"noise {ch.noise}, codec {ch.codec}")
        print(f"| {s.index} | {s.label} | {called} | {s.engine} | {s.program} | {s.style} | {chain} |")
    print("\n| class | " + " | ".join(sorted({e for _, e in cells})) + " |")
    engines = sorted({e for _, e in cells})
    print("|---" * (len(engines) + 1) + "|")
    for c in clf.classes:
      row = [f"{cells[(c, e)][0]}/{cells[(c, e)][1]}" if (c, e) in cells else "-" for e in engines]
      print(f"| {c} | " + " | ".join(row) + " |")
    print()


if __name__ == "__main__":
  main()
