r"""Evaluates a run: `python -m instruments_jax.evaluate --workdir=RUN [--data=synth|PATH] [--split=test|validation|unseen]`.

Chunk predictions are averaged per clip (the recipe's fixed-chunk inference), then
scored: loss, accuracy, macro F1, ROC-AUC (macro one-vs-rest, the recipe's metric),
per-class precision / recall / F1 / support and the confusion matrix. Writes
eval_<split>.json, a confusion-matrix figure and the recipe's predictions figure
(`logging.number_of_audios` spectrograms with true label, prediction, probability
and loss: the highest-loss clips), and report_<split>.html: the listening report
(instruments_jax/report.py) of the worst and a sample of the best clips, with audio and
saliency maps, for a browser (`--report=FILE` elsewhere, `--report=none` not at all).
"""

from __future__ import annotations

import base64
import json
import os

from instruments_jax import cli, losses, metrics, plots
from instruments_jax import report as report_lib
from instruments_jax.classifier import load_classifier
from instruments_jax.data import cache, sources


def scores(clf, dataset, indices, data: str | None = None):
  """Returns (clip probabilities, detailed scores) of classifier `clf` on `indices` of `dataset` from `data`
  (default: its config's data.path), through the feature cache its config names."""
  cfg = clf.config
  probs, _ = metrics.predict_clips(clf.chunk_predictor(), dataset, indices, cfg,
                                   cache=cache.from_config(cfg.data, cfg.audio, data))
  m = metrics.classification_metrics(probs, dataset.target(indices), cfg.train.loss, clf.classes,
                                     cfg.prediction.probability_threshold, detailed=True)
  return probs, m


def evaluate_run(workdir: str, data: str | None = None, split: str = "test", out_dir: str | None = None,
                 report: str | None = "") -> dict:
  """Evaluates the newest checkpoint in `workdir` on a split; writes eval_<split>.json, the figures and the report.

  `report`: the HTML report's path; "" writes report_<split>.html beside eval_<split>.json, None none.
  """
  clf = load_classifier(workdir)
  cfg = clf.config
  data = data or cfg.data.path
  out_dir = out_dir or workdir
  os.makedirs(out_dir, exist_ok=True)  # before the work, so a folder that cannot be made fails at once
  dataset, indices = sources.split(cfg.data, split, data)
  probs, m = scores(clf, dataset, indices, data)
  clip_loss = losses.clip_losses(probs, dataset.target(indices), cfg.train.loss)
  m.update(split=split, data=data, workdir=workdir, step=clf.step)
  suffix = "" if split == "validation" else f"_{split}"
  title = f"{split} ({data}): accuracy {m['accuracy']:.3f}, ROC-AUC {m['roc_auc']:.3f}, mAP {m['map']:.3f}"
  confusion = os.path.join(out_dir, f"confusion_matrix{suffix}.png")
  plots.plot_confusion(m["confusion_matrix"], title, confusion)
  shown = min(cfg.logging.number_of_audios, len(indices))
  m["predictions_figure"] = plots.plot_predictions(
      dataset, indices, probs, clip_loss, cfg, f"{split}: the {shown} highest-loss clips",
      os.path.join(out_dir, f"{split}_predictions.png"))
  if report is not None:
    m["report"] = report or os.path.join(out_dir, f"report_{split}.html")
    rows = report_lib.evaluation_rows(clf, dataset, indices, probs, clip_loss, cfg.logging.number_of_audios)
    with open(confusion, "rb") as f:
      summary = report_lib.metrics_html(m, base64.b64encode(f.read()).decode())
    report_lib.write(m["report"], f"{split} of {data}: run {workdir} (step {clf.step})", summary, rows, clf.classes,
                     note=f"the {cfg.logging.number_of_audios} highest-loss clips (worst) and a seeded sample of "
                          f"the lowest-loss quarter (best), of {len(indices)}")
  with open(os.path.join(out_dir, f"eval_{split}.json"), "w") as f:
    json.dump(m, f, indent=2)
  return m


def main(argv=None):
  import argparse

  p = argparse.ArgumentParser(prog="python -m instruments_jax.evaluate", description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="a training run directory")
  p.add_argument("--data", default=None, help="synth or a dataset directory (default: the run's data.path)")
  p.add_argument("--split", default="test", choices=["test", "validation", "unseen"],
                 help="validation: the clips the run validated on; unseen: synth clips of GM programs and drum "
                      "kits never used in train or test")
  p.add_argument("--out", default=None, help="where to write the JSON and figures (default: the workdir)")
  p.add_argument("--report", nargs="?", default="", const="", metavar="FILE",
                 help="the HTML listening report's path (default, and --report alone: report_<split>.html beside "
                      "eval_<split>.json); none: no report")
  a = p.parse_args(argv)
  with cli.clean_errors():
    m = evaluate_run(a.workdir, a.data, a.split, a.out, None if a.report == "none" else a.report)
  print(f"{a.split} on {m['data']}: {m['clips']} clips (checkpoint of step {m['step']})")
  print(f"  loss {m['loss']:.4f}  accuracy {m['accuracy']:.4f}  macro F1 {m['macro_f1']:.4f}  ROC-AUC {m['roc_auc']:.4f}"
        f"  mAP {m['map']:.4f}" + ("  (multi-label: accuracy = exact label sets, F1 at the threshold)"
                                    if m["multi_label"] else ""))
  width = max([len(n) for n in m["per_class"]] + [5])
  print(f"  {'class':<{width}} {'precision':>9} {'recall':>7} {'f1':>6} {'f1@thr':>6} {'AP':>6} {'support':>8}")
  for name, c in m["per_class"].items():
    print(f"  {name:<{width}} {c['precision']:>9.3f} {c['recall']:>7.3f} {c['f1']:>6.3f} {c['f1_at_threshold']:>6.3f} "
          f"{c['ap']:>6.3f} {c['support']:>8d}")
  cm = m["confusion_matrix"]
  if m["multi_label"]:
    print(f"  per class at threshold {cm['threshold']:g} (tp, fn, fp, tn):", cm["rows_class"])
  else:
    print("  confusion matrix (rows true, columns predicted):", cm["rows_true_cols_predicted"])
  if "report" in m:
    print(f"  report: {m['report']} (open it in a browser)")


if __name__ == "__main__":
  main()
