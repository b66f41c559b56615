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


def test_bucket_seconds_picks_the_smallest_bucket_that_fits_else_the_chunk():
  assert pipeline.bucket_seconds(3.0, 20.0, (5.0, 10.0)) == 5.0
  assert pipeline.bucket_seconds(5.0, 20.0, (5.0, 10.0)) == 5.0  # a clip exactly a bucket long fits it
  assert pipeline.bucket_seconds(5.01, 20.0, (5.0, 10.0)) == 10.0
  assert pipeline.bucket_seconds(7.0, 20.0, (5.0, 10.0)) == 10.0
  assert pipeline.bucket_seconds(12.0, 20.0, (5.0, 10.0)) == 20.0  # longer than every bucket: the chunk
  assert pipeline.bucket_seconds(25.0, 20.0, (5.0, 10.0)) == 20.0  # longer than the chunk: the chunk
  assert pipeline.bucket_seconds(3.0, 20.0, (10.0, 5.0)) == 5.0  # buckets given unsorted
  assert pipeline.bucket_seconds(7.0, 20.0, (10.0, 5.0)) == 10.0
  assert pipeline.bucket_seconds(3.0, 20.0, ()) == 20.0  # no buckets: every chunk is full length
  assert pipeline.bucket_seconds(3.0, 4.0, (5.0, 20.0)) == 4.0  # buckets not shorter than the chunk never apply
  assert pipeline.bucket_seconds(0.0, 20.0, (5.0,)) == 5.0
  assert isinstance(pipeline.bucket_seconds(3, 20, (5, 10)), float)


def _synth_labelled_by_length():
  """The synth train split with each clip's label replaced by its length group, written by hand:

  0: at most 5 s, 1: over 5 and at most 10 s, 2: over 10 s; a batch's labels then tell which clips it holds.
  """
  import dataclasses

  ds = sources.synth_dataset(0, "train")
  group = lambda d: 0 if d <= 5.0 else 1 if d <= 10.0 else 2
  ds = dataclasses.replace(ds, clips=[dataclasses.replace(c, tags=(str(group(c.duration)),)) for c in ds.clips],
                           classes=("0", "1", "2"))
  by_group = {g: [i for i, c in enumerate(ds.clips[:300]) if c.tags == (str(g),)] for g in range(3)}
  idx = np.array(by_group[0][:6] + by_group[1][:9] + by_group[2][:8])  # 1, 2 and 2 full batches of 4
  return ds, idx


def test_length_buckets_pad_short_clips_to_their_bucket_and_keep_epochs_equal():
  cfg = _cfg()
  cfg.audio.training_chunk_seconds = 20.0
  cfg.data.length_buckets = (5.0, 10.0)
  ds, idx = _synth_labelled_by_length()
  steps = pipeline.train_steps_per_epoch(ds, idx, cfg)
  assert steps == 1 + 2 + 2  # 6 // 4 + 9 // 4 + 8 // 4: drop-last within each bucket
  batches = list(pipeline.train_batches(ds, idx, cfg, seed=0, epochs=2))
  assert len(batches) == 2 * steps
  # centered STFT frames, 1 + samples // 512, of 5, 10 and 20 s at 44.1 kHz; the group whose clips they hold
  group_of_frames = {431: 0, 862: 1, 1723: 2}
  for epoch in (batches[:steps], batches[steps:]):
    per_group = {0: 0, 1: 0, 2: 0}
    for b in epoch:
      assert b["x"].shape[:2] == (cfg.train.batch_size, cfg.audio.mel_bins)
      g = group_of_frames[b["x"].shape[2]]
      # 5 s batches hold clips <= 5 s, 10 s batches clips in (5, 10] s, 20 s batches clips over 10 s
      assert set(b["y"].tolist()) == {g}, (b["x"].shape, b["y"])
      per_group[g] += 1
    assert per_group == {0: 1, 1: 2, 2: 2}
  again = list(pipeline.train_batches(ds, idx, cfg, seed=0, epochs=2))
  assert all(np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"]) for a, b in zip(batches, again))


@pytest.mark.slow
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


@pytest.mark.slow
def test_synth_clips_fill_in_worker_processes_with_the_same_entries(tmp_path):
  cfg = _cfg()
  ds = sources.synth_dataset(0, "train")
  idx = np.array([0, 5, 9])
  fc = cache.FeatureCache(str(tmp_path), cfg.audio)
  assert fc.fill(ds, idx, num_workers=2) == []  # midirenderer holds the GIL: processes, not threads
  for i in idx:
    np.testing.assert_array_equal(np.load(fc.path(ds, int(i))), fc.compute(ds, int(i)))  # rendered alike
  assert fc.fill(ds, idx, num_workers=2) == []  # all hits: nothing to start


def test_clips_read_up_to_max_clip_seconds_and_cache_only_that(tmp_path):
  cfg = _cfg()
  whole = sources.open_split(cfg.data, "train")
  long = next(i for i, c in enumerate(whole.clips) if c.duration > 6.0)
  cfg.data.max_clip_seconds = 3.0
  ds = sources.open_split(cfg.data, "train")
  assert ds.clips[long].duration == 3.0 and whole.clips[long].duration > 6.0
  assert all(c.duration == min(w.duration, 3.0) for c, w in zip(ds.clips, whole.clips))
  # Inside the first 3 s a capped clip reads as before; past them, silence, as past a clip's real end.
  np.testing.assert_array_equal(ds.load(long, 1.0, 1.5, 22050), whole.load(long, 1.0, 1.5, 22050))
  wave = ds.load(long, 2.0, 2.0, 22050)
  assert len(wave) == 44100 and np.all(wave[22050:] == 0) and np.any(wave[:22050] != 0)
  np.testing.assert_array_equal(wave[:22050], whole.load(long, 2.0, 1.0, 22050))
  # Its cache entry holds those 3 s, under a key of its own (an uncapped run never reads it); a window reaching
  # past them is padded at the floor, as past a clip's real end.
  fc = cache.FeatureCache(str(tmp_path), cfg.audio)
  assert fc.path(ds, long) != fc.path(whole, long)
  a = cfg.audio
  assert fc.get(ds, long).shape[1] == features.num_frames(3 * a.sample_rate + a.stft_window_size // 2, a.hop_size)
  cut = fc.chunk(ds, long, 2.0, 2.0)
  tail = cut[:, cut.shape[1] // 2 + EDGE:]
  assert np.all(tail == tail.flat[0]) and np.any(cut[:, :cut.shape[1] // 2 - EDGE] > tail.flat[0])


def test_auto_caches_the_embedded_set_only_when_its_clips_are_capped(tmp_path):
  cfg = _cfg()
  cfg.data.cache_dir = "auto"
  assert cache.from_config(cfg.data, cfg.audio) is None  # whole synth clips: rendering windows costs less
  assert cache.from_config(cfg.data, cfg.audio, str(tmp_path)) is not None  # files: always
  cfg.data.max_clip_seconds = 10.0
  assert cache.from_config(cfg.data, cfg.audio).root == cache.default_root()
  cfg.data.cache_dir = "none"
  assert cache.from_config(cfg.data, cfg.audio) is None
