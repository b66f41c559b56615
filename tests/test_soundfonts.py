"""The second sample library (data/soundfonts.py): SoundFonts cut to one preset, and the `fluid` engine."""

import io

import numpy as np
import pytest

from instruments_jax.data import engines, soundfonts, sources, synth
from instruments_jax.configs import get_config

FLUID = synth.Mix(("fluid",), 0.0)


def _render(bank: bytes, program: int, drum: bool = False) -> np.ndarray:
  import midirenderer
  import pretty_midi
  import soundfile as sf

  inst = pretty_midi.Instrument(program=program, is_drum=drum)
  for k, pitch in enumerate((36, 38, 42, 46) if drum else (40, 52, 64, 76)):
    inst.notes.append(pretty_midi.Note(100, pitch, 0.3 * k, 0.3 * k + 0.5))
  inst.pitch_bends.append(pretty_midi.PitchBend(1500, 0.7))
  pm = pretty_midi.PrettyMIDI()
  pm.instruments.append(inst)
  buf = io.BytesIO()
  pm.write(buf)
  wav, _ = sf.read(io.BytesIO(midirenderer.render_wave_from(bank, buf.getvalue())), dtype="float32")
  return wav


@pytest.fixture
def fluid(library_or_skip):
  """FluidR3_GM.sf2, or a skip (a failure under CI)."""
  return library_or_skip(soundfonts, "FluidR3_GM.sf2", "fluid-soundfont-gm")


def test_a_cut_soundfont_plays_its_presets_exactly_as_the_whole_bank():
  whole = synth._soundfont()  # TimGM6mb: any SoundFont 2 file serves
  keep = [(0, 24), (0, 40), (128, 25)]
  cut = soundfonts.subset(whole, keep)
  assert sorted((b, p) for b, p, _ in soundfonts.presets(cut)) == sorted(keep)
  assert len(cut) < len(whole) / 4
  for bank, program in keep:
    a, b = _render(whole, program, bank == 128), _render(cut, program, bank == 128)
    assert np.abs(a).max() > 1e-3 and np.array_equal(a, b), (bank, program)
  # a preset left out is not there: the renderer falls back to another sound
  assert not np.array_equal(_render(cut, 0), _render(whole, 0))


def test_cutting_a_preset_the_bank_lacks_or_a_file_that_is_no_soundfont_is_a_value_error():
  with pytest.raises(ValueError, match=r"no preset \(bank, program\) \[\(0, 200\)\]"):
    soundfonts.subset(synth._soundfont(), [(0, 24), (0, 200)])
  with pytest.raises(ValueError, match="not a SoundFont 2 file"):
    soundfonts.subset(b"RIFF\0\0\0\0WAVE", [(0, 0)])


def test_without_the_file_the_error_says_how_to_get_it(tmp_path, monkeypatch, stops_in_one_line, library_absent):
  library_absent(soundfonts)
  with pytest.raises(soundfonts.SoundfontUnavailable) as e:
    soundfonts.path()
  for hint in ("--fetch", "fluid-soundfont-gm", soundfonts.ENV, "synth_engines=soundfont,physical,spectral"):
    assert hint in str(e.value)
  # a file of the wrong contents is named, not played
  wrong = tmp_path / "FluidR3_GM.sf2"
  wrong.write_bytes(synth._soundfont())
  monkeypatch.setenv(soundfonts.ENV, str(wrong))
  soundfonts.check.cache_clear()
  try:
    with pytest.raises(soundfonts.SoundfontUnavailable, match="is not the FluidR3_GM.sf2"):
      soundfonts.check()
    # ... and a run whose train mix names fluid stops before any clip renders, in one line
    stops_in_one_line("fluid", "is not the FluidR3_GM.sf2")
  finally:
    soundfonts.check.cache_clear()


def test_fluid_takes_a_seeded_share_of_clips_and_leaves_every_other_clip_as_it_was():
  four = synth.Mix(synth.BENCHMARK.engines + ("fluid",), 0.75)
  got = []
  for i in range(400):
    old = synth.clip_header(0, "train", i, mix=synth.BENCHMARK)
    new = synth.clip_header(0, "train", i, mix=four)
    got.append(new.engine)
    if new.engine == "fluid":
      assert new.program == synth.clip_header(0, "train", i).program  # its spec's GM program
    else:
      assert (new.engine, new.program, new.chain) == (old.engine, old.program, old.chain)
    assert new.chain == old.chain
  assert 0.15 < got.count("fluid") / len(got) < 0.35
  # holding physical out moves only physical's clips, as without fluid
  three = synth.Mix(("soundfont", "spectral", "fluid"), 0.75)
  for i in range(100):
    full = synth.clip_header(0, "train", i, mix=four)
    if full.engine != "physical":
      assert synth.clip_header(0, "train", i, mix=three).engine == full.engine


def test_fluid_plays_every_family_from_its_own_samples_deterministically(fluid):
  specs = [synth.clip_spec(0, "train", i, synth.FAMILIES, mix=FLUID) for i in range(80)]
  for family in synth.FAMILIES:
    spec = next(s for s in specs if s.label == family and s.duration > 5)
    assert spec.engine == "fluid" and engines.voice_name("fluid", family, spec.program).startswith("GM ")
    a, b = synth.render(spec, 2.0, 2.0), synth.render(spec, 2.0, 2.0)
    assert np.array_equal(a, b) and np.abs(a).max() > 1e-3, family
    whole = synth.render(spec, 0.0, 4.0)[2 * spec.sample_rate:, 0]
    bands = lambda x: np.log([b.mean() + 1e-9 for b in np.array_split(np.abs(np.fft.rfft(x)), 64)])
    assert np.corrcoef(bands(whole), bands(a[:, 0]))[0, 1] > 0.9, family  # a window sounds like the whole
    tim = synth.render(synth.clip_spec(0, "train", spec.index, synth.FAMILIES), 2.0, 2.0)
    assert abs(np.corrcoef(tim[:, 0], a[:, 0])[0, 1]) < 0.5, family  # not TimGM6mb's samples


def test_every_program_of_the_set_is_a_preset_of_fluidr3(fluid):
  with open(fluid, "rb") as f:
    have = {(b, p) for b, p, _ in soundfonts.presets(f.read())}
  for pool in synth.PROGRAMS.values():
    for family, programs in pool.items():
      assert {(128 if family == "drum" else 0, p) for p in programs} <= have, family


def test_holding_fluid_out_validates_on_library_clips_that_never_train(fluid):
  cfg = get_config("smoke").data
  cfg.validation_strategy, cfg.validation_engine, cfg.data_sample = "engine", "fluid", 1.0
  ds, train, val = sources.train_validation(cfg)
  four = synth.Mix(synth.BENCHMARK.engines + ("fluid",), synth.BENCHMARK.chain_prob)
  held = {i for i in range(len(ds)) if synth.clip_header(0, "train", i, mix=four).engine == "fluid"}
  assert set(val.tolist()) < held and not held & set(train.tolist()) and len(train) + len(held) == len(ds)
  assert set(ds.labels[val]) == set(range(len(ds.classes)))
  for i in val[:30]:  # the library's clips, through the benchmark's chains
    got, want = ds.synth_header(int(i)), synth.clip_header(0, "train", int(i), mix=four)
    assert (got.engine, got.program, got.chain) == ("fluid", want.program, want.chain)
  for i in train[:100]:  # the rest train as the recipe's mix gives them: their benchmark engine
    assert ds.synth_header(int(i)).engine == synth.clip_header(0, "train", int(i), mix=synth.BENCHMARK).engine
