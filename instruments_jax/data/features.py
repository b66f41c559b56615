"""Log-mel spectrograms exactly as librosa computes them, in numpy or jax.numpy.

`log_mel` equals `librosa.power_to_db(librosa.feature.melspectrogram(...))` with
the recipe's settings (centered frames, zero padding, periodic Hann window, power
2, Slaney mel filters, ref 1.0, amin 1e-10, top_db 80) up to float32 rounding;
tests/test_features.py states the tolerance.
"""

from __future__ import annotations

import functools

import numpy as np


def num_frames(num_samples: int, hop: int) -> int:
  """Returns how many centered STFT frames a clip of `num_samples` yields."""
  return 1 + num_samples // hop


def input_shape(audio_cfg, seconds: float) -> tuple[int, int, int]:
  """Returns the model input (mel_bins, frames, 1) for a chunk of `seconds`."""
  n = int(round(seconds * audio_cfg.sample_rate))
  return (audio_cfg.mel_bins, num_frames(n, audio_cfg.hop_size), 1)


@functools.lru_cache(maxsize=8)
def _sparse_filters(sr, n_fft, n_mels, fmin, fmax):
  """Returns (first bin, last bin + 1, the filterbank [mels, bins] as CSR): 1 459 of 131 200 weights
  are non-zero for the recipe's 128 mels, so the sparse product costs 1/90 of the dense one."""
  import scipy.sparse

  fb, _ = _filters(sr, n_fft, n_mels, fmin, fmax)
  used = np.flatnonzero(fb.any(axis=1))
  lo, hi = int(used[0]), int(used[-1]) + 1
  return lo, hi, scipy.sparse.csr_matrix(fb[lo:hi].T)


@functools.lru_cache(maxsize=8)
def _filters(sr, n_fft, n_mels, fmin, fmax):
  import librosa

  fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
  window = np.hanning(n_fft + 1)[:-1]  # periodic Hann, as scipy.signal.get_window("hann")
  return fb.T.astype(np.float32), window.astype(np.float32)


def db_frames(wave: np.ndarray, audio_cfg, block: int = 128) -> np.ndarray:
  """Returns [..., frames, mel_bins] float32 dB of waveforms [..., samples], before the top_db floor.

  The host path: strided frames, scipy's float32 FFT, in cache-sized blocks of
  frames, so a 10-minute clip never holds all its STFT frames at once.
  """
  import scipy.fft

  n_fft, hop = audio_cfg.stft_window_size, audio_cfg.hop_size
  key = (audio_cfg.sample_rate, n_fft, audio_cfg.mel_bins, float(audio_cfg.fmin), float(audio_cfg.fmax))
  _, window = _filters(*key)
  lo, hi, fb = _sparse_filters(*key)
  wave = np.asarray(wave, np.float32)
  lead, length = wave.shape[:-1], wave.shape[-1]
  flat = wave.reshape(-1, length)
  n = num_frames(length, hop)
  out = np.empty((len(flat), n, audio_cfg.mel_bins), np.float32)
  for row, w in enumerate(flat):
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(w, n_fft // 2), n_fft)[::hop]
    for s in range(0, n, block):
      spec = scipy.fft.rfft(frames[s:s + block] * window, axis=-1)[:, lo:hi]  # bins the filters use
      power = spec.real**2
      power += spec.imag**2
      out[row, s:s + block] = (fb @ power.T).T
  np.log10(np.maximum(out, 1e-10, out=out), out=out)
  out *= 10.0
  return out.reshape(lead + (n, audio_cfg.mel_bins))


def floor_db(db, top_db, xp=np):
  """Applies librosa's top_db floor over the last two axes (one clip or chunk)."""
  if top_db is None:
    return db
  return xp.maximum(db, db.max(axis=(-2, -1), keepdims=True) - top_db)


def log_mel(wave, audio_cfg, xp=np):
  """Returns the log-mel spectrogram [..., mel_bins, frames] (dB) of waveforms [..., samples].

  With xp=jax.numpy it traces into a jitted function (the on-device front end).
  """
  if xp is np:
    return np.ascontiguousarray(np.swapaxes(floor_db(db_frames(wave, audio_cfg), audio_cfg.top_db), -1, -2))
  n_fft, hop = audio_cfg.stft_window_size, audio_cfg.hop_size
  fb, window = _filters(audio_cfg.sample_rate, n_fft, audio_cfg.mel_bins, float(audio_cfg.fmin), float(audio_cfg.fmax))
  pad = [(0, 0)] * (wave.ndim - 1) + [(n_fft // 2, n_fft // 2)]
  x = xp.pad(wave, pad)
  n = num_frames(wave.shape[-1], hop)
  idx = np.arange(n)[:, None] * hop + np.arange(n_fft)[None, :]
  frames = x[..., idx] * window  # [..., frames, n_fft]
  spec = xp.fft.rfft(frames, axis=-1)
  power = (spec.real**2 + spec.imag**2).astype(xp.float32)
  db = 10.0 * xp.log10(xp.maximum(power @ fb, 1e-10))  # [..., frames, mel_bins]
  return xp.swapaxes(floor_db(db, audio_cfg.top_db, xp), -1, -2).astype(xp.float32)
