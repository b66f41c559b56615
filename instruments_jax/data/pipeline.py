"""grain pipelines: random training chunks in shuffled, drop-last batches; fixed evaluation chunks.

Training: each epoch visits a fresh seeded permutation of the clips; each clip
yields one random window of `training_chunk_seconds` (zero-padded when the
clip is shorter, as the recipe does; with `data.length_buckets`, padded to its
bucket), as a log-mel cut from the feature cache, or decoded and transformed
in grain workers (waveform augmentation, `audio.features_on_device`).
Evaluation: every clip is cut into fixed chunks of `inference_chunk_seconds`
covering at most `max_inference_chunk_seconds`; the step averages a clip's
chunk predictions.
"""

from __future__ import annotations

import dataclasses
import math

import grain
import numpy as np

from instruments_jax.data import augment, features, workers
from instruments_jax.data.audio import DataError
from instruments_jax.data.sources import Dataset


def bucket_seconds(duration: float, chunk: float, buckets) -> float:
  """Returns the padded length of a chunk holding `duration` s: the smallest bucket that fits, else `chunk`."""
  for b in sorted(buckets):
    if min(duration, chunk) <= b < chunk:
      return float(b)
  return float(chunk)


@dataclasses.dataclass(frozen=True)
class _TrainBatch:
  """Loads one batch plan entry: (clip indices, seconds) -> {"x", "y"}."""

  dataset: Dataset
  audio_cfg: object
  aug_cfg: object
  cache: object  # FeatureCache or None
  on_device: bool  # yield waveforms; the train step computes the log-mel

  def __call__(self, entry, rng: np.random.Generator):
    clips, seconds = entry
    xs = [self.one(int(i), float(seconds), rng) for i in clips]
    return {"x": np.stack(xs), "y": self.dataset.target(clips)}

  @property
  def cached(self) -> bool:
    """Whether chunks are cut from the feature cache (no waveform work left to do)."""
    return self.cache is not None and not self.on_device and not augment.enabled(self.aug_cfg)

  def one(self, i, seconds, rng):
    a, aug = self.audio_cfg, self.aug_cfg
    # A random start on the frame grid, so decoding the chunk and cutting it from the cache agree.
    spare_frames = int((self.dataset.clips[i].duration - seconds) * a.sample_rate // a.hop_size)
    start = int(rng.integers(0, spare_frames + 1)) * a.hop_size / a.sample_rate if spare_frames > 0 else 0.0
    if self.cached:
      mel = self.cache.chunk(self.dataset, i, start, seconds)
    else:
      wave = self.dataset.load(i, start, seconds, a.sample_rate)
      if augment.enabled(aug):
        wave = augment.waveform(wave, a.sample_rate, aug, rng)
      if self.on_device:
        return wave
      mel = features.log_mel(wave, a)
    if aug.freq_masks or aug.time_masks:
      mel = augment.spec_augment(mel, aug, rng)
    return mel[..., None]


def _batch_plan(dataset: Dataset, indices: np.ndarray, cfg, seed: int, epochs: int) -> list:
  """Returns [(clip indices, seconds)] per step: each epoch a seeded permutation, cut per length bucket."""
  b, chunk, buckets = cfg.train.batch_size, cfg.audio.training_chunk_seconds, tuple(cfg.data.length_buckets)
  length = np.array([bucket_seconds(dataset.clips[int(i)].duration, chunk, buckets) for i in indices])
  plan = []
  for epoch in range(epochs):
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(indices))
    steps = []
    for sec in np.unique(length):
      members = indices[order[length[order] == sec]]
      cut = len(members) // b * b if cfg.train.drop_last_batch else len(members)
      steps += [(members[k:k + b], float(sec)) for k in range(0, cut, b)]
    plan += [steps[k] for k in rng.permutation(len(steps))]
  return plan


def steps_per_epoch(num_clips: int, batch_size: int, drop_last: bool = True) -> int:
  return num_clips // batch_size if drop_last else math.ceil(num_clips / batch_size)


def train_steps_per_epoch(dataset: Dataset, indices: np.ndarray, cfg) -> int:
  """Steps in one epoch; with length buckets every epoch has the same count (bucket sizes are fixed)."""
  if not cfg.data.length_buckets:
    return steps_per_epoch(len(indices), cfg.train.batch_size, cfg.train.drop_last_batch)
  return len(_batch_plan(dataset, np.asarray(indices), cfg, 0, 1))


def train_batches(dataset: Dataset, indices: np.ndarray, cfg, seed: int, epochs: int,
                  cache=None) -> grain.IterDataset:
  """Returns `epochs` epochs of training batches {"x": [B, mels, frames, 1], "y": [B]}.

  With audio.features_on_device, "x" holds waveforms [B, samples] instead. Without
  length buckets (the recipe), every chunk is `training_chunk_seconds`; with them, a
  batch holds clips of one bucket, padded to that bucket's length.
  """
  b = cfg.train.batch_size
  n = len(indices)
  if n < b:
    raise ValueError(f"{n} training clips are fewer than one batch of {b}")
  load = _TrainBatch(dataset, cfg.audio, cfg.augmentation, cache, cfg.audio.features_on_device)
  # Cutting chunks from the cache costs less than moving them between processes: no workers then.
  workers = 0 if load.cached else cfg.data.num_workers
  if cfg.data.length_buckets:
    ds = grain.MapDataset.source(_batch_plan(dataset, np.asarray(indices), cfg, seed, epochs)).seed(seed).random_map(load)
    return worker_iter(ds, workers)
  per_epoch = steps_per_epoch(n, b, cfg.train.drop_last_batch) * b
  if cfg.data.sampling == "balanced":
    labels = dataset.labels[np.asarray(indices)]
    ds = grain.MapDataset.source(np.concatenate([balanced_order(labels, per_epoch // b, b, [seed, epoch])
                                                 for epoch in range(epochs)])).seed(seed)
  else:
    ds = grain.MapDataset.range(n).seed(seed).shuffle()
    if per_epoch < n:  # drop-last: each epoch drops a different tail of its own permutation
      ds = ds.slice(slice(0, per_epoch))
    ds = ds.repeat(epochs)
  ds = ds.random_map(_OneClip(load, np.asarray(indices), cfg.audio.training_chunk_seconds))
  return worker_iter(ds.batch(b, drop_remainder=cfg.train.drop_last_batch), workers)


def balanced_order(labels: np.ndarray, steps: int, batch_size: int, seed) -> np.ndarray:
  """Returns `steps` batches of positions into `labels`, flattened, each batch holding every class equally often.

  Each batch takes `batch_size // classes` clips of every class, and the remainder from a
  seeded draw of distinct classes, in shuffled order; within a class, clips come in seeded
  permutations, a new one when the last is used up, so every clip of a small class is seen
  before any repeats. A multi-label clip counts as its first label.
  """
  rng = np.random.default_rng(seed)
  classes = np.unique(labels)
  members = [np.flatnonzero(labels == c) for c in classes]
  queues = [rng.permutation(m) for m in members]
  taken = [0] * len(classes)
  out = np.empty(steps * batch_size, np.int64)
  per, extra = divmod(batch_size, len(classes))
  for s in range(steps):
    draws = np.concatenate([np.repeat(np.arange(len(classes)), per), rng.permutation(len(classes))[:extra]])
    for k, c in enumerate(rng.permutation(draws)):
      if taken[c] == len(queues[c]):
        queues[c], taken[c] = rng.permutation(members[c]), 0
      out[s * batch_size + k] = queues[c][taken[c]]
      taken[c] += 1
  return out


@dataclasses.dataclass(frozen=True)
class _OneClip:
  load: _TrainBatch
  indices: np.ndarray
  seconds: float

  def __call__(self, k, rng: np.random.Generator):
    i = int(self.indices[k])
    return {"x": self.load.one(i, self.seconds, rng), "y": self.load.dataset.target([i])[0]}


def eval_plan(dataset: Dataset, indices: np.ndarray, pred_cfg, buckets=()) -> list[tuple[int, int, float, float]]:
  """Returns (position in indices, clip index, start_s, seconds) for every inference chunk.

  Chunks are `inference_chunk_seconds` long, or with length buckets the smallest
  bucket that holds what is left of the clip.
  """
  chunk, cap = pred_cfg.inference_chunk_seconds, pred_cfg.max_inference_chunk_seconds
  plan = []
  for pos, i in enumerate(indices):
    covered = min(dataset.clips[int(i)].duration, cap)
    for k in range(max(1, math.ceil(covered / chunk - 1e-6))):
      plan.append((pos, int(i), k * chunk, bucket_seconds(covered - k * chunk, chunk, buckets)))
  return plan


@dataclasses.dataclass(frozen=True)
class _EvalBatch:
  """Loads a list of plan entries of one length into a batch padded to `size` with clip = -1."""

  dataset: Dataset
  audio_cfg: object
  cache: object
  size: int

  def __call__(self, entries):
    a = self.audio_cfg
    x = np.empty((self.size, a.mel_bins, features.num_frames(int(round(entries[0][3] * a.sample_rate)),
                                                               a.hop_size), 1), np.float32)
    x[len(entries):] = 0.0  # rows that pad the last batch
    ok = np.zeros(self.size, bool)
    errors = np.full(self.size, "", object)
    for k, (pos, i, start, seconds) in enumerate(entries):
      try:
        if self.cache is not None:
          self.cache.chunk_into(x[k, :, :, 0], self.dataset, int(i), float(start))
        else:
          x[k, :, :, 0] = features.log_mel(self.dataset.load(int(i), start, seconds, a.sample_rate), a)
        ok[k] = True
      except DataError as e:  # evaluation goes on; the caller reports the clip with this reason
        errors[k] = str(e)
        x[k, :, :, 0] = features.log_mel(np.zeros(int(round(seconds * a.sample_rate)), np.float32), a)
    clips = np.full(self.size, -1, np.int32)
    clips[: len(entries)] = [e[0] for e in entries]
    return {"x": x, "clip": clips, "ok": ok, "error": errors}


def eval_batches(dataset: Dataset, indices: np.ndarray, cfg, num_workers: int | None = None, cache=None):
  """Returns (plan, batches): chunk batches {"x", "clip", "ok", "error"} of one length each, the last padded.

  "clip" is the position in `indices` (-1 for padding rows); a chunk that failed to decode
  has ok=False and its DataError message in "error".
  """
  buckets = tuple(cfg.data.length_buckets)
  plan = eval_plan(dataset, indices, cfg.prediction, buckets)
  b = cfg.prediction.batch_size
  groups = []
  for sec in sorted({p[3] for p in plan}, reverse=True):
    same = [p for p in plan if p[3] == sec]
    groups += [same[k:k + b] for k in range(0, len(same), b)]
  ds = grain.MapDataset.source(groups).map(_EvalBatch(dataset, cfg.audio, cache, b))
  if num_workers is None:  # cutting from the cache is cheaper than starting worker processes
    num_workers = 0 if cache is not None else cfg.data.num_workers
  return plan, worker_iter(ds, num_workers)


class KeptBatches:
  """`eval_batches` of a split that is evaluated again and again (validation): the first pass renders
  and keeps them in memory when they fit in `limit_bytes`, later passes replay them.

  The embedded set renders its clips anew each time, so this saves the rendering and the
  log-mel of every validation after the first (RESULTS.md, "Issue 15").
  """

  def __init__(self, dataset: Dataset, indices: np.ndarray, cfg, cache=None, limit_bytes: int = 1 << 30):
    self.dataset, self.indices, self.cfg, self.cache, self.limit = dataset, indices, cfg, cache, limit_bytes
    self.kept: list | None = None

  def __iter__(self):
    if self.kept is not None:
      yield from self.kept
      return
    keep, size = [], 0
    for batch in eval_batches(self.dataset, self.indices, self.cfg, cache=self.cache)[1]:
      if keep is not None:
        size += sum(v.nbytes for v in batch.values() if isinstance(v, np.ndarray))
        if size <= self.limit:
          keep.append(batch)
        else:
          keep = None
      yield batch
    self.kept = keep


def worker_iter(ds: grain.MapDataset, num_workers: int) -> grain.IterDataset:
  """Iterates `ds` in the main process, or in `num_workers` grain worker processes."""
  # In process, two prefetch threads prepare batches while the step runs (numpy releases the GIL).
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2 if num_workers == 0 else 1, prefetch_buffer_size=2))
  if num_workers > 0:
    from absl import flags

    if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; libraries and tests never parse them
      flags.FLAGS.mark_as_parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers, per_worker_buffer_size=2),
                        worker_init_fn=workers.die_with_parent)
  return it
