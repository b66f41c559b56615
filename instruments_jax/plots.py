"""The run's figures: the recipe's training chart, the confusion matrix and the predictions figure.

Each function draws from data it is given (metrics.jsonl, a matrix, probabilities)
and writes a PNG; nothing here trains or predicts.
"""

from __future__ import annotations

import json

import numpy as np

from instruments_jax.data import features


def _pyplot():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def plot_chart(metrics_path: str, path: str) -> list[str]:
  """Draws the recipe's four panels from metrics.jsonl: learning rate, train batch loss,
  validation loss and validation ROC-AUC, each against samples seen (the recipe's "step")."""
  plt = _pyplot()
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


def plot_confusion(confusion: dict, title: str, path: str) -> None:
  """Draws metrics' confusion matrix with its counts: rows true, columns predicted; or, multi-label, a row per
  class with its true positives, misses, false alarms and true negatives at the threshold."""
  plt = _pyplot()
  classes = confusion["classes"]
  multi = "rows_class" in confusion
  matrix = np.array(confusion["rows_class"] if multi else confusion["rows_true_cols_predicted"])
  columns = ["true pos.", "missed", "false pos.", "true neg."] if multi else classes
  size = max(len(classes), 4)
  fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 1.5, 0.75 * size + 1.5))
  ax.imshow(matrix, cmap="Blues", aspect="auto")
  for (i, j), v in np.ndenumerate(matrix):
    ax.text(j, i, str(v), ha="center", va="center", color="white" if v > matrix.max() / 2 else "black")
  ax.set_xticks(range(len(columns)), columns, rotation=30 if len(columns) > 4 else 0, ha="right" if
                len(columns) > 4 else "center")
  ax.set_yticks(range(len(classes)), classes)
  ax.set_xlabel(f"at probability >= {confusion['threshold']:g}" if multi else "predicted")
  ax.set_ylabel("class" if multi else "true")
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_predictions(dataset, indices, probs, losses, cfg, title, path) -> list[str]:
  """Draws the `logging.number_of_audios` highest-loss clips (log-mel of the first inference chunk, true and
  predicted class, probability, loss); returns their names, worst first.

  Multi-label datasets show every label at or above `prediction.probability_threshold` as predicted."""
  classes, threshold = dataset.classes, cfg.prediction.probability_threshold
  plt = _pyplot()
  worst = np.argsort(-losses)[:cfg.logging.number_of_audios]
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
    true = set(dataset.clips[i].tags)
    said = {c for c, p in zip(classes, probs[k]) if p >= threshold} if dataset.multi_label else {classes[pred]}
    ax.set_title(f"true: {'|'.join(sorted(true)) or 'none'}   predicted: {'|'.join(sorted(said)) or 'none'}\n"
                 f"probability {probs[k, pred]:.3f}   loss {losses[k]:.3f}", fontsize=9,
                 color="black" if said == true else "crimson")
    ax.set_xlabel(f"{dataset.clips[i].name}  (s)", fontsize=7)
    ax.set_yticks([])
  for ax in list(axes.flat)[len(worst):]:
    ax.axis("off")
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return [dataset.clips[int(indices[k])].name for k in worst]


def plot_train_data(mels, titles, seconds: float, title: str, path: str) -> None:
  """Draws the recipe's training-data figure: training chunks as the model sees them (log-mel [mels, frames]
  after augmentation), each titled with its target, on the recipe's dark background."""
  plt = _pyplot()
  cols = 4
  rows = int(np.ceil(len(mels) / cols))
  with plt.style.context("dark_background"):
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False, facecolor="#141414")
    for ax, mel, text in zip(axes.flat, mels, titles):
      ax.imshow(mel, origin="lower", aspect="auto", cmap="gray", extent=(0, seconds, 0, mel.shape[0]))
      ax.set_title(text, fontsize=9, loc="left", color="#7cc4f0")
      ax.set_xlabel("s", fontsize=8)
      ax.set_ylabel("mel bin", fontsize=8)
      ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(mels):]:
      ax.axis("off")
    fig.suptitle(title, color="#dddddd")
    fig.tight_layout()
    fig.savefig(path, dpi=110, facecolor=fig.get_facecolor())
    plt.close(fig)
