"""An on-disk cache of whole-clip log-mel features, so epoch 2 onwards and re-runs skip decoding.

Layout: `<root>/logmel-<feature key>/<xx>/<file key>.npy`, one float16 array
[mel_bins, frames] per clip holding dB before the top_db floor (the floor is
per chunk, so it is applied when a chunk is cut). Keys:
- feature key: every audio setting the features depend on, and CACHE_VERSION;
  changing the config misses the cache instead of reading stale entries;
- file key: the real path, size and mtime of the file (a synth clip: its seed,
  split, index and the synth module's source hash).
Writes go to a temporary file in the same directory and are renamed into
place, so an interrupted run never leaves a partial entry; an unreadable entry
is recomputed.

A chunk cut from the cache differs from decoding that chunk alone only where
the chunk's edges meet real neighbouring audio (its first and last
n_fft / hop frames) and by up to half a hop in alignment; the float16 storage
rounds dB to 0.03 at most. tests/test_cache.py states the tolerance.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import tempfile

import numpy as np

from instruments_jax.data import default_root, features  # default_root: $INSTRUMENTS_JAX_CACHE, XDG, ~/.cache
from instruments_jax.data import workers
from instruments_jax.data.audio import DataError

CACHE_VERSION = 2  # 2: [mel_bins, frames] layout
FLOOR_DB = -100.0  # 10 * log10(1e-10): what silence and padding are worth before the top_db floor


def from_config(data_cfg, audio_cfg, path: str | None = None) -> FeatureCache | None:
  """Returns the cache `data.cache_dir` names for the data at `path` (default data.path), or None.

  "auto": default_root() for datasets of files, and for the embedded `synth` set only when
  data.max_clip_seconds bounds what each clip renders (caching means rendering every clip whole
  first: its whole clips, 46 000 s for the k-fold train split, cost more than the 2 s windows of a
  5-epoch `quick` run, while the first 10 s of each, 23 600 s, are a bounded fill a user asked
  for: RESULTS.md, "Issue 15, fifth round"); "none": no cache; a folder: that folder, for any data.
  """
  where = data_cfg.cache_dir
  synth_whole = (path or data_cfg.path) == "synth" and not data_cfg.max_clip_seconds
  if where in ("none", "", None) or (where == "auto" and synth_whole):
    return None
  return FeatureCache(default_root() if where == "auto" else where, audio_cfg)


@functools.lru_cache(maxsize=1)
def _synth_version() -> str:
  """A hash of the code that makes the embedded set's sound: the synth, its engines, libraries and recording chains."""
  from instruments_jax.data import chains, engines, freepats, soundfonts, synth

  h = hashlib.sha1()
  for module in (synth, engines, chains, soundfonts, freepats):
    with open(module.__file__, "rb") as f:
      h.update(f.read())
  return h.hexdigest()[:16]


def _sha(text: str) -> str:
  return hashlib.sha1(text.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class FeatureCache:
  root: str
  audio_cfg: object

  @property
  def directory(self) -> str:
    a = self.audio_cfg
    key = _sha(f"v{CACHE_VERSION}|{a.sample_rate}|{a.stft_window_size}|{a.hop_size}|{a.mel_bins}|"
               f"{float(a.fmin)}|{float(a.fmax)}|float16")[:16]
    return os.path.join(self.root, f"logmel-{key}")

  def path(self, dataset, i: int) -> str:
    c = dataset.clips[i]
    if c.path is None:
      from instruments_jax.data import synth

      families, mix = ",".join(dataset.synth_classes), dataset.synth_mix_of(i)
      ident = (f"synth|{dataset.synth_seed}|{dataset.synth_split}|{families}|{i}|{_synth_version()}|"
               f"{','.join(mix.engines)}|{mix.chain_prob!r}" + (f"|{mix.voice_spread!r}" if mix.voice_spread else "")
               + (f"|d{mix.distortion_prob!r}" if mix.distortion_prob != synth.BENCHMARK.distortion_prob else "")
               + (f"|amp{mix.guitar_amp!r}" if mix.guitar_amp else "")
               + (f"|shift{mix.formant_shift!r}" if mix.formant_shift else ""))
    else:
      st = os.stat(c.path)
      ident = f"file|{os.path.realpath(c.path)}|{st.st_size}|{st.st_mtime_ns}"
    if dataset.max_seconds:  # the entry holds the clip's first max_seconds only
      ident += f"|first {dataset.max_seconds!r}"
    key = _sha(ident)
    return os.path.join(self.directory, key[:2], key + ".npy")

  def get(self, dataset, i: int) -> np.ndarray:
    """Returns clip i's dB [mel_bins, frames] (float16, memory-mapped), computing them on a miss."""
    path = self.path(dataset, i)
    try:
      return np.load(path, mmap_mode="r")
    except Exception:  # missing, or an entry that does not parse (a disk error, a hand edit): recompute
      pass
    db = self.compute(dataset, i)
    try:
      self._write(path, db)
    except OSError as e:  # a full or read-only disk: the features are still right, just not kept
      _warn_unwritable(path, e)
    return db

  def compute(self, dataset, i: int) -> np.ndarray:
    a = self.audio_cfg
    wave = dataset.load(i, 0.0, dataset.clips[i].duration, a.sample_rate)  # raises DataError naming the file
    # n_fft / 2 zeros more: frames centred just past the end still see the clip's last samples,
    # as they do when a chunk reaching past the end is decoded and zero-padded.
    wave = np.pad(wave, (0, a.stft_window_size // 2))
    return np.ascontiguousarray(features.db_frames(wave, a).T, np.float16)  # [mels, frames]: chunks copy rows

  def _write(self, path: str, db: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
      with os.fdopen(fd, "wb") as f:
        np.save(f, db)
      os.replace(tmp, path)  # atomic: readers see the old state or the whole entry
    except BaseException:
      if os.path.exists(tmp):
        os.remove(tmp)
      raise

  def chunk(self, dataset, i: int, start: float, seconds: float) -> np.ndarray:
    """Returns the log-mel [mel_bins, frames] of `seconds` of clip i from `start`, cut from the cache."""
    a = self.audio_cfg
    out = np.empty((a.mel_bins, features.num_frames(int(round(seconds * a.sample_rate)), a.hop_size)), np.float32)
    self.chunk_into(out, dataset, i, start)
    return out

  def chunk_into(self, out: np.ndarray, dataset, i: int, start: float) -> None:
    """Writes the log-mel of clip i from `start` into `out` [mel_bins, frames] (a batch row, say): one pass."""
    a = self.audio_cfg
    n = out.shape[1]
    first = int(round(start * a.sample_rate / a.hop_size))
    part = self.get(dataset, i)[:, first:first + n]  # [mels, frames] float16
    head = out[:, :part.shape[1]]
    head[...] = part
    top = max(float(head.max()) if head.size else FLOOR_DB, FLOOR_DB)
    floor = FLOOR_DB if a.top_db is None else max(FLOOR_DB, top - a.top_db)
    if a.top_db is not None:
      np.maximum(head, floor, out=head)
    out[:, part.shape[1]:] = floor  # padding past the clip's end, already floored

  def fill(self, dataset, indices, num_workers: int = 0) -> list[tuple[int, str]]:
    """Computes every missing entry of `indices` with `num_workers` workers; returns (index, reason) of failures.

    Files fill in threads: soundfile, soxr, scipy.fft and scipy.sparse release the GIL, and
    threads start at once. Synth clips fill in worker processes: midirenderer holds the GIL
    while it renders, so threads would take turns on one core.
    """
    import logging
    import time
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    todo = [int(i) for i in indices if not os.path.exists(self.path(dataset, int(i)))]
    if not todo:
      return []
    workers = max(1, num_workers)
    if workers > 1 and any(dataset.clips[i].path is None for i in todo):
      import multiprocessing

      # spawn, not fork: the caller may hold jax's threads, which a forked child must not inherit
      pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init, initargs=(self, dataset))
      results = pool.map(_worker_fill, todo, chunksize=max(1, min(16, len(todo) // (4 * workers))))
    else:
      pool = ThreadPoolExecutor(workers)
      results = pool.map(lambda i: _fill_one(self, dataset, i), todo)
    failed, t0, last = [], time.time(), time.time()
    try:
      for done, (i, why) in enumerate(results, start=1):
        if why:
          failed.append((i, why))
        if time.time() - last > 15 or done == len(todo):
          last = time.time()
          logging.getLogger("absl").info("feature cache %s: %d/%d clips of %s decoded (%.0f s)", self.directory,
                                         done, len(todo), dataset.name, last - t0)
    except BaseException:  # a stop signal: drop the queued clips instead of decoding them all first
      pool.shutdown(wait=False, cancel_futures=True)
      raise
    pool.shutdown()
    return failed

  def missing(self, dataset, indices) -> list[int]:
    """Returns the indices whose entry is not on disk (after a fill: those a write failed to keep)."""
    return [int(i) for i in indices if not os.path.exists(self.path(dataset, int(i)))]


_WARNED: list = []


def _warn_unwritable(path: str, e: OSError) -> None:
  """Warns once per process that the cache cannot be written, naming the entry and the reason."""
  if not _WARNED:
    _WARNED.append(path)
    import logging

    logging.getLogger("absl").warning("feature cache: cannot write %s (%s); features are computed without "
                                      "keeping them", path, e.strerror or e)


def _fill_one(feature_cache: FeatureCache, dataset, i: int) -> tuple[int, str]:
  """Computes and writes clip i's entry; returns (i, "") or (i, the reason it failed)."""
  try:
    feature_cache.get(dataset, i)
    return i, ""
  except DataError as e:
    return i, str(e)


_WORKER: dict = {}  # a fill process's cache and dataset, sent once when it starts


def _worker_init(feature_cache: FeatureCache, dataset) -> None:
  workers.die_with_parent()
  _WORKER.update(cache=feature_cache, dataset=dataset)


def _worker_fill(i: int) -> tuple[int, str]:
  return _fill_one(_WORKER["cache"], _WORKER["dataset"], i)
