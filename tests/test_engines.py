"""Tests of the physical and spectral sound engines (instruments_jax/data/engines.py)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from instruments_jax.data import engines, synth

SR = engines.MODEL_RATE
COMBOS = [(e, f) for e in ("physical", "spectral") for f in engines.families_of(e)]
ALL_VOICES = [(e, f, v) for e, f in COMBOS
              for pool in ("seen", "unseen") for v in engines.VOICES[e][pool][f]]


@functools.lru_cache(maxsize=None)
def _clip(family):
  """The first train clip of `family` lasting 5 s or more, its notes and bends cut to [0, 5)."""
  for i in range(400):
    s = synth.clip_spec(0, "train", i, synth.FAMILIES)
    if s.label == family and s.duration >= 5.0:
      notes = s.notes[s.notes[:, 2] < 5.0].copy()
      notes[:, 3] = np.minimum(notes[:, 3], 5.0)
      return notes, s.bends[s.bends[:, 0] < 5.0]
  raise AssertionError(f"no 5 s {family} clip")


def _note(pitch, vel=90, dur=1.5):
  return np.array([[pitch, vel, 0.0, dur]], np.float64), np.zeros((0, 2))


def test_families_and_engines():
  assert engines._FAMILIES == synth.FAMILIES
  assert engines.ENGINES == ("soundfont", "physical", "spectral", "fluid", "freepats")
  assert engines.SAMPLED == ("soundfont", "fluid", "freepats") == synth._SAMPLED
  assert all(engines.families_of(e) == synth.FAMILIES for e in engines.SAMPLED)
  assert engines.families_of("spectral") == synth.FAMILIES
  assert set(engines.families_of("physical")) >= {"guitar", "drum", "violin", "piano", "cello"}


@pytest.mark.parametrize("engine,family", COMBOS)
def test_voice_pools_are_disjoint_and_cover(engine, family):
  seen = engines.VOICES[engine]["seen"][family]
  unseen = engines.VOICES[engine]["unseen"][family]
  assert len(seen) >= 3 and len(unseen) >= 1
  assert not set(seen) & set(unseen)
  assert all(isinstance(v, int) for v in seen + unseen)
  names = [engines.voice_name(engine, family, v) for v in seen + unseen]
  assert len(set(names)) == len(names)
  for pool in ("seen", "unseen"):
    assert set(engines.VOICES[engine][pool]) == set(engines.families_of(engine))


@pytest.mark.parametrize("engine,family,voice", ALL_VOICES)
def test_every_voice_renders_a_finite_bounded_clip(engine, family, voice):
  notes, bends = _clip(family)
  y = engines.render(engine, family, voice, notes, bends, 0.5, 2.5, (3, 1, 4))
  assert y.dtype == np.float32 and y.shape == (2 * SR,)
  assert np.isfinite(y).all()
  rms = float(np.sqrt(np.mean(y**2)))
  assert rms > 3e-3, f"{engine} {family} {voice} nearly silent: rms {rms}"
  assert np.abs(y).max() < 1.5


@pytest.mark.parametrize("engine,family", COMBOS)
def test_deterministic_and_keyed(engine, family):
  notes, bends = _clip(family)
  a = engines.render(engine, family, 0, notes, bends, 1.0, 2.0, (0, 1, 7))
  b = engines.render(engine, family, 0, notes, bends, 1.0, 2.0, (0, 1, 7))
  c = engines.render(engine, family, 0, notes, bends, 1.0, 2.0, (0, 1, 8))
  np.testing.assert_array_equal(a, b)
  assert np.abs(a - c).max() > 1e-3


@pytest.mark.parametrize("engine,family", COMBOS)
def test_a_window_equals_the_same_samples_of_the_whole_clip(engine, family):
  notes, bends = _clip(family)
  voice = engines.VOICES[engine]["seen"][family][1]
  whole = engines.render(engine, family, voice, notes, bends, 0.0, 5.0, (2, 3))
  for start, stop in ((1.37, 3.91), (0.0, 0.5), (4.2, 5.0)):
    part = engines.render(engine, family, voice, notes, bends, start, stop, (2, 3))
    a = int(round(start * SR))
    assert len(part) == int(round((stop - start) * SR))
    np.testing.assert_allclose(part, whole[a:a + len(part)], rtol=0, atol=1e-4)
    assert np.abs(part).max() > 1e-3  # the windows are not silent, so the comparison means something


@pytest.mark.parametrize("engine,family", COMBOS)
def test_a_window_ending_just_after_a_note_starts(engine, family):
  # A window (a training chunk, or a clip read up to data.max_clip_seconds) may end a few samples into a note:
  # the electric guitar's pickup comb once asked for more delay than the note had samples.
  notes = np.array([[64, 100, 1.0, 2.0]], np.float64)
  for voice in (*engines.VOICES[engine]["seen"][family], *engines.VOICES[engine]["unseen"][family]):
    whole = engines.render(engine, family, voice, notes, np.zeros((0, 2)), 0.0, 1.5, (4,))
    for samples in (1, 5, 12):
      stop = 1.0 + samples / SR
      part = engines.render(engine, family, voice, notes, np.zeros((0, 2)), 0.5, stop, (4,))
      assert len(part) == int(round((stop - 0.5) * SR))
      np.testing.assert_allclose(part, whole[int(0.5 * SR):int(0.5 * SR) + len(part)], rtol=0, atol=1e-4)


def test_only_overlapping_notes_count():
  notes = np.array([[60, 100, 0.0, 0.5], [64, 100, 10.0, 10.5]], np.float64)
  y = engines.render("spectral", "piano", 0, notes, np.zeros((0, 2)), 5.0, 6.0, (1,))
  assert not y.any()
  y = engines.render("spectral", "piano", 0, notes, np.zeros((0, 2)), 0.2, 0.4, (1,))
  assert y.any()


def _low_partial(y, f0):
  """The lowest spectral peak at least 10% of the strongest (60 Hz .. 8 kHz)."""
  seg = y[int(0.3 * SR):int(1.3 * SR)] * np.hanning(SR)
  mag = np.abs(np.fft.rfft(seg, 4 * SR))
  f = np.fft.rfftfreq(4 * SR, 1.0 / SR)
  band = (f > 60) & (f < 8000)
  mag = np.where(band, mag, 0.0)
  peaks = np.flatnonzero((mag[1:-1] > mag[:-2]) & (mag[1:-1] >= mag[2:]) & (mag[1:-1] > 0.1 * mag.max())) + 1
  return f[peaks[0]]


MELODIC = [(e, f, v) for e, f, v in ALL_VOICES if f != "drum"]


@pytest.mark.parametrize("engine,family,voice", MELODIC)
def test_lowest_strong_partial_is_the_note(engine, family, voice):
  lo, hi = synth.RANGES[family]
  pitch = (lo + hi) // 2
  notes, bends = _note(pitch)
  y = engines.render(engine, family, voice, notes, bends, 0.0, 1.5, (5,))
  f0 = engines._hz(pitch)
  got = _low_partial(y, f0)
  ok = [f0]
  if family == "organ" and engines._SPEC["organ"][voice]["bars"][0]:
    ok.append(f0 / 2)  # a 16' drawbar sounds an octave below
  assert min(abs(12 * np.log2(got / f)) for f in ok) < 1.0, f"{got:.1f} Hz, note {f0:.1f} Hz"


def test_bends_move_the_pitch():
  notes, _ = _note(69, dur=1.5)
  bends = np.array([[0.0, 8191.0]])
  y = engines.render("spectral", "flute", 0, notes, bends, 0.0, 1.5, (5,))
  got = _low_partial(y, 440.0)
  assert abs(12 * np.log2(got / 493.88)) < 0.3


@pytest.mark.parametrize("engine,family", COMBOS)
def test_velocity_changes_level(engine, family):
  pitch = 38 if family == "drum" else sum(synth.RANGES[family]) // 2
  soft = engines.render(engine, family, 0, _note(pitch, 40)[0], np.zeros((0, 2)), 0.0, 1.0, (9,))
  loud = engines.render(engine, family, 0, _note(pitch, 120)[0], np.zeros((0, 2)), 0.0, 1.0, (9,))
  assert np.sqrt(np.mean(loud**2)) > 2.0 * np.sqrt(np.mean(soft**2))


def test_notes_end_without_clicks():
  # After a note's release there is silence, reached smoothly.
  notes, _ = _note(60, 100, 0.5)
  for engine, family in COMBOS:
    if family == "drum":
      continue
    y = engines.render(engine, family, 0, notes, np.zeros((0, 2)), 0.0, 4.0, (1,))
    assert not y[int(3.6 * SR):].any(), (engine, family)
    assert np.abs(np.diff(y[int(0.5 * SR):])).max() < 0.2, (engine, family)


@pytest.mark.parametrize("args,word", [
    (("nosuch", "guitar", 0), "nosuch"),
    (("physical", "flute", 0), "flute"),
    (("spectral", "kazoo", 0), "kazoo"),
    (("spectral", "guitar", 99), "99"),
    (("physical", "drum", -1), "-1"),
    (("soundfont", "guitar", 0), "soundfont"),
])
def test_bad_engine_family_or_voice_raises(args, word):
  notes, bends = _note(60)
  with pytest.raises(ValueError, match=word):
    engines.render(*args, notes, bends, 0.0, 1.0, (0,))
  if args[0] != "soundfont":
    with pytest.raises(ValueError, match=word):
      engines.voice_name(*args)


def test_voice_names():
  assert engines.voice_name("physical", "guitar", 1) == "steel dreadnought"
  assert engines.voice_name("soundfont", "guitar", 25) == "GM program 25"


def test_between_moves_each_setting_and_keeps_the_rest():
  b = engines._between
  assert b(2.0, 8.0, 0.5) == pytest.approx(4.0) and b(2.0, 8.0, -0.5) == pytest.approx(1.0)  # geometric
  assert b(0.0, 0.6, -0.5) == 0.0 and b(0.0, 0.6, 0.5) == pytest.approx(0.3)  # linear, never below 0
  assert b(-1.0, 1.0, 0.75) == pytest.approx(0.5)
  np.testing.assert_allclose(b(((100, 2.0), (200, 4.0)), ((400, 8.0), (800, 16.0)), 0.5), ((200, 4.0), (400, 8.0)))
  assert b((1.0, 2.0), (1.0, 2.0, 3.0), 0.5) == (1.0, 2.0)  # other shapes: the first
  assert b("fm", "add", 0.9) == "fm" and b(True, False, 0.9) is True


@pytest.mark.parametrize("engine,family", COMBOS)
def test_a_blended_voice_is_keyed_windowed_and_within_its_spread(engine, family):
  notes, bends = _clip(family)
  voice = engines.VOICES[engine]["seen"][family][0]
  base = engines._VOICE_TABLES[engine][family][voice]
  differ = 0
  for k in range(6):
    key = (5, 0, k, 0)
    v, level = engines.blend_voice(engine, family, voice, 0.5, key)
    assert engines.blend_voice(engine, family, voice, 0.5, key) == (v, level)
    mate = next(m for m in engines._VOICE_TABLES[engine][family] if m["name"] == v["name"].split(" ~ ")[1])
    assert mate["pool"] == "seen" and level > 0
    for name, a in base.items():  # every positive number within [a (b/a)^-0.5, a (b/a)^1.5]
      if isinstance(a, float) and not isinstance(a, bool) and a > 0 and isinstance(mate.get(name), float) \
          and mate[name] > 0:
        lo, hi = sorted((a * (mate[name] / a) ** -0.5, a * (mate[name] / a) ** 1.5))
        assert lo * (1 - 1e-9) <= v[name] <= hi * (1 + 1e-9), (name, a, mate[name], v[name])
    whole = engines.render(engine, family, voice, notes, bends, 0.0, 3.0, key, spread=0.5)
    part = engines.render(engine, family, voice, notes, bends, 1.3, 2.9, key, spread=0.5)
    assert np.isfinite(whole).all() and np.abs(whole).max() < 1.5
    a = int(round(1.3 * SR))
    np.testing.assert_allclose(part, whole[a:a + len(part)], rtol=0, atol=1e-4)
    plain = engines.render(engine, family, voice, notes, bends, 0.0, 3.0, key)
    differ += np.abs(whole - plain).max() > 1e-3
  assert differ >= 3  # most clips sound unlike the listed voice
