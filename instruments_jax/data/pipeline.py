"""grain pipelines: random training chunks in shuffled, drop-last batches; fixed evaluation chunks.

Training: each epoch visits a fresh seeded permutation of the clips; each clip
yields one random window of `training_chunk_seconds` (zero-padded when the
clip is shorter, as the seed does), turned into a log-mel in the worker.
Evaluation: every clip is cut into fixed chunks of `inference_chunk_seconds`
covering at most `max_inference_chunk_seconds`; the step averages a clip's
chunk predictions.
"""

from __future__ import annotations

import dataclasses
import math

import grain
import numpy as np

from instruments_jax.data import augment, features
from instruments_jax.data.audio import DataError
from instruments_jax.data.sources import Dataset


@dataclasses.dataclass(frozen=True)
class _TrainChunk:
  dataset: Dataset
  indices: np.ndarray
  audio_cfg: object
  aug_cfg: object

  def __call__(self, k, rng: np.random.Generator):
    i = int(self.indices[k])
    seconds = self.audio_cfg.training_chunk_seconds
    spare = self.dataset.clips[i].duration - seconds
    start = float(rng.uniform(0.0, spare)) if spare > 0 else 0.0
    wave = self.dataset.load(i, start, seconds, self.audio_cfg.sample_rate)
    if augment.enabled(self.aug_cfg):
      wave = augment.waveform(wave, self.audio_cfg.sample_rate, self.aug_cfg, rng)
    mel = features.log_mel(wave, self.audio_cfg)
    if self.aug_cfg.freq_masks or self.aug_cfg.time_masks:
      mel = augment.spec_augment(mel, self.aug_cfg, rng)
    return {"x": mel[..., None], "y": np.int32(self.dataset.clips[i].label)}


def steps_per_epoch(num_clips: int, batch_size: int, drop_last: bool = True) -> int:
  return num_clips // batch_size if drop_last else math.ceil(num_clips / batch_size)


def train_batches(dataset: Dataset, indices: np.ndarray, cfg, seed: int, epochs: int) -> grain.IterDataset:
  """Returns `epochs` epochs of training batches {"x": [B, mels, frames, 1], "y": [B]}."""
  b = cfg.train.batch_size
  n = len(indices)
  if n < b:
    raise ValueError(f"{n} training clips are fewer than one batch of {b}")
  per_epoch = steps_per_epoch(n, b, cfg.train.drop_last_batch) * b
  ds = grain.MapDataset.range(n).seed(seed).shuffle()
  if per_epoch < n:  # drop-last: each epoch drops a different tail of its own permutation
    ds = ds.slice(slice(0, per_epoch))
  ds = ds.repeat(epochs).random_map(_TrainChunk(dataset, np.asarray(indices), cfg.audio, cfg.augmentation))
  ds = ds.batch(b, drop_remainder=cfg.train.drop_last_batch)
  return _to_iter(ds, cfg.data.num_workers)


def eval_plan(dataset: Dataset, indices: np.ndarray, pred_cfg) -> list[tuple[int, int, float]]:
  """Returns (position in indices, clip index, start_s) for every inference chunk."""
  chunk, cap = pred_cfg.inference_chunk_seconds, pred_cfg.max_inference_chunk_seconds
  plan = []
  for pos, i in enumerate(indices):
    covered = min(dataset.clips[int(i)].duration, cap)
    for k in range(max(1, math.ceil(covered / chunk - 1e-6))):
      plan.append((pos, int(i), k * chunk))
  return plan


@dataclasses.dataclass(frozen=True)
class _EvalChunk:
  dataset: Dataset
  audio_cfg: object
  seconds: float

  def __call__(self, item):
    pos, i, start = item
    try:
      wave = self.dataset.load(i, start, self.seconds, self.audio_cfg.sample_rate)
      ok = True
    except DataError:  # evaluation goes on; the caller re-reads bad clips for their reasons
      wave, ok = np.zeros(int(round(self.seconds * self.audio_cfg.sample_rate)), np.float32), False
    return {"x": features.log_mel(wave, self.audio_cfg)[..., None], "clip": np.int32(pos), "ok": np.bool_(ok)}


def eval_batches(dataset: Dataset, indices: np.ndarray, cfg, num_workers: int | None = None):
  """Returns (plan, batches): chunk batches {"x", "clip", "ok"}, the last one padded with clip = -1."""
  plan = eval_plan(dataset, indices, cfg.prediction)
  b = cfg.prediction.batch_size
  ds = grain.MapDataset.source(plan).map(_EvalChunk(dataset, cfg.audio, cfg.prediction.inference_chunk_seconds))
  ds = ds.batch(b, drop_remainder=False)
  workers = cfg.data.num_workers if num_workers is None else num_workers

  def padded():
    for batch in _to_iter(ds, workers):
      short = b - len(batch["clip"])
      if short:
        batch = {"x": np.concatenate([batch["x"], np.zeros((short,) + batch["x"].shape[1:], batch["x"].dtype)]),
                 "clip": np.concatenate([batch["clip"], np.full(short, -1, np.int32)]),
                 "ok": np.concatenate([batch["ok"], np.zeros(short, bool)])}
      yield batch

  return plan, padded()


def _to_iter(ds: grain.MapDataset, num_workers: int) -> grain.IterDataset:
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))
  if num_workers > 0:
    from absl import flags

    if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; libraries and tests never parse them
      flags.FLAGS.mark_as_parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers, per_worker_buffer_size=2))
  return it
