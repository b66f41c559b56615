import jax
import jax.numpy as jnp
import numpy as np

from instruments_jax.configs import get_config
from instruments_jax.data import augment, pipeline, sources, synth


def _wave(seconds=1.0, sr=44100):
  spec = synth.clip_spec(0, "train", 4)
  from instruments_jax.data.audio import to_mono

  return to_mono(synth.render(spec, 0.0, seconds), spec.sample_rate, sr, int(seconds * sr))


def test_strong_waveform_augmentation_is_seeded_finite_and_keeps_length():
  aug = get_config("strong").augmentation
  aug.pitch_prob = aug.eq_prob = aug.reverb_prob = aug.noise_prob = 1.0
  x = _wave()
  a = augment.waveform(x, 44100, aug, np.random.default_rng(3))
  b = augment.waveform(x, 44100, aug, np.random.default_rng(3))
  c = augment.waveform(x, 44100, aug, np.random.default_rng(4))
  assert a.shape == x.shape and a.dtype == np.float32 and np.isfinite(a).all()
  assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.allclose(a, x)


def test_baseline_leaves_audio_untouched():
  aug = get_config("baseline").augmentation
  assert not augment.enabled(aug) and aug.mix_audio == "disabled"
  assert aug.freq_masks == 0 and aug.time_masks == 0


def test_spec_augment_masks_to_the_floor():
  aug = get_config("strong").augmentation
  mel = np.random.default_rng(0).normal(size=(64, 173)).astype(np.float32)
  out = augment.spec_augment(mel, aug, np.random.default_rng(0))
  assert out.shape == mel.shape and (out == mel.min()).sum() > 0 and not np.array_equal(out, mel)


def test_mixup_mixes_inputs_and_targets_by_the_same_ratio():
  aug = get_config("strong").augmentation
  aug.mix_probability = 1.0
  x = jnp.arange(8.0).reshape(8, 1, 1, 1) * jnp.ones((8, 2, 3, 1))
  onehot = jax.nn.one_hot(jnp.arange(8) % 4, 4)
  mx, my = augment.mixup(x, onehot, jax.random.key(0), aug)
  np.testing.assert_allclose(my.sum(axis=1), 1.0, rtol=1e-6)
  assert not np.allclose(mx, x)
  assert float(mx.min()) >= 0 and float(mx.max()) <= 7


def test_strong_training_batches_are_deterministic():
  cfg = get_config("strong")
  cfg.data.num_workers = 0
  cfg.train.batch_size = 4
  ds = sources.synth_dataset(0, "train")
  a = list(pipeline.train_batches(ds, np.arange(8), cfg, seed=1, epochs=1))
  b = list(pipeline.train_batches(ds, np.arange(8), cfg, seed=1, epochs=1))
  assert all(np.array_equal(p["x"], q["x"]) for p, q in zip(a, b))
