r"""How much of each clip inference reads: a run's split scored at several `prediction.max_inference_chunk_seconds`.

    python experiments/inference_length.py --split=validation --seconds=6,30 RUN [RUN ...]

The weights are the run's (and its feature cache, if it trained with one); only the prediction setting changes (chunks of
`prediction.inference_chunk_seconds`, averaged, up to the given length of each clip). Prints a
Markdown row per run and length: accuracy / macro F1 / ROC-AUC / guitar recall / piano recall.
"""

from __future__ import annotations

import argparse
import time

from instruments_jax import metrics
from instruments_jax.classifier import load_classifier
from instruments_jax.data import cache, sources


def score(run: str, split: str, seconds: float) -> tuple[dict, float]:
  clf = load_classifier(run)
  cfg = clf.config
  cfg.prediction.max_inference_chunk_seconds = max(seconds, cfg.prediction.inference_chunk_seconds)
  dataset, indices = sources.split(cfg.data, split, cfg.data.path)
  t0 = time.time()
  probs, _ = metrics.predict_clips(clf.chunk_predictor(), dataset, indices, cfg,
                                   cache=cache.from_config(cfg.data, cfg.audio))  # the run's own, if it had one
  m = metrics.classification_metrics(probs, dataset.target(indices), cfg.train.loss, clf.classes,
                                     cfg.prediction.probability_threshold, detailed=True)
  return m, time.time() - t0


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("runs", nargs="+")
  p.add_argument("--split", default="validation", choices=["validation", "test", "unseen"])
  p.add_argument("--seconds", default="6,30", help="comma-separated max_inference_chunk_seconds to compare")
  a = p.parse_args(argv)
  print(f"| run | {a.split}: up to s of each clip | accuracy / macro F1 / ROC-AUC / guitar / piano recall | s |")
  print("|---|---|---|---|")
  for run in a.runs:
    for s in (float(x) for x in a.seconds.split(",")):
      m, wall = score(run, a.split, s)
      pc = m["per_class"]
      print(f"| {run} | {s:g} | {m['accuracy']:.4f} / {m['macro_f1']:.4f} / {m['roc_auc']:.4f} / "
            f"{pc['guitar']['recall']:.2f} / {pc['piano']['recall']:.2f} | {wall:.0f} |", flush=True)


if __name__ == "__main__":
  main()
