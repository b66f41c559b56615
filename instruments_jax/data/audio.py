"""Decoding: any file soundfile reads, as mono float32 at the config's rate, with one error type."""

from __future__ import annotations

import numpy as np


class DataError(ValueError):
  """A file, row or dataset that cannot be used; the message names it and says why."""


# Header values outside these ranges are corrupt headers (or not audio), not recordings.
MIN_RATE, MAX_RATE, MAX_CHANNELS = 1000, 768_000, 64


def _implausible(rate: int, channels: int) -> str | None:
  """Says why a header's rate and channel count cannot be a recording; None when they can."""
  if MIN_RATE <= rate <= MAX_RATE and 1 <= channels <= MAX_CHANNELS:
    return None
  return f"its header says {rate} Hz and {channels} channels"


def info(path: str) -> tuple[float, int, int]:
  """Returns (duration_s, sample_rate, channels) from the header, without decoding."""
  return _info(path)[:3]


def _info(path: str):
  import os

  import soundfile as sf

  if os.path.isfile(path) and os.path.getsize(path) == 0:
    raise DataError(f"cannot read {path!r}: the file is empty")
  try:
    i = sf.info(path)
  except Exception as e:  # soundfile raises several types for unreadable files
    raise DataError(f"cannot read {path!r}: {_reason(e)}") from None
  if i.frames <= 0 or i.samplerate <= 0:
    raise DataError(f"cannot use {path!r}: it holds no audio samples")
  if why := _implausible(i.samplerate, i.channels):
    raise DataError(f"cannot use {path!r}: {why}")
  return i.frames / i.samplerate, int(i.samplerate), int(i.channels), i.subtype


def check(path: str) -> tuple[float, int, int]:
  """Like `info`, and for float formats (the only ones that can hold NaN or inf) scans every sample."""
  duration, sr, ch, subtype = _info(path)
  if subtype in ("FLOAT", "DOUBLE"):
    import soundfile as sf

    try:
      for block in sf.blocks(path, blocksize=1 << 18, dtype="float32", always_2d=True):
        if not np.isfinite(block).all():
          raise DataError(f"cannot use {path!r}: it holds NaN or infinite samples")
    except DataError:
      raise
    except Exception as e:
      raise DataError(f"cannot decode {path!r}: {_reason(e)}") from None
  return duration, sr, ch


def load_window(path: str, start: float, duration: float, sample_rate: int) -> np.ndarray:
  """Decodes [start, start + duration) seconds of a file: mono float32, exactly duration * rate samples.

  Reads only the frames it needs, downmixes by averaging channels, resamples
  with soxr, and zero-pads past the end of the file.
  """
  import soundfile as sf

  try:
    with sf.SoundFile(path) as f:
      sr_in = f.samplerate
      if why := _implausible(sr_in, f.channels):
        raise DataError(why)
      first = int(round(start * sr_in))
      if first:
        f.seek(min(first, f.frames))
      x = f.read(int(round(duration * sr_in)), dtype="float32", always_2d=True)
  except Exception as e:
    raise DataError(f"cannot decode {path!r}: {_reason(e)}") from None
  if not np.isfinite(x).all():
    raise DataError(f"cannot use {path!r}: it holds NaN or infinite samples")
  return to_mono(x, sr_in, sample_rate, int(round(duration * sample_rate)))


def to_mono(x: np.ndarray, sr_in: int, sample_rate: int, length: int) -> np.ndarray:
  """Downmixes [frames, channels] audio, resamples it and pads or cuts it to `length` samples."""
  import soxr

  if x.ndim == 2:  # column sums: numpy's mean over a short last axis runs ~10x slower
    mono = np.array(x[:, 0], dtype=np.float32)
    for k in range(1, x.shape[1]):
      mono += x[:, k]
    if x.shape[1] > 1:
      mono *= np.float32(1.0 / x.shape[1])
  else:
    mono = np.ascontiguousarray(x, dtype=np.float32)
  if sr_in != sample_rate and len(mono):
    mono = soxr.resample(mono, sr_in, sample_rate, quality="HQ").astype(np.float32, copy=False)
  out = np.zeros(length, np.float32)
  out[: min(length, len(mono))] = mono[:length]
  return out


def _reason(e: Exception) -> str:
  msg = str(e).strip() or type(e).__name__
  return msg.replace("\n", " ")
