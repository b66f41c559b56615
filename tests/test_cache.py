"""The on-disk feature cache: parity with decoding, keys, atomic writes; and the on-device front end's parity."""

import os

import numpy as np
import pytest

from instruments_jax.configs import get_config
from instruments_jax.data import cache, features, pipeline, sources

# Stated tolerance: float16 storage rounds dB by at most 2**-6 * 64 / 2 = 0.03 dB (|dB| < 128);
# top_db floors agree because the chunk's maximum is rounded the same way.
CACHE_TOLERANCE_DB = 0.07
EDGE = 4  # n_fft / hop frames at each chunk edge see real neighbours in the cache, zero padding when decoded


def _cfg():
  cfg = get_config("smoke")
  cfg.data.cache_dir = "none"
  return cfg


def test_cached_chunk_matches_decoding_the_chunk(tmp_path, kaggle_dir):
  cfg = _cfg()
  ds = sources.open_dataset(str(kaggle_dir), "train")
  fc = cache.FeatureCache(str(tmp_path), cfg.audio)
  for i, start in ((0, 0.0), (3, 512 * 40 / 44100), (5, 512 * 200 / 44100)):
    host = features.log_mel(ds.load(i, start, 2.0, 44100), cfg.audio)
    cut = fc.chunk(ds, i, start, 2.0)
    assert cut.shape == host.shape and cut.dtype == np.float32
    np.testing.assert_allclose(cut[:, EDGE:-EDGE], host[:, EDGE:-EDGE], atol=CACHE_TOLERANCE_DB)
  past_end = fc.chunk(ds, 0, ds.clips[0].duration + 1.0, 1.0)  # all padding: the floor
  assert np.all(past_end == past_end.flat[0])


def test_hits_skip_decoding_and_any_change_misses(tmp_path, kaggle_dir, monkeypatch):
  cfg = _cfg()
  ds = sources.open_dataset(str(kaggle_dir), "train")
  fc = cache.FeatureCache(str(tmp_path), cfg.audio)
  assert fc.fill(ds, np.arange(4)) == []
  first = np.array(fc.get(ds, 2))
  monkeypatch.setattr(cache.FeatureCache, "compute", lambda *a: pytest.fail("a hit decoded the file"))
  np.testing.assert_array_equal(fc.get(ds, 2), first)
  monkeypatch.undo()
  other = cfg.audio.copy_and_resolve_references()
  other.mel_bins = 16
  assert cache.FeatureCache(str(tmp_path), other).directory != fc.directory  # a feature change misses
  assert cache.FeatureCache(str(tmp_path), other).get(ds, 2).shape[0] == 16  # [mels, frames]
  path = fc.path(ds, 2)
  os.utime(ds.clips[2].path, ns=(0, 10**9))  # the file changed (its mtime): a new key
  assert fc.path(ds, 2) != path


def test_interrupted_write_leaves_no_entry_and_a_corrupt_entry_is_recomputed(tmp_path, kaggle_dir, monkeypatch):
  cfg = _cfg()
  ds = sources.open_dataset(str(kaggle_dir), "train")
  fc = cache.FeatureCache(str(tmp_path), cfg.audio)
  real_save = np.save

  def dies_halfway(f, arr):
    real_save(f, arr[: len(arr) // 2])
    raise KeyboardInterrupt

  monkeypatch.setattr(np, "save", dies_halfway)
  with pytest.raises(KeyboardInterrupt):
    fc.get(ds, 1)
  monkeypatch.undo()
  entry_dir = os.path.dirname(fc.path(ds, 1))
  assert os.listdir(entry_dir) == []  # neither the entry nor a temporary file
  good = np.array(fc.get(ds, 1))
  with open(fc.path(ds, 1), "r+b") as f:
    f.truncate(100)
  np.testing.assert_array_equal(fc.get(ds, 1), good)


def test_training_batches_from_the_cache_match_decoded_ones(tmp_path, kaggle_dir):
  cfg = _cfg()
  ds = sources.open_dataset(str(kaggle_dir), "train")  # files: synth clips render windows approximately
  idx = np.arange(8)
  fc = cache.FeatureCache(str(tmp_path), cfg.audio)
  decoded = list(pipeline.train_batches(ds, idx, cfg, seed=4, epochs=1))
  cached = list(pipeline.train_batches(ds, idx, cfg, seed=4, epochs=1, cache=fc))
  for a, b in zip(decoded, cached):
    np.testing.assert_array_equal(a["y"], b["y"])
    # random starts lie on the frame grid; sources at 22.05 / 48 kHz are resampled per window
    # when decoded and per clip when cached, which moves the odd quiet bin
    close = np.abs(a["x"][:, :, EDGE:-EDGE] - b["x"][:, :, EDGE:-EDGE]) < CACHE_TOLERANCE_DB
    assert close.mean() > 0.99, close.mean()


def test_on_device_front_end_matches_the_host_path():
  import jax
  import jax.numpy as jnp

  cfg = _cfg()
  ds = sources.synth_dataset(0, "train")
  idx = np.arange(8)
  host = list(pipeline.train_batches(ds, idx, cfg, seed=2, epochs=1))
  cfg.audio.features_on_device = True
  waves = list(pipeline.train_batches(ds, idx, cfg, seed=2, epochs=1))
  front = jax.jit(lambda w: features.log_mel(w, cfg.audio, xp=jnp)[..., None])
  for h, w in zip(host, waves):
    assert w["x"].shape == (4, int(round(0.75 * 44100)))
    np.testing.assert_array_equal(h["y"], w["y"])
    np.testing.assert_allclose(np.asarray(front(w["x"])), h["x"], atol=2e-2)


def test_length_buckets_pad_short_clips_to_their_bucket_and_keep_epochs_equal():
  cfg = _cfg()
  cfg.audio.training_chunk_seconds = 20.0
  cfg.data.length_buckets = (5.0, 10.0)
  ds = sources.synth_dataset(0, "train")
  idx = np.arange(40)
  steps = pipeline.train_steps_per_epoch(ds, idx, cfg)
  batches = list(pipeline.train_batches(ds, idx, cfg, seed=0, epochs=2))
  assert len(batches) == 2 * steps
  frames = {features.num_frames(int(round(s * 44100)), 512): s for s in (5.0, 10.0, 20.0)}
  for b in batches:
    seconds = frames[b["x"].shape[2]]
    assert b["x"].shape[0] == cfg.train.batch_size
  again = list(pipeline.train_batches(ds, idx, cfg, seed=0, epochs=2))
  assert all(np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"]) for a, b in zip(batches, again))
  durations = np.array([ds.clips[i].duration for i in idx])
  plan = pipeline._batch_plan(ds, idx, cfg, 0, 1)
  for clips, seconds in plan:
    expected = [pipeline.bucket_seconds(d, 20.0, (5.0, 10.0)) for d in durations[clips]]
    assert set(expected) == {seconds}


def test_training_with_the_log_mel_inside_the_step(tmp_path):
  from instruments_jax.configs import ConfigError
  from instruments_jax.train import train_and_evaluate

  cfg = _cfg()
  cfg.data.data_sample = 0.01
  cfg.audio.features_on_device = True
  results = train_and_evaluate(cfg, str(tmp_path / "run"))
  assert np.isfinite(results["validation"]["loss"]) and results["test"]["clips"] == 80
  cfg.augmentation.freq_masks = 2
  with pytest.raises(ConfigError, match="SpecAugment"):
    train_and_evaluate(cfg, str(tmp_path / "masked"))
