import librosa
import numpy as np
import pytest

from instruments_jax.configs import get_config
from instruments_jax.data import audio, features, synth

# Stated tolerance: our float32 log-mel is within 0.01 dB of librosa's everywhere.
TOLERANCE_DB = 1e-2


def _librosa_log_mel(wave, cfg):
  mel = librosa.feature.melspectrogram(y=wave, sr=cfg.sample_rate, n_fft=cfg.stft_window_size,
                                       hop_length=cfg.hop_size, n_mels=cfg.mel_bins, fmin=cfg.fmin, fmax=cfg.fmax)
  return librosa.power_to_db(mel, top_db=cfg.top_db)


@pytest.mark.parametrize("seconds", [0.3, 2.0, 7.1])
def test_log_mel_matches_librosa_with_the_seed_settings(seconds):
  cfg = get_config("baseline").audio
  spec = synth.clip_spec(0, "train", 11)
  wave = audio.to_mono(synth.render(spec, 0.0, seconds), spec.sample_rate, cfg.sample_rate,
                       int(round(seconds * cfg.sample_rate)))
  ref = _librosa_log_mel(wave, cfg)
  ours = features.log_mel(wave, cfg)
  assert ours.shape == ref.shape == (128, features.num_frames(len(wave), 512))
  assert ours.dtype == np.float32
  np.testing.assert_allclose(ours, ref, atol=TOLERANCE_DB, rtol=0)


def test_log_mel_in_jax_matches_numpy():
  import jax.numpy as jnp

  cfg = get_config("quick").audio
  wave = np.random.default_rng(0).normal(size=(2, 22050)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(features.log_mel(jnp.asarray(wave), cfg, xp=jnp)),
                             features.log_mel(wave, cfg), atol=TOLERANCE_DB)


def test_baseline_input_is_128_mels_by_5168_frames_for_60_seconds():
  assert features.input_shape(get_config("baseline").audio, 60.0) == (128, 5168, 1)
