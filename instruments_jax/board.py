"""TensorBoard event files of a run, in WORKDIR/tensorboard/, written with tensorboardX (no TensorFlow).

    tensorboard --logdir runs/quick/tensorboard

Scalars: `train/lr`, `train/loss` (the mean of a log interval), `train/batch_loss` (every step),
`train/samples_per_s`, and per evaluated split every metric (`validation/roc_auc`, ...) and every
per-class score (`validation/guitar/recall`, ...). Images: the recipe's training-data figure,
and per validation the recipe's chart, the confusion matrix and the predictions figure. Audio: the first inference
chunk of the highest-loss validation clips. Only process 0 writes; a resumed run appends a new
event file that starts with a purge at the first step after its checkpoint, so TensorBoard drops
what the interrupted run logged past that checkpoint and no step appears twice.
"""

from __future__ import annotations

import os

import numpy as np

DIRECTORY = "tensorboard"
AUDIO_SECONDS = 10.0  # the most of each clip's first inference chunk kept as audio


class Board:
  """Writes a run's events; every method does nothing when the board is disabled (not process 0)."""

  def __init__(self, workdir: str | None, resume_step: int | None = None):
    self.writer = None
    if workdir is None:
      return
    from tensorboardX import SummaryWriter

    # purge_step: TensorBoard discards events of earlier files at this step and later.
    self.writer = SummaryWriter(os.path.join(workdir, DIRECTORY), flush_secs=30,
                                purge_step=None if resume_step is None else resume_step + 1)

  def train(self, step: int, batch_losses, lr: float, samples_per_s: float) -> None:
    """Logs one log interval ending at `step`: its batch losses (one per step), the learning rate and throughput."""
    if self.writer is None:
      return
    first = step - len(batch_losses) + 1
    for k, loss in enumerate(batch_losses):
      self.writer.add_scalar("train/batch_loss", loss, first + k)
    self.writer.add_scalar("train/loss", float(np.mean(batch_losses)), step)
    self.writer.add_scalar("train/lr", lr, step)
    self.writer.add_scalar("train/samples_per_s", samples_per_s, step)

  def metrics(self, split: str, step: int, m: dict) -> None:
    """Logs every number of a `metrics.classification_metrics` result, per class too."""
    if self.writer is None:
      return
    for name, value in m.items():
      if isinstance(value, (int, float)) and not isinstance(value, bool):
        self.writer.add_scalar(f"{split}/{name}", value, step)
    for cls, scores in m.get("per_class", {}).items():
      for name, value in scores.items():
        self.writer.add_scalar(f"{split}/{cls}/{name}", value, step)

  def image(self, tag: str, png_path: str, step: int) -> None:
    """Logs a PNG file (a figure of the run) as an image."""
    if self.writer is None:
      return
    import matplotlib.image

    pixels = matplotlib.image.imread(png_path)[..., :3]  # float RGB(A) in [0, 1]
    self.writer.add_image(tag, np.ascontiguousarray(pixels), step, dataformats="HWC")

  def audio(self, tag: str, wave: np.ndarray, sample_rate: int, step: int) -> None:
    """Logs mono audio in [-1, 1]."""
    if self.writer is None:
      return
    self.writer.add_audio(tag, np.clip(np.asarray(wave, np.float32), -1, 1), step, sample_rate=sample_rate)

  def text(self, tag: str, text: str, step: int) -> None:
    if self.writer is not None:
      self.writer.add_text(tag, text, step)

  def flush(self) -> None:
    if self.writer is not None:
      self.writer.flush()

  def close(self) -> None:
    if self.writer is not None:
      self.writer.close()
      self.writer = None
