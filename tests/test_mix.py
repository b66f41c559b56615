"""The embedded set's sound: engines and recording chains per clip (synth.Mix), and what reads them."""

from collections import Counter
import dataclasses

import numpy as np
import pytest

from instruments_jax import configs
from instruments_jax.configs import get_config
from instruments_jax.data import engines, sources, synth

ALL = synth.BENCHMARK


def test_the_soundfont_mix_is_the_set_as_it_was():
  a = synth.clip_spec(0, "train", 5)
  assert a.engine == "soundfont" and a.chain is None
  b = synth.clip_spec(0, "train", 5, mix=synth.Mix(("soundfont",), 0.0))
  assert (b.engine, b.chain, b.program) == (a.engine, a.chain, a.program) and np.array_equal(a.notes, b.notes)


def test_a_clip_keeps_its_notes_whatever_the_engines_and_draws_each_from_its_pool():
  seen = Counter()
  for i in range(120):
    plain = synth.clip_spec(0, "train", i)
    mixed = synth.clip_spec(0, "train", i, mix=ALL)
    assert np.array_equal(plain.notes, mixed.notes) and (plain.label, plain.duration) == (mixed.label, mixed.duration)
    seen[mixed.engine] += 1
    if mixed.engine == "soundfont":
      assert mixed.program == plain.program
    else:
      assert mixed.program in engines.VOICES[mixed.engine]["seen"][mixed.label]
  assert set(seen) == {"soundfont", "physical", "spectral"} and min(seen.values()) > 20
  for i in range(80):
    u = synth.clip_spec(0, "unseen", i, mix=ALL)
    if u.engine != "soundfont":
      assert u.program in engines.VOICES[u.engine]["unseen"][u.label]
      assert u.program not in engines.VOICES[u.engine]["seen"][u.label]


def test_the_chain_share_picks_clips_but_not_their_chains():
  half = [synth.clip_spec(0, "train", i, mix=synth.Mix(ALL.engines, 0.5)).chain for i in range(200)]
  full = [synth.clip_spec(0, "train", i, mix=synth.Mix(ALL.engines, 1.0)).chain for i in range(200)]
  none = [synth.clip_spec(0, "train", i, mix=synth.Mix(ALL.engines, 0.0)).chain for i in range(200)]
  assert all(c is None for c in none) and all(c is not None for c in full)
  assert 70 < sum(c is not None for c in half) < 130
  assert all(h == f for h, f in zip(half, full) if h is not None)


def test_a_mixed_clip_renders_deterministically_and_its_windows_match_the_whole():
  specs = [synth.clip_spec(0, "train", i, mix=synth.Mix(ALL.engines, 1.0)) for i in range(40)]
  for engine in ALL.engines:
    spec = next(s for s in specs if s.engine == engine and s.duration > 6)
    a, b = synth.render(spec, 2.0, 2.0), synth.render(spec, 2.0, 2.0)
    assert np.array_equal(a, b) and a.shape == (2 * spec.sample_rate, spec.channels) and np.abs(a).max() > 1e-3
    whole = synth.render(spec, 0.0, 4.0)[2 * spec.sample_rate:, 0]
    if engine == "soundfont":  # re-struck notes start in another phase: compare the spectra
      bands = lambda x: np.log([b.mean() + 1e-9 for b in np.array_split(np.abs(np.fft.rfft(x)), 64)])
      assert np.corrcoef(bands(whole), bands(a[:, 0]))[0, 1] > 0.9, engine
    else:  # the models render every note from its onset: the same samples but for the chain's window-level settings
      assert np.corrcoef(whole, a[:, 0])[0, 1] > 0.7, engine


def test_a_bad_mix_is_a_value_error():
  with pytest.raises(ValueError, match="unknown sound engine 'fm'"):
    synth.check_mix(synth.Mix(("fm",), 0.0))
  with pytest.raises(ValueError, match="chain share"):
    synth.check_mix(synth.Mix(("soundfont",), 1.5))
  flute_less = tuple(e for e in engines.ENGINES if "flute" not in engines.families_of(e))
  if flute_less:
    with pytest.raises(ValueError, match="renders flute"):
      synth.check_mix(synth.Mix(flute_less, 0.0), ("guitar", "flute"))


def _data_cfg(**kw):
  cfg = get_config("smoke")
  for k, v in kw.items():
    setattr(cfg.data, k, v)
  return cfg.data


def test_test_and_unseen_are_the_benchmark_whatever_the_train_mix():
  d = _data_cfg(synth_engines="soundfont", synth_chain_prob=0.0)
  train = sources.open_split(d, "train")
  test = sources.open_split(d, "test")
  assert train.synth_mix == synth.SOUNDFONT and test.synth_mix == synth.BENCHMARK
  assert {train.synth_spec(i).engine for i in range(50)} == {"soundfont"}
  assert len({test.synth_spec(i).engine for i in range(len(test))}) == 3


def test_engine_validation_holds_a_whole_engine_out_and_validates_every_recipe_on_the_same_clips():
  d = _data_cfg(validation_strategy="engine", validation_engine="physical", data_sample=1.0)
  ds, train, val = sources.train_validation(d)
  bench = [synth.clip_spec(0, "train", i, mix=synth.BENCHMARK) for i in range(len(ds))]
  held = {i for i, s in enumerate(bench) if s.engine == "physical"}
  assert set(val.tolist()) < held and not held & set(train.tolist()) and len(train) + len(held) == len(ds)
  assert set(ds.labels[val]) == set(range(len(ds.classes)))
  assert {ds.synth_spec(int(i)).engine for i in train} == {"soundfont", "spectral"}
  for i in train[:100]:  # the rest keep their benchmark engine
    assert ds.synth_spec(int(i)).engine == bench[int(i)].engine
  dry = _data_cfg(validation_strategy="engine", validation_engine="physical", data_sample=1.0,
                  synth_engines="soundfont", synth_chain_prob=0.0)
  ds2, train2, val2 = sources.train_validation(dry)
  assert np.array_equal(val, val2) and np.array_equal(train, train2)
  for i in val[:20]:  # the same clips, chains included, whatever the recipe's mix
    assert ds2.synth_spec(int(i)).chain == ds.synth_spec(int(i)).chain == bench[int(i)].chain
  assert {ds2.synth_spec(int(i)).engine for i in train2} == {"soundfont"}
  assert all(ds2.synth_spec(int(i)).chain is None for i in train2[:100])


def test_engine_validation_on_every_fold_validates_every_held_out_clip():
  one = _data_cfg(validation_strategy="engine", validation_engine="physical", data_sample=1.0)
  every = _data_cfg(validation_strategy="engine", validation_engine="physical", data_sample=1.0, validation_fold=-1)
  _, train, val = sources.train_validation(one)
  ds, train_all, val_all = sources.train_validation(every)
  assert np.array_equal(train, train_all)  # the same clips train either way
  assert set(val.tolist()) < set(val_all.tolist()) and len(val_all) > 4 * len(val)
  assert set(val_all.tolist()) | set(train.tolist()) == set(range(len(ds)))  # every held-out clip validates
  with pytest.raises(configs.ConfigError, match=r"validation_fold=-1: -1 .* validation_strategy=engine"):
    cfg = get_config("quick")
    cfg.data.validation_fold = -1
    configs.validate(cfg)


def test_a_clip_keeps_its_engine_in_a_smaller_mix_that_allows_it():
  for i in range(100):
    full = synth.clip_spec(0, "train", i, mix=synth.BENCHMARK)
    for engines_ in (("soundfont", "spectral"), ("physical", "spectral"), ("soundfont", "physical")):
      small = synth.clip_spec(0, "train", i, mix=synth.Mix(engines_, 0.75))
      assert small.engine in engines_
      if full.engine in engines_:
        assert (small.engine, small.program, small.chain) == (full.engine, full.program, full.chain)


def test_the_config_check_knows_the_engines():
  from instruments_jax.configs import schema

  assert schema.ENGINES == engines.ENGINES
  assert schema.FIELDS["data.validation_engine"].rule.choices == engines.ENGINES


@pytest.mark.parametrize("fields, message", [
    ({"validation_strategy": "engine", "validation_engine": "soundfont", "synth_engines": "soundfont"},
     "leaves nothing to train on"),
    ({"synth_engines": "soundfont,fm"}, "unknown engine 'fm'"),
    ({"synth_chain_prob": 1.2}, "data.synth_chain_prob"),
    ({"synth_voice_spread": -0.1}, "data.synth_voice_spread"),
    ({"synth_distortion_prob": 1.5}, "data.synth_distortion_prob"),
    ({"synth_guitar_amp": -0.5}, "data.synth_guitar_amp"),
    ({"synth_formant_shift": 7}, "data.synth_formant_shift"),
])
def test_bad_mix_fields_are_config_errors(fields, message):
  cfg = get_config("smoke")
  for k, v in fields.items():
    setattr(cfg.data, k, v)
  with pytest.raises(configs.ConfigError, match=message):
    configs.validate(cfg, check_paths=False)


def test_frequency_normalization_ignores_a_fixed_eq_curve():
  import keras

  from instruments_jax import model

  cfg = get_config("smoke")
  cfg.audio.spectrogram_normalization = "frequency"
  keras.utils.set_random_seed(0)
  m = model.build_model(cfg, mixed_precision=False)
  x = np.random.default_rng(0).normal(-40, 12, (2, cfg.audio.mel_bins, 40, 1)).astype(np.float32)
  curve = np.linspace(-15, 10, cfg.audio.mel_bins, dtype=np.float32)[None, :, None, None]  # dB per bin: a mic
  a, b = np.asarray(m(x, training=False)), np.asarray(m(x + curve, training=False))
  np.testing.assert_allclose(a, b, atol=2e-4)
  cfg.audio.spectrogram_normalization = "none"
  plain = model.build_model(cfg, mixed_precision=False)
  assert not np.allclose(np.asarray(plain(x, training=False)), np.asarray(plain(x + curve, training=False)), atol=2e-4)


def test_validation_batches_render_once_and_replay(monkeypatch):
  from instruments_jax.data import pipeline

  cfg = get_config("smoke")
  ds = sources.open_split(cfg.data, "test")
  calls = []
  real = pipeline.eval_batches

  def counting(*a, **kw):
    calls.append(1)
    return real(*a, **kw)

  monkeypatch.setattr(pipeline, "eval_batches", counting)
  kept = pipeline.KeptBatches(ds, np.arange(6), cfg)
  first, second = list(kept), list(kept)
  assert len(calls) == 1 and len(first) == len(second) > 0
  assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(first, second))
  small = pipeline.KeptBatches(ds, np.arange(6), cfg, limit_bytes=1)
  list(small), list(small)
  assert len(calls) == 3  # too big to keep: rendered each time


def test_runs_from_before_engines_load_as_soundfont_only(tmp_path):
  import json

  from instruments_jax import rundir

  cfg = get_config("smoke").to_dict()
  for k in ("synth_engines", "synth_chain_prob", "synth_voice_spread", "synth_distortion_prob", "synth_guitar_amp",
            "synth_formant_shift"):
    del cfg["data"][k]
  (tmp_path / "config.json").write_text(json.dumps(cfg))
  loaded = rundir.load_config(str(tmp_path))
  assert loaded.data.synth_engines == "soundfont" and loaded.data.synth_chain_prob == 0.0
  assert loaded.data.synth_voice_spread == 0.0 and loaded.data.synth_guitar_amp == 0.0
  assert loaded.data.synth_formant_shift == 0
  assert loaded.data.synth_distortion_prob == synth.BENCHMARK.distortion_prob


def test_a_voice_spread_gives_model_engine_train_clips_voices_of_their_own():
  from instruments_jax.data import cache

  spread = synth.Mix(ALL.engines, 0.75, 0.5)
  with pytest.raises(ValueError, match="voice spread"):
    synth.check_mix(synth.Mix(ALL.engines, 0.75, 2.5))
  specs = [(synth.clip_spec(0, "train", i, mix=ALL), synth.clip_spec(0, "train", i, mix=spread)) for i in range(60)]
  for plain, s in specs:  # the same clip, engine, voice and chain: only the voice's settings move
    assert (s.engine, s.program, s.chain, s.label) == (plain.engine, plain.program, plain.chain, plain.label)
    assert s.spread == (0.5 if s.engine != "soundfont" else 0.0) and plain.spread == 0.0
  plain, s = next((p, s) for p, s in specs if s.engine != "soundfont" and s.duration > 3)
  a, b = synth.render(plain, 0.0, 2.0), synth.render(s, 0.0, 2.0)
  assert a.shape == b.shape and np.isfinite(b).all() and np.abs(b).max() > 1e-3
  np.testing.assert_array_equal(b, synth.render(s, 0.0, 2.0))
  # config -> the train split's mix; test stays the benchmark; the cache tells the two sets apart
  d = _data_cfg(synth_voice_spread=0.5)
  train, test = sources.open_split(d, "train"), sources.open_split(d, "test")
  assert train.synth_mix.voice_spread == 0.5 and test.synth_mix == synth.BENCHMARK
  c = cache.FeatureCache("/x", get_config("smoke").audio)
  assert c.path(train, 0) != c.path(sources.open_split(_data_cfg(), "train"), 0)


def test_a_distortion_share_distorts_that_share_of_chained_train_clips_and_moves_nothing_else():
  from instruments_jax.data import cache, chains

  assert synth.BENCHMARK.distortion_prob == chains.P_DISTORTION
  with pytest.raises(ValueError, match="distortion share"):
    synth.check_mix(synth.Mix(ALL.engines, 0.75, 0.0, 1.5))
  always, never = synth.Mix(ALL.engines, 0.75, 0.0, 1.0), synth.Mix(ALL.engines, 0.75, 0.0, 0.0)
  chained = 0
  for i in range(80):
    plain, a, n = (synth.clip_header(0, "train", i, mix=m) for m in (ALL, always, never))
    assert (a.engine, a.program) == (n.engine, n.program) == (plain.engine, plain.program)
    if plain.chain is None:
      assert a.chain is None and n.chain is None
      continue
    chained += 1
    assert a.chain.distortion != "none" and a.chain.drive_db > 0 and n.chain.distortion == "none"
    # every other stage is drawn the same
    for f in ("room", "curve", "noise", "codec", "level_db", "comp_ratio"):
      assert getattr(a.chain, f) == getattr(n.chain, f) == getattr(plain.chain, f)
  assert chained > 40
  d = _data_cfg(synth_distortion_prob=0.5)
  train, test = sources.open_split(d, "train"), sources.open_split(d, "test")
  assert train.synth_mix.distortion_prob == 0.5 and test.synth_mix == synth.BENCHMARK
  c = cache.FeatureCache("/x", get_config("smoke").audio)
  assert c.path(train, 0) != c.path(sources.open_split(_data_cfg(), "train"), 0)


def test_a_guitar_amp_share_overdrives_model_engine_guitars_only():
  from instruments_jax.data import cache

  with pytest.raises(ValueError, match="guitar amplifier share"):
    synth.check_mix(synth.Mix(ALL.engines, 0.75, 0.0, 0.1, -0.2))
  amped = synth.Mix(ALL.engines, 0.75, 0.0, 0.1, 1.0)
  specs = [(synth.clip_header(0, "train", i, mix=ALL), synth.clip_header(0, "train", i, mix=amped))
           for i in range(120)]
  for plain, s in specs:  # the same engine, voice and chain; an amplifier exactly on the model engines' guitars
    assert (s.engine, s.program, s.chain) == (plain.engine, plain.program, plain.chain) and plain.amp == ()
    assert bool(s.amp) == (s.label == "guitar" and s.engine in ("physical", "spectral"))
  half = [synth.clip_header(0, "train", i, mix=dataclasses.replace(amped, guitar_amp=0.5)) for i in range(120)]
  n_amped = sum(bool(s.amp) for s in half)
  assert 0 < n_amped < sum(bool(s.amp) for _, s in specs)
  assert all(h.amp in ((), s.amp) for h, (_, s) in zip(half, specs))  # a share of the same amplifiers
  i = next(i for i, (_, s) in enumerate(specs) if s.amp and s.duration > 3)
  plain, s = synth.clip_spec(0, "train", i, mix=ALL), synth.clip_spec(0, "train", i, mix=amped)
  dry = dataclasses.replace(plain, chain=None)
  a, b = synth.render(dry, 0.0, 3.0), synth.render(dataclasses.replace(s, chain=None), 0.0, 3.0)
  assert a.shape == b.shape and np.isfinite(b).all() and not np.allclose(a, b, atol=1e-3)
  np.testing.assert_array_equal(b, synth.render(dataclasses.replace(s, chain=None), 0.0, 3.0))
  # the cabinet: less of the top octaves than the dry string, relative to the whole
  fa, fb = (np.abs(np.fft.rfft(x.mean(axis=1))) ** 2 for x in (a, b))
  top = np.fft.rfftfreq(len(a), 1 / s.sample_rate) > 8000
  assert fb[top].sum() / fb.sum() < fa[top].sum() / fa.sum()
  d = _data_cfg(synth_guitar_amp=0.3)
  train, test = sources.open_split(d, "train"), sources.open_split(d, "test")
  assert train.synth_mix.guitar_amp == 0.3 and test.synth_mix == synth.BENCHMARK
  c = cache.FeatureCache("/x", get_config("smoke").audio)
  assert c.path(train, 0) != c.path(sources.open_split(_data_cfg(), "train"), 0)


def _f0(x, rate):
  """The strongest spectral peak of a mono float array, Hz (a long steady note's fundamental or partial)."""
  spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
  return np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spec))]


def test_a_formant_shift_moves_a_sample_librarys_resonances_and_keeps_its_notes():
  from instruments_jax.data import cache

  with pytest.raises(ValueError, match="formant shift"):
    synth.check_mix(dataclasses.replace(ALL, formant_shift=7))
  with pytest.raises(ValueError, match="formant shift"):
    synth.check_mix(dataclasses.replace(ALL, formant_shift=1.5))
  shifted = dataclasses.replace(ALL, formant_shift=3)
  specs = [(synth.clip_header(0, "train", i, mix=ALL), synth.clip_header(0, "train", i, mix=shifted))
           for i in range(150)]
  for plain, s in specs:  # the same engine, voice and chain; a shift on the sample library's clips only
    assert (s.engine, s.program, s.chain, s.amp) == (plain.engine, plain.program, plain.chain, plain.amp)
    assert plain.shift == 0 and -3 <= s.shift <= 3 and (s.engine == "soundfont" or s.shift == 0)
  assert {s.shift for _, s in specs if s.engine == "soundfont"} == set(range(-3, 4))
  # one long note: the same pitch whatever the shift, another timbre; any shift renders deterministically
  spec = next(p for p, _ in specs if p.label == "violin" and p.engine == "soundfont")
  note = dataclasses.replace(synth.clip_spec(0, "train", spec.index, mix=ALL), chain=None, duration=3.0, sample_rate=44100,
                             channels=1, notes=np.array([[69.0, 100, 0.0, 2.9]]), bends=np.zeros((0, 2)))
  a, b = (synth.render(dataclasses.replace(note, shift=k))[:, 0] for k in (0, 4))
  assert a.shape == b.shape == (3 * 44100,)
  f0a, f0b = _f0(a[22050:110250], 44100), _f0(b[22050:110250], 44100)
  assert abs(np.log2(f0b / f0a)) < 0.03, (f0a, f0b)  # well under a semitone (1/12 octave)
  pa, pb = (np.abs(np.fft.rfft(x[22050:110250])) for x in (a, b))
  assert np.corrcoef(np.log(pa + 1e-6), np.log(pb + 1e-6))[0, 1] < 0.99  # another spectrum
  np.testing.assert_array_equal(b, synth.render(dataclasses.replace(note, shift=4))[:, 0])
  # a kit keeps its notes (each is a drum) and is tuned instead; it still lasts the clip's length
  drum = next(synth.clip_spec(0, "train", p.index, mix=ALL) for p, _ in specs if p.label == "drum" and p.engine == "soundfont")
  d = synth.render(dataclasses.replace(drum, chain=None, shift=-3), 0.0, 2.0)
  assert d.shape == (int(round(2.0 * drum.sample_rate)), drum.channels) and np.abs(d).max() > 1e-3
  # config -> the train split's mix; test stays the benchmark; the cache tells the two sets apart
  dc = _data_cfg(synth_formant_shift=2)
  train, test = sources.open_split(dc, "train"), sources.open_split(dc, "test")
  assert train.synth_mix.formant_shift == 2 and test.synth_mix == synth.BENCHMARK
  c = cache.FeatureCache("/x", get_config("smoke").audio)
  assert c.path(train, 0) != c.path(sources.open_split(_data_cfg(), "train"), 0)
