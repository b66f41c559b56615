"""Log-mel spectrograms exactly as librosa computes them, in numpy or jax.numpy.

`log_mel` equals `librosa.power_to_db(librosa.feature.melspectrogram(...))` with
the seed's settings (centered frames, zero padding, periodic Hann window, power
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
def _filters(sr, n_fft, n_mels, fmin, fmax):
  import librosa

  fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
  window = np.hanning(n_fft + 1)[:-1]  # periodic Hann, as scipy.signal.get_window("hann")
  return fb.T.astype(np.float32), window.astype(np.float32)


def log_mel(wave, audio_cfg, xp=np):
  """Returns the log-mel spectrogram [..., mel_bins, frames] (dB) of waveforms [..., samples]."""
  n_fft, hop = audio_cfg.stft_window_size, audio_cfg.hop_size
  fb, window = _filters(audio_cfg.sample_rate, n_fft, audio_cfg.mel_bins, float(audio_cfg.fmin), float(audio_cfg.fmax))
  pad = [(0, 0)] * (wave.ndim - 1) + [(n_fft // 2, n_fft // 2)]
  x = xp.pad(wave, pad)
  n = num_frames(wave.shape[-1], hop)
  idx = np.arange(n)[:, None] * hop + np.arange(n_fft)[None, :]
  frames = x[..., idx] * window  # [..., frames, n_fft]
  spec = xp.fft.rfft(frames, axis=-1)
  power = (spec.real**2 + spec.imag**2).astype(xp.float32)
  mel = power @ fb  # [..., frames, mel_bins]
  db = 10.0 * xp.log10(xp.maximum(mel, 1e-10))
  if audio_cfg.top_db is not None:
    db = xp.maximum(db, db.max(axis=(-2, -1), keepdims=True) - audio_cfg.top_db)
  return xp.swapaxes(db, -1, -2).astype(xp.float32)
