r"""Evaluates a run: `python -m instruments_jax.evaluate --workdir=RUN [--data=synth|PATH] [--split=test|validation]`.

Chunk predictions are averaged per clip (the seed's fixed-chunk inference), then
scored: loss, accuracy, macro F1, ROC-AUC (macro one-vs-rest, the seed's metric),
per-class precision / recall / F1 / support and the confusion matrix. Writes
eval_<split>.json, a confusion-matrix figure and the seed's predictions figure
(8 spectrograms with true label, prediction, probability and loss: the 8 worst).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from instruments_jax import CLASSES
from instruments_jax.data import pipeline
from instruments_jax.data.audio import DataError


def probabilities(logits, loss: str, xp=np):
  """Returns class probabilities from logits: sigmoid per class for BCE, softmax otherwise."""
  if loss == "bce":
    return 1.0 / (1.0 + xp.exp(-logits))
  z = xp.exp(logits - logits.max(axis=-1, keepdims=True))
  return z / z.sum(axis=-1, keepdims=True)


def clip_losses(probs: np.ndarray, labels: np.ndarray, loss: str) -> np.ndarray:
  """Returns each clip's loss on its averaged probabilities (BCE over classes, or cross-entropy)."""
  onehot = np.eye(len(CLASSES))[labels]
  p = np.clip(np.asarray(probs, np.float64), 1e-7, 1 - 1e-7)
  if loss == "bce":
    return -np.mean(onehot * np.log(p) + (1 - onehot) * np.log(1 - p), axis=1)
  return -np.log(p[np.arange(len(labels)), labels])


def classification_metrics(probs: np.ndarray, labels: np.ndarray, loss: str, detailed: bool = False) -> dict:
  """Returns loss, accuracy, macro F1 and macro one-vs-rest ROC-AUC; per-class scores when detailed."""
  from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

  probs = np.asarray(probs, np.float64)
  onehot = np.eye(len(CLASSES))[labels]
  pred = probs.argmax(1)
  aucs = [roc_auc_score(onehot[:, c], probs[:, c]) for c in range(len(CLASSES)) if 0 < onehot[:, c].sum() < len(labels)]
  classes = list(range(len(CLASSES)))
  precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=classes, zero_division=0)
  out = {"loss": float(clip_losses(probs, labels, loss).mean()), "accuracy": float(np.mean(pred == labels)),
         "macro_f1": float(np.mean(f1)), "roc_auc": float(np.mean(aucs)) if aucs else float("nan"),
         "clips": int(len(labels))}
  if detailed:
    out["per_class"] = {name: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                               "support": int(support[c])} for c, name in enumerate(CLASSES)}
    out["confusion_matrix"] = {"classes": list(CLASSES), "rows_true_cols_predicted":
                               confusion_matrix(labels, pred, labels=classes).tolist()}
  return out


def predict_clips(predict_fn, dataset, indices, cfg, tolerate_errors: bool = False, cache=None):
  """Returns [len(indices), C] probabilities: `predict_fn(x) -> probs` over chunks, averaged per clip.

  A clip whose audio cannot be decoded raises DataError, or with `tolerate_errors`
  gets NaN probabilities (the caller lists it). With a FeatureCache, chunks are cut from it.
  """
  _, batches = pipeline.eval_batches(dataset, indices, cfg, cache=cache)
  sums = np.zeros((len(indices), len(CLASSES)))
  counts = np.zeros(len(indices))
  failed = np.zeros(len(indices), bool)
  for batch in batches:
    probs = np.asarray(predict_fn(batch["x"]))
    real = batch["clip"] >= 0
    failed[batch["clip"][real & ~batch["ok"]]] = True
    np.add.at(sums, batch["clip"][real], probs[real])
    np.add.at(counts, batch["clip"][real], 1)
  if failed.any() and not tolerate_errors:
    i = int(indices[np.flatnonzero(failed)[0]])
    dataset.load(i, 0.0, cfg.prediction.inference_chunk_seconds, cfg.audio.sample_rate)  # raises, naming the file
    raise DataError(f"cannot decode part of {dataset.clips[i].name!r}")
  probs = sums / counts[:, None]
  probs[failed] = np.nan
  return probs


def split_indices(cfg, data_path: str, split: str):
  """Returns (dataset, indices) of a split: the test split, or the run's validation fold."""
  from instruments_jax.data import sources

  if split in ("test", "unseen"):
    ds = sources.open_split(cfg.data, split, data_path)
    if ds is None:
      raise sources.DataError(f"{data_path!r} has no {split} split")
    return ds, np.arange(len(ds))
  if split == "validation":
    ds = sources.open_split(cfg.data, "train", data_path)
    _, val = sources.validation_split(ds, cfg.data)
    return ds, val
  raise ValueError(f"split {split!r}: choose test, unseen or validation")


def plot_confusion(matrix: np.ndarray, title: str, path: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(5.5, 4.8))
  ax.imshow(matrix, cmap="Blues")
  for (i, j), v in np.ndenumerate(matrix):
    ax.text(j, i, str(v), ha="center", va="center", color="white" if v > matrix.max() / 2 else "black")
  ax.set_xticks(range(len(CLASSES)), CLASSES)
  ax.set_yticks(range(len(CLASSES)), CLASSES)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_predictions(dataset, indices, probs, labels, losses, cfg, title, path, count=8) -> None:
  """Draws the `count` highest-loss clips: first inference chunk's log-mel, true, predicted, p, loss."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from instruments_jax.data import features

  worst = np.argsort(-losses)[:count]
  cols = 4
  rows = int(np.ceil(len(worst) / cols))
  fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
  seconds = min(cfg.prediction.inference_chunk_seconds, 10.0)
  for ax, k in zip(axes.flat, worst):
    i = int(indices[k])
    wave = dataset.load(i, 0.0, seconds, cfg.audio.sample_rate)
    mel = features.log_mel(wave, cfg.audio)
    ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, mel.shape[0]))
    pred = int(probs[k].argmax())
    ok = pred == labels[k]
    ax.set_title(f"true: {CLASSES[labels[k]]}   predicted: {CLASSES[pred]}\n"
                 f"probability {probs[k, pred]:.3f}   loss {losses[k]:.3f}", fontsize=9,
                 color="black" if ok else "crimson")
    ax.set_xlabel(f"{dataset.clips[i].name}  (s)", fontsize=7)
    ax.set_yticks([])
  for ax in list(axes.flat)[len(worst):]:
    ax.axis("off")
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def evaluate_run(workdir: str, data: str | None = None, split: str = "test", out_dir: str | None = None) -> dict:
  """Evaluates the checkpoint in `workdir` on a split; writes eval_<split>.json and the figures."""
  import jax

  from instruments_jax.run import load_classifier

  clf = load_classifier(workdir)
  cfg = clf.config
  data = data or cfg.data.path
  out_dir = out_dir or workdir
  dataset, indices = split_indices(cfg, data, split)
  predict = jax.jit(lambda x: clf.apply_log_mel(clf.params, x[..., 0]))
  from instruments_jax.data import cache

  probs = predict_clips(predict, dataset, indices, cfg, cache=cache.from_config(cfg.data, cfg.audio, data))
  labels = dataset.labels[indices]
  m = classification_metrics(probs, labels, cfg.train.loss, detailed=True)
  m.update(split=split, data=data, workdir=workdir)
  suffix = "" if split == "validation" else f"_{split}"
  with open(os.path.join(out_dir, f"eval_{split}.json"), "w") as f:
    json.dump(m, f, indent=2)
  title = f"{split} ({data}): accuracy {m['accuracy']:.3f}, ROC-AUC {m['roc_auc']:.3f}"
  plot_confusion(np.array(m["confusion_matrix"]["rows_true_cols_predicted"]), title,
                 os.path.join(out_dir, f"confusion_matrix{suffix}.png"))
  plot_predictions(dataset, indices, probs, labels, clip_losses(probs, labels, cfg.train.loss), cfg,
                   f"{split}: the {min(8, len(indices))} highest-loss clips",
                   os.path.join(out_dir, f"{split}_predictions.png"))
  return m


def main(argv=None):
  import argparse

  p = argparse.ArgumentParser(prog="python -m instruments_jax.evaluate", description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="a training run directory")
  p.add_argument("--data", default=None, help="synth or a dataset directory (default: the run's data.path)")
  p.add_argument("--split", default="test", choices=["test", "validation", "unseen"],
                 help="unseen: synth clips of GM programs and drum kits never used in train or test")
  p.add_argument("--out", default=None, help="where to write the JSON and figures (default: the workdir)")
  a = p.parse_args(argv)
  try:
    m = evaluate_run(a.workdir, a.data, a.split, a.out)
  except (DataError, FileNotFoundError) as e:
    sys.exit(f"error: {e}")
  print(f"{a.split} on {m['data']}: {m['clips']} clips")
  print(f"  loss {m['loss']:.4f}  accuracy {m['accuracy']:.4f}  macro F1 {m['macro_f1']:.4f}  ROC-AUC {m['roc_auc']:.4f}")
  print(f"  {'class':<8} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
  for name, c in m["per_class"].items():
    print(f"  {name:<8} {c['precision']:>9.3f} {c['recall']:>7.3f} {c['f1']:>6.3f} {c['support']:>8d}")
  print("  confusion matrix (rows true, columns predicted):", m["confusion_matrix"]["rows_true_cols_predicted"])


if __name__ == "__main__":
  main()


def plot_chart(metrics_path: str, path: str) -> list[str]:
  """Draws the seed's four panels from metrics.jsonl: learning rate, train batch loss,
  validation loss and validation ROC-AUC, each against samples seen (the seed's "step")."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  rows = [json.loads(line) for line in open(metrics_path) if line.strip()]
  train = [r for r in rows if "train_loss" in r]
  val = [r for r in rows if r.get("split") == "validation"]
  batch_x, batch_y = [], []
  for r in train:  # each log line holds the per-batch losses since the previous one
    losses = r.get("batch_losses", [r["train_loss"]])
    per = r["samples"] / r["step"]
    batch_x += [r["samples"] - per * (len(losses) - 1 - k) for k in range(len(losses))]
    batch_y += losses
  panels = [("learning rate", [r["samples"] for r in train], [r["lr"] for r in train]),
            ("train batch loss", batch_x, batch_y),
            ("validation loss", [r["samples"] for r in val], [r["loss"] for r in val]),
            ("validation ROC-AUC", [r["samples"] for r in val], [r["roc_auc"] for r in val])]
  with plt.style.context("dark_background"):
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5))
    xmax = max([x for _, xs, _ in panels for x in xs] + [1])
    for ax, (title, xs, ys) in zip(axes.flat, panels):
      ax.plot(xs, ys, color="#4a9eff", lw=1.2, marker="o" if len(xs) < 12 else None, ms=4)
      ax.set_title(title.upper(), loc="left", fontsize=11)
      ax.set_xlabel("step (samples seen)")
      ax.set_xlim(0, xmax * 1.05)
      ax.grid(axis="y", color="#444444", lw=0.6)
      for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
  return [title for title, xs, _ in panels if xs]
