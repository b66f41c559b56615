"""Training augmentations, off in `baseline` (as in the recipe), on in `strong`.

Waveform transforms run in the grain workers, each with its own probability,
drawn from the element's seeded generator so that a seed gives the same run:
pitch shift (resampling, so tempo moves too), EQ (a random peaking biquad),
room reverb (a room of chains.py's seen bank, mixed to mono), noise at a
random SNR, and gain. The whole recording chain (mic curves, codecs, ...) lives
in chains.py and is applied by the synth per clip; these stay as cheap
per-element variations on top of it. SpecAugment masks the log-mel after it. Mixup (the recipe's
`mix_audio`) mixes whole batches on the device inside the train step.
"""

from __future__ import annotations

import numpy as np


def waveform(wave: np.ndarray, sr: int, aug, rng: np.random.Generator) -> np.ndarray:
  """Returns an augmented copy of mono float32 `wave` (same length)."""
  n = len(wave)
  x = wave
  if aug.pitch_prob and rng.random() < aug.pitch_prob:
    import soxr

    factor = 2.0 ** (rng.uniform(-aug.pitch_semitones, aug.pitch_semitones) / 12)
    shifted = soxr.resample(x, sr, sr / factor, quality="HQ")  # played back at sr: pitch and tempo x factor
    x = np.zeros(n, np.float32)
    x[: min(n, len(shifted))] = shifted[:n]
  if aug.eq_prob and rng.random() < aug.eq_prob:
    x = _peaking_eq(x, sr, rng.uniform(100, min(8000, sr / 2.5)), rng.uniform(-12, 12), rng.uniform(0.5, 2.0))
  if aug.reverb_prob and rng.random() < aug.reverb_prob:
    from scipy.signal import fftconvolve

    from instruments_jax.data import chains

    # A room of the seen bank (image sources with early reflections, not bare exponential noise); its
    # stereo pair is mixed down for this mono waveform. Never an unseen room: those are held out.
    ir = chains.room_ir(int(rng.integers(chains.n_rooms("seen"))), sr, "seen").mean(axis=1)
    wet = fftconvolve(x, ir / np.sqrt(np.sum(ir.astype(np.float64) ** 2)))[:n]
    mix = rng.uniform(0.2, 0.7)
    x = (1 - mix) * x + mix * wet
  if aug.noise_prob and rng.random() < aug.noise_prob:
    power = float(np.mean(x**2)) + 1e-10
    snr_db = rng.uniform(*aug.noise_snr_db)
    noise = rng.standard_normal(n)
    if rng.random() < 0.5:  # pink-ish: integrate white noise a little
      noise = np.convolve(noise, np.ones(8) / 8, mode="same")
    noise *= np.sqrt(power / (np.mean(noise**2) + 1e-12) / 10 ** (snr_db / 10))
    x = x + noise
  if aug.gain_db:
    x = x * 10 ** (rng.uniform(-aug.gain_db, aug.gain_db) / 20)
  return np.clip(x, -1.0, 1.0).astype(np.float32)


def _peaking_eq(x, sr, f0, gain_db, q):
  """Applies an RBJ peaking biquad (center f0, gain, Q)."""
  from scipy.signal import lfilter

  a_ = 10 ** (gain_db / 40)
  w0 = 2 * np.pi * f0 / sr
  alpha = np.sin(w0) / (2 * q)
  b = [1 + alpha * a_, -2 * np.cos(w0), 1 - alpha * a_]
  a = [1 + alpha / a_, -2 * np.cos(w0), 1 - alpha / a_]
  return lfilter(b, a, x).astype(np.float32)


def spec_augment(mel: np.ndarray, aug, rng: np.random.Generator) -> np.ndarray:
  """Returns `mel` [mel_bins, frames] with SpecAugment time and frequency masks set to its minimum."""
  out = mel.copy()
  floor = out.min()
  bins, frames = out.shape
  for _ in range(aug.freq_masks):
    w = int(rng.integers(0, aug.freq_mask_bins + 1))
    f = int(rng.integers(0, max(1, bins - w)))
    out[f:f + w] = floor
  for _ in range(aug.time_masks):
    w = int(rng.integers(0, aug.time_mask_frames + 1))
    t = int(rng.integers(0, max(1, frames - w)))
    out[:, t:t + w] = floor
  return out


def enabled(aug) -> bool:
  return bool(aug.pitch_prob or aug.eq_prob or aug.reverb_prob or aug.noise_prob or aug.gain_db)


def mixup(x, onehot, key, aug):
  """Mixes a batch with a permutation of itself (the recipe's mix_audio), on device; returns (x, targets)."""
  import jax
  import jax.numpy as jnp

  for _ in range(aug.mix_iterations):
    key, k_perm, k_lam, k_apply = jax.random.split(key, 4)
    perm = jax.random.permutation(k_perm, x.shape[0])
    lam = jax.random.beta(k_lam, aug.mix_concentration, aug.mix_concentration, (x.shape[0],))
    lam = jnp.where(jax.random.uniform(k_apply, (x.shape[0],)) < aug.mix_probability, lam, 1.0)
    lx = lam.reshape((-1,) + (1,) * (x.ndim - 1))
    x = lx * x + (1 - lx) * x[perm]
    onehot = lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm]
  return x, onehot
