"""Recording chains: determinism, the identity, disjoint pools, window consistency and each stage's effect."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from instruments_jax.data import chains

RATE = 16000  # low enough that room IRs build in tens of ms; every stage is rate-generic


def _music(seconds: float, rate: int = RATE, channels: int = 2, seed: int = 0) -> np.ndarray:
  """A stand-in for a synth clip: gated partials, slightly different per channel, float32 [frames, channels]."""
  t = np.arange(int(seconds * rate)) / rate
  tone = sum(np.sin(2 * np.pi * f * t + k) / k for k, f in enumerate((196.0, 294.0, 587.0, 1175.0), 1))
  gate = 0.55 + 0.45 * np.sign(np.sin(2 * np.pi * 1.3 * t))
  x = 0.2 * tone * gate
  rng = np.random.default_rng(seed)
  cols = [x + 0.002 * rng.standard_normal(len(t)) for _ in range(channels)]
  return np.stack(cols, axis=1).astype(np.float32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _only(**settings) -> chains.Chain:
  """DRY with a few stages switched on."""
  return dataclasses.replace(chains.DRY, **settings)


def test_draw_and_apply_are_deterministic():
  x = _music(1.0)
  a = chains.draw(np.random.default_rng(5), "seen")
  b = chains.draw(np.random.default_rng(5), "seen")
  assert a == b
  np.testing.assert_array_equal(chains.apply(a, x, RATE, 0.0, (1, 2)), chains.apply(b, x, RATE, 0.0, (1, 2)))
  drawn = {chains.draw(np.random.default_rng(s), "seen") for s in range(20)}
  assert len(drawn) == 20  # different seeds: different chains
  c = chains.draw(np.random.default_rng(6), "seen")
  assert not np.array_equal(chains.apply(a, x, RATE, 0.0, (1, 2)), chains.apply(c, x, RATE, 0.0, (1, 2)))
  noisy = _only(noise="pink", snr_db=20.0)  # the key seeds the noise: another clip, other noise
  assert not np.array_equal(chains.apply(noisy, x, RATE, 0.0, (1, 2)), chains.apply(noisy, x, RATE, 0.0, (1, 3)))
  for field in dataclasses.fields(chains.Chain):  # plain values only, so chains hash, compare and serialize
    assert isinstance(getattr(a, field.name), (int, float, str, tuple)), field.name


def test_dry_is_the_identity():
  stereo, mono = _music(0.5), _music(0.5, channels=1)
  np.testing.assert_array_equal(chains.apply(chains.DRY, stereo, RATE, 3.0, (0,)), stereo)
  out = chains.apply(chains.DRY, mono, RATE, 3.0, (0,))
  assert out.shape == (len(mono), 2) and out.dtype == np.float32
  np.testing.assert_array_equal(out, np.repeat(mono, 2, axis=1))
  loud = 3 * stereo  # DRY does not even clip: the level stage is off
  np.testing.assert_array_equal(chains.apply(chains.DRY, loud, RATE, 0.0, (0,)), loud)


def _in_box(spec: chains.RoomSpec, family) -> bool:
  _, lr, wr, hr, rtr, _ = family
  ranges = (lr, wr, hr, rtr)
  return all(lo <= v <= hi for v, (lo, hi) in zip((*spec.dims, spec.rt60), ranges))


def test_seen_and_unseen_rooms_are_disjoint():
  names = {pool: {f[0] for f in chains.ROOM_FAMILIES[pool]} for pool in chains.POOLS}
  assert not names["seen"] & names["unseen"]
  for pool, other in (("seen", "unseen"), ("unseen", "seen")):
    specs = [chains.room_spec(r, pool) for r in range(chains.n_rooms(pool))]
    assert {s.family for s in specs} == names[pool]  # every family is in the bank
    for s in specs:
      own = next(f for f in chains.ROOM_FAMILIES[pool] if f[0] == s.family)
      assert _in_box(s, own), s
      assert not any(_in_box(s, f) for f in chains.ROOM_FAMILIES[other]), s
  seen_rt60 = [chains.room_spec(r, "seen").rt60 for r in range(chains.n_rooms("seen"))]
  assert 0.15 <= min(seen_rt60) and max(seen_rt60) <= 1.2
  assert chains.room_spec(3, "seen") != chains.room_spec(3, "unseen")
  with pytest.raises(ValueError):
    chains.room_spec(chains.n_rooms("unseen"), "unseen")


def test_seen_and_unseen_mic_curves_are_disjoint():
  drawn = {pool: [chains.draw(np.random.default_rng([9, s]), pool) for s in range(200)] for pool in chains.POOLS}
  curves = {pool: {c.curve for c in drawn[pool]} for pool in chains.POOLS}
  assert curves["seen"] == {"studio", "phone"} and curves["unseen"] == {"dark", "laptop"}
  # By setting: the high-pass corner alone separates the pools.
  assert all(40 <= c.hp_hz <= 400 for c in drawn["seen"])
  assert all(c.hp_hz < 40 or c.hp_hz > 400 for c in drawn["unseen"])
  rooms = {pool: {c.room for c in drawn[pool]} - {-1} for pool in chains.POOLS}
  assert max(rooms["unseen"]) < chains.n_rooms("unseen") and len(rooms["seen"]) > 30
  assert all(c.pool == pool for pool in chains.POOLS for c in drawn[pool])


def test_outputs_are_finite_stereo_same_length_and_within_full_scale():
  stages = {"room": 0, "codec": 0, "noise": 0, "distortion": 0, "comp": 0}
  for seed in range(24):
    pool = chains.POOLS[seed % 2]
    c = chains.draw(np.random.default_rng(seed), pool)
    x = _music(0.7, channels=1 + seed % 2, seed=seed)
    y = chains.apply(c, x, RATE, 0.3, (seed,))
    assert y.shape == (len(x), 2) and y.dtype == np.float32
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    assert not np.allclose(y[:, 0], x[:, 0])
    stages["room"] += c.room >= 0
    stages["codec"] += c.codec != "none"
    stages["noise"] += c.noise != "none"
    stages["distortion"] += c.distortion != "none"
    stages["comp"] += c.comp_ratio > 1
  assert stages["room"] and stages["noise"] and stages["comp"], stages


def _window_vs_whole(chain: chains.Chain, key=(4, 2)) -> float:
  """Correlation of [2, 3.5) s of the whole processed clip with the same stretch processed as a window."""
  whole = _music(4.0)
  out = chains.apply(chain, whole, RATE, 0.0, key)
  start, stop, preroll = int(2.0 * RATE), int(3.5 * RATE), RATE
  win = chains.apply(chain, whole[start - preroll:stop], RATE, (start - preroll) / RATE, key)[preroll:]
  return _corr(out[start:stop], win)


def test_a_window_with_preroll_matches_the_whole_clip():
  checked = {"plain": 0, "codec": 0}
  for seed in range(40):
    c = chains.draw(np.random.default_rng([11, seed]), "seen")
    if c.codec != "none" and checked["codec"] < 3:
      assert _window_vs_whole(c) > 0.7, c
      checked["codec"] += 1
    elif c.codec == "none" and checked["plain"] < 6:
      assert _window_vs_whole(c) > 0.9, c
      checked["plain"] += 1
  assert checked == {"plain": 6, "codec": 3}
  heavy = _only(room=7, room_wet=0.9, comp_threshold_db=-15.0, comp_ratio=6.0, comp_release_ms=300.0,
                noise="brown", snr_db=15.0, level="rms", level_db=-14.0)
  assert _window_vs_whole(heavy) > 0.9


@pytest.mark.parametrize("kind", chains.NOISES)
def test_noise_is_a_function_of_clip_time(kind):
  # Noise 30 dB over the signal: the output is nearly all noise, so the window must read the same noise
  # at the same clip time (an rng per window, or blocks counted from the window start, gives ~0 here).
  c = _only(noise=kind, snr_db=-30.0)
  assert _window_vs_whole(c) > 0.99
  whole = chains.apply(c, _music(4.0), RATE, 0.0, (4, 2))
  assert _corr(whole[:, 0], whole[:, 1]) < 0.9 or kind == "hum"  # the channels are not one copy


@pytest.mark.parametrize("kind", chains.NOISES)
@pytest.mark.parametrize("snr_db", [15.0, 42.0])
def test_noise_floor_lands_at_the_drawn_snr(kind, snr_db):
  x = _music(1.5)
  y = chains.apply(_only(noise=kind, snr_db=snr_db), x, RATE, 0.8, (3,))
  measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2))
  assert abs(measured - snr_db) < 2.0, measured


def test_a_room_adds_a_tail_after_a_click():
  x = np.zeros((RATE, 1), np.float32)
  x[RATE // 10] = 0.5
  late = slice(RATE // 10 + int(0.05 * RATE), RATE // 10 + int(0.4 * RATE))  # 50..400 ms after the click
  assert np.sum(chains.apply(chains.DRY, x, RATE, 0.0, (0,))[late] ** 2) == 0
  tails = {}
  for pool, room in (("seen", 0), ("seen", 3), ("unseen", 2)):  # a booth, a hall, a church
    y = chains.apply(_only(pool=pool, room=room, room_wet=0.5), x, RATE, 0.0, (0,))
    tails[pool, room] = np.sum(y[late].astype(np.float64) ** 2) / np.sum(y.astype(np.float64) ** 2)
    assert _corr(y[:, 0], y[:, 1]) < 0.999  # two mics hear the room differently
  assert tails["seen", 3] > 0.01 and tails["unseen", 2] > 0.01, tails  # >1% of the energy 50 ms on
  assert tails["seen", 0] < tails["seen", 3] / 3, tails  # a dead booth has (almost) none
  ir = chains.room_ir(3, RATE)
  assert ir.dtype == np.float32 and ir.ndim == 2 and ir.shape[1] == 2
  assert chains.room_ir(3, RATE) is ir  # cached
  booth, hall = chains.room_ir(0, RATE), chains.room_ir(3, RATE)
  assert len(hall) > 2 * len(booth)  # taps follow RT60


@pytest.mark.parametrize("codec", ["mp3", "vorbis"])
@pytest.mark.parametrize("rate", [RATE, 44100])
def test_a_codec_changes_the_signal_but_keeps_it(codec, rate):
  x = _music(1.0, rate=rate)
  c = _only(codec=codec, codec_rate=22050, codec_quality=0.9, codec_channels=2)
  y = chains.apply(c, x, rate, 0.0, (0,))
  assert y.shape == (len(x), 2)
  assert np.max(np.abs(y - x)) > 1e-3 and _corr(y, x) > 0.9
  mono = chains.apply(dataclasses.replace(c, codec_channels=1), x, rate, 0.0, (0,))
  np.testing.assert_array_equal(mono[:, 0], mono[:, 1])


def test_level_and_distortion():
  x = _music(1.0)
  y = chains.apply(_only(level="peak", level_db=-6.0), x, RATE, 0.0, (0,))
  assert abs(20 * np.log10(np.abs(y).max()) + 6.0) < 0.01
  y = chains.apply(_only(level="rms", level_db=-30.0), x, RATE, 0.0, (0,))
  assert abs(10 * np.log10(np.mean(y.astype(np.float64) ** 2)) + 30.0) < 0.01
  for kind in ("tanh", "soft", "tube"):
    y = chains.apply(_only(distortion=kind, drive_db=18.0), x, RATE, 0.0, (0,))
    crest = lambda s: np.abs(s).max() / np.sqrt(np.mean(s.astype(np.float64) ** 2))
    assert crest(y) < 0.8 * crest(x), kind  # clipping flattens the peaks


def test_compression_reduces_the_loud_part():
  x = _music(2.0)
  y = chains.apply(_only(comp_threshold_db=-6.0, comp_ratio=8.0, comp_attack_ms=2.0, comp_release_ms=50.0),
                   x, RATE, 0.0, (0,))
  t = np.arange(len(x)) / RATE
  loud = np.sin(2 * np.pi * 1.3 * t) > 0
  ratio = lambda s: np.sqrt(np.mean(s[loud] ** 2) / np.mean(s[~loud] ** 2))
  assert ratio(y) < 0.9 * ratio(x)  # less contrast between loud and quiet halves
