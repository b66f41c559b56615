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


def _mel_with_a_unique_minimum(seed=0, shape=(64, 173)):
  mel = (np.random.default_rng(seed).normal(size=shape) * 10.0 - 40.0).astype(np.float32)
  assert (mel == mel.min()).sum() == 1
  return mel


def _runs(flags):
  """Lengths of the runs of True in a 1-d boolean array."""
  edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
  return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def _masked_rows_and_columns(mel, out):
  """Checks that `out` is `mel` with whole rows and / or whole columns set to mel.min(); returns both masks."""
  floor = mel.min()
  changed = out != mel
  assert np.all(out[changed] == floor)  # every changed cell is the chunk's minimum
  at_floor = out == floor
  rows, cols = at_floor.all(axis=1), at_floor.all(axis=0)
  # Cells at the floor are whole masked rows or columns, or the one cell that was the minimum already.
  np.testing.assert_array_equal(at_floor, rows[:, None] | cols[None, :] | (mel == floor))
  return rows, cols


def test_spec_augment_masks_to_the_floor():
  aug = get_config("strong").augmentation  # 2 masks of up to 8 mel bins, 2 of up to 20 frames
  assert (aug.freq_masks, aug.freq_mask_bins, aug.time_masks, aug.time_mask_frames) == (2, 8, 2, 20)
  mel = _mel_with_a_unique_minimum()
  out = augment.spec_augment(mel, aug, np.random.default_rng(0))
  assert out.shape == mel.shape and out.dtype == mel.dtype
  assert (out != mel).sum() > 0
  rows, cols = _masked_rows_and_columns(mel, out)
  assert rows.sum() <= 2 * 8 and cols.sum() <= 2 * 20
  assert np.array_equal(mel, _mel_with_a_unique_minimum())  # the input is left alone

  aug.freq_masks = aug.time_masks = 0
  np.testing.assert_array_equal(augment.spec_augment(mel, aug, np.random.default_rng(0)), mel)


def test_spec_augment_masks_are_contiguous_and_never_wider_than_the_limit():
  aug = get_config("strong").augmentation
  aug.freq_masks, aug.freq_mask_bins, aug.time_masks, aug.time_mask_frames = 1, 8, 1, 20
  mel = _mel_with_a_unique_minimum(seed=1)
  widths = {"rows": [], "cols": []}
  for seed in range(200):
    rows, cols = _masked_rows_and_columns(mel, augment.spec_augment(mel, aug, np.random.default_rng(seed)))
    for name, flags, limit in (("rows", rows, 8), ("cols", cols, 20)):
      runs = _runs(flags)
      assert len(runs) <= 1, (seed, name, runs)  # one mask: one block of whole rows / columns
      widths[name].append(runs[0] if runs else 0)
      assert widths[name][-1] <= limit, (seed, name, widths[name][-1])
  # widths are drawn from 0..limit: over 200 draws both ends show up
  assert min(widths["rows"]) == 0 and max(widths["rows"]) == 8
  assert min(widths["cols"]) == 0 and max(widths["cols"]) == 20

  aug.freq_masks = 0  # time masks only: no whole row is masked
  for seed in range(20):
    rows, _ = _masked_rows_and_columns(mel, augment.spec_augment(mel, aug, np.random.default_rng(seed)))
    assert not rows.any()
  aug.freq_masks, aug.time_masks = 1, 0  # frequency masks only: no whole column is masked
  for seed in range(20):
    _, cols = _masked_rows_and_columns(mel, augment.spec_augment(mel, aug, np.random.default_rng(seed)))
    assert not cols.any()


def _mixup_batch(b=8):
  """Clip i is the constant i with a one-hot target of class i, so a mix reveals both partners and the weight."""
  x = jnp.arange(float(b)).reshape(b, 1, 1, 1) * jnp.ones((b, 2, 3, 1))
  return x, jax.nn.one_hot(jnp.arange(b), b)


def test_mixup_mixes_inputs_and_targets_by_the_same_ratio():
  aug = get_config("strong").augmentation
  aug.mix_probability, aug.mix_iterations = 1.0, 1
  x, onehot = _mixup_batch()
  mixed_somewhere = 0
  for seed in range(3):
    mx, my = augment.mixup(x, onehot, jax.random.key(seed), aug)
    mx, my = np.asarray(mx), np.asarray(my)
    assert mx.shape == x.shape and my.shape == onehot.shape
    for i in range(8):
      target = my[i]
      assert np.all(target >= 0) and (target > 0).sum() <= 2, target
      np.testing.assert_allclose(target.sum(), 1.0, rtol=1e-6)
      lam = float(target[i])  # clip i keeps weight lam, its partner j gets 1 - lam
      others = np.delete(np.arange(8), i)
      j = int(others[np.argmax(target[others])]) if target[others].max() > 0 else i
      np.testing.assert_allclose(mx[i], lam * i + (1 - lam) * j, atol=1e-5, err_msg=f"row {i}, lam {lam}, j {j}")
      mixed_somewhere += j != i and 0.05 < lam < 0.95
  assert mixed_somewhere >= 3  # the check above saw real mixes, not only lam = 1


def test_mixup_with_probability_0_leaves_inputs_and_targets_alone():
  aug = get_config("strong").augmentation
  aug.mix_probability, aug.mix_iterations = 0.0, 1
  x, onehot = _mixup_batch()
  mx, my = augment.mixup(x, onehot, jax.random.key(0), aug)
  np.testing.assert_array_equal(np.asarray(mx), np.asarray(x))
  np.testing.assert_array_equal(np.asarray(my), np.asarray(onehot))


def test_strong_training_batches_are_deterministic():
  cfg = get_config("strong")
  cfg.data.num_workers = 0
  cfg.train.batch_size = 4
  ds = sources.synth_dataset(0, "train")
  a = list(pipeline.train_batches(ds, np.arange(8), cfg, seed=1, epochs=1))
  b = list(pipeline.train_batches(ds, np.arange(8), cfg, seed=1, epochs=1))
  assert all(np.array_equal(p["x"], q["x"]) for p, q in zip(a, b))


def test_reverb_convolves_with_a_seen_room_of_the_chain_bank(monkeypatch):
  from instruments_jax.data import chains

  aug = get_config("strong").augmentation
  aug.pitch_prob = aug.eq_prob = aug.noise_prob = 0.0
  aug.reverb_prob, aug.gain_db = 1.0, 0.0
  asked = []
  room_ir = chains.room_ir
  monkeypatch.setattr(chains, "room_ir", lambda room, sr, pool="seen": asked.append((room, sr, pool)) or room_ir(room, sr, pool))
  x = np.zeros(16000, np.float32)
  x[1000] = 0.5
  y = augment.waveform(x, 16000, aug, np.random.default_rng(2))
  assert len(asked) == 1 and asked[0][1:] == (16000, "seen") and 0 <= asked[0][0] < chains.n_rooms("seen")
  assert np.sum(y[1000 + 800:] ** 2) > 0  # energy 50 ms after the click: a tail
  np.testing.assert_array_equal(y, augment.waveform(x, 16000, aug, np.random.default_rng(2)))
