"""The third sample library (data/freepats.py): GUS patches made into SoundFonts, and the `freepats` engine."""

import io
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest

from instruments_jax.configs import get_config
from instruments_jax.data import engines, freepats, sources, synth

FREEPATS = synth.Mix(("freepats",), 0.0)


def _patch(waves) -> bytes:
  """A GUS patch of `waves`: (pcm int16, low Hz, high Hz, root Hz, modes, loop) each; 8-bit when modes lacks bit 0."""
  body = b""
  for pcm, low, high, root, modes, loop in waves:
    raw = pcm.astype("<i2").tobytes() if modes & 1 else ((pcm.astype(np.int32) >> 8) + 128).astype("u1").tobytes()
    width = 2 if modes & 1 else 1
    body += struct.pack("<7sBIIIHIIIhB6s6sBBBBBBBHH", b"w", 0, len(raw), loop[0] * width, loop[1] * width, 44100,
                        int(low * 1000), int(high * 1000), int(root * 1000), 0, 7, bytes(6), bytes(6),
                        0, 0, 0, 0, 0, 0, modes, 60, 1024) + bytes(36) + raw
  layer = struct.pack("<BBIB", 0, 0, len(body), len(waves)) + bytes(40)
  inst = struct.pack("<H16sIB", 0, b"test", len(layer) + len(body), 1) + bytes(40)
  head = b"GF1PATCH110\0ID#000002\0" + bytes(60) + struct.pack("<BBBHHI", 1, 14, 0, len(waves), 127, len(body))
  return head + bytes(36) + inst + layer + body


def _play(bank: bytes, program: int, pitches, drum=False, length=0.5) -> tuple[np.ndarray, int]:
  import midirenderer
  import pretty_midi
  import soundfile as sf

  inst = pretty_midi.Instrument(program=program, is_drum=drum)
  for k, p in enumerate(pitches):
    inst.notes.append(pretty_midi.Note(100, p, 0.6 * k, 0.6 * k + length))
  pm = pretty_midi.PrettyMIDI()
  pm.instruments.append(inst)
  buf = io.BytesIO()
  pm.write(buf)
  wav, sr = sf.read(io.BytesIO(midirenderer.render_wave_from(bank, buf.getvalue())), dtype="float32")
  return wav.mean(axis=1), sr


def _peak_hz(x, sr):
  spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
  return np.argmax(spec) * sr / len(x)


@pytest.fixture
def library(library_or_skip):
  """The FreePats folder, or a skip (a failure under CI)."""
  return library_or_skip(freepats, "the FreePats patches", "freepats")


def test_a_patch_becomes_a_soundfont_that_plays_each_sample_on_its_keys_at_pitch():
  t = np.arange(44100) / 44100
  # 16-bit, looped forward; recorded at 226 Hz, 47 cents above A3, so each key needs the pitch correction
  low = (np.sin(2 * np.pi * 226.0 * t) * 20000).astype(np.int16)
  high = (np.sin(2 * np.pi * 880.0 * t) * 20000).astype(np.int16)  # 8-bit, unsigned, looped back and forth
  patch = _patch([(low, 50.0, 400.0, 226.0, 1 | 4, (22050, 22050 + 1951)),
                  (high, 400.0, 4000.0, 880.0, 2 | 4 | 8, (11025, 11025 + 50 * 20))])
  got = freepats.samples(patch)
  # the back-and-forth loop is unrolled: the sample up to the loop's end, then the loop reversed
  assert [len(s["pcm"]) for s in got] == [44100, 12025 + 1000] and got[1]["loop"] == (11025, 13025)
  assert got[0]["loop"] == (22050, 24001) and np.array_equal(got[0]["pcm"], low)
  assert np.abs(got[1]["pcm"][:12025].astype(int) - high[:12025]).max() <= 256  # 8-bit unsigned, decoded
  assert np.array_equal(got[1]["pcm"][12025:], got[1]["pcm"][11025:12025][::-1])
  sf2 = freepats.convert({(0, 127): patch}, 0, 24, "test")
  x, sr = _play(sf2, 24, [57, 60, 81])  # A3 on the low sample, C4 shifted from it, A5 on the high one
  for k, want in enumerate([220.0, 261.63, 880.0]):
    hz = _peak_hz(x[int((0.6 * k + 0.1) * sr):int((0.6 * k + 0.45) * sr)], sr)
    assert abs(hz / want - 1) < 0.02, (k, hz, want)
  # a note held past the sample's end (1 s) keeps sounding on its loop
  held, sr = _play(sf2, 24, [57], length=2.0)
  assert np.abs(held[int(1.5 * sr):int(1.6 * sr)]).max() > 0.01


def test_a_file_that_is_no_patch_or_stops_short_is_a_value_error_naming_it():
  with pytest.raises(ValueError, match="x.pat: not a GUS patch"):
    freepats.samples(b"RIFF" + bytes(300), "x.pat")
  whole = _patch([(np.zeros(1000, np.int16), 50.0, 4000.0, 440.0, 1, (0, 0))])
  with pytest.raises(ValueError, match="y.pat: truncated"):
    freepats.samples(whole[:-10], "y.pat")


def test_without_the_patches_the_error_says_how_to_get_it(tmp_path, monkeypatch, stops_in_one_line, library_absent):
  library_absent(freepats)
  with pytest.raises(freepats.PatchesUnavailable) as e:
    freepats.path()
  for hint in ("--fetch", "apt-get install freepats", freepats.ENV, "leave the engine out"):
    assert hint in str(e.value)
  # a folder of other patches is named, not played
  wrong = tmp_path / "wrong"
  (wrong / "Tone_000").mkdir(parents=True)
  (wrong / "Drum_000").mkdir()
  (wrong / "Tone_000" / "000_Piano.pat").write_bytes(_patch([(np.zeros(100, np.int16), 50.0, 4000.0, 440.0, 1,
                                                              (0, 0))]))
  monkeypatch.setenv(freepats.ENV, str(wrong))
  freepats.check.cache_clear()
  try:
    with pytest.raises(freepats.PatchesUnavailable, match="holds other patches than the FreePats"):
      freepats.check()
    stops_in_one_line("freepats", "holds other patches")
  finally:
    freepats.check.cache_clear()


def test_freepats_takes_a_seeded_share_of_clips_and_leaves_every_clip_of_the_other_mixes_as_it_was():
  four = synth.Mix(synth.BENCHMARK.engines + ("fluid",), 0.75)
  five = synth.Mix(four.engines + ("freepats",), 0.75)
  got = []
  for i in range(400):
    old, new = synth.clip_header(0, "train", i, mix=four), synth.clip_header(0, "train", i, mix=five)
    got.append(new.engine)
    if new.engine == "freepats":
      assert new.program == synth.clip_header(0, "train", i).program
    else:
      assert (new.engine, new.program, new.chain) == (old.engine, old.program, old.chain)
  assert 0.12 < got.count("freepats") / len(got) < 0.3


def test_freepats_plays_every_family_from_its_own_samples_deterministically(library):
  specs = [synth.clip_spec(0, "train", i, synth.FAMILIES, mix=FREEPATS) for i in range(80)]
  for family in synth.FAMILIES:
    spec = next(s for s in specs if s.label == family and s.duration > 5)
    assert spec.engine == "freepats" and engines.voice_name("freepats", family, spec.program).startswith("GM ")
    a, b = synth.render(spec, 2.0, 2.0), synth.render(spec, 2.0, 2.0)
    assert np.array_equal(a, b) and np.abs(a).max() > 1e-3, family
    tim = synth.render(synth.clip_spec(0, "train", spec.index, synth.FAMILIES), 2.0, 2.0)
    assert abs(np.corrcoef(tim[:, 0], a[:, 0])[0, 1]) < 0.5, family  # not TimGM6mb's samples


def test_every_program_of_the_set_plays_a_patch_of_its_own_family(library):
  files = freepats._files(library)
  for pool in synth.PROGRAMS.values():
    for family, programs in pool.items():
      for p in programs:
        have = freepats.program_of(128 if family == "drum" else 0, p)
        if family == "drum":
          assert have == 0
        else:
          assert (0, have) in files and (have == p or freepats.FALLBACK[p] == have), (family, p)
          assert have in _gm_family(family), (family, p, have)


def _gm_family(family):
  # GM's program blocks: pianos 0-7, organs 16-23, guitars 24-31, strings 40-47 (fiddle 110), brass 56-63,
  # pipes 72-79
  return {"piano": range(0, 8), "organ": range(16, 24), "guitar": range(24, 32), "violin": list(range(40, 48)) + [110],
          "cello": range(40, 48), "trumpet": range(56, 64), "flute": range(72, 80)}[family]


def test_holding_freepats_out_validates_on_library_clips_that_never_train(library):
  cfg = get_config("smoke").data
  cfg.validation_strategy, cfg.validation_engine, cfg.data_sample = "engine", "freepats", 1.0
  cfg.synth_engines = "soundfont,physical,spectral,fluid"
  ds, train, val = sources.train_validation(cfg)
  held_mix = synth.Mix(synth.BENCHMARK.engines + ("freepats",), synth.BENCHMARK.chain_prob)
  held = {i for i in range(len(ds)) if synth.clip_header(0, "train", i, mix=held_mix).engine == "freepats"}
  assert set(val.tolist()) < held and not held & set(train.tolist()) and len(train) + len(held) == len(ds)
  for i in val[:20]:
    got, want = ds.synth_header(int(i)), synth.clip_header(0, "train", int(i), mix=held_mix)
    assert (got.engine, got.program, got.chain) == ("freepats", want.program, want.chain)
  four = synth.Mix(synth.BENCHMARK.engines + ("fluid",), synth.BENCHMARK.chain_prob)
  for i in train[:100]:  # the rest train on the recipe's mix, the second library included
    assert ds.synth_header(int(i)).engine == synth.clip_header(0, "train", int(i), mix=four).engine


def test_make_train_fetches_the_libraries_its_config_names_and_says_how_when_it_cannot(tmp_path, monkeypatch, capsys,
                                                                                      library_absent):
  from instruments_jax.data import libraries, soundfonts

  assert libraries.needed("soundfont,fluid,physical,freepats") == ["fluid", "freepats"]
  assert libraries.needed("soundfont,physical,spectral") == [] and libraries.ensure("soundfont,physical") == {}
  # nowhere on the machine and no apt-get: one line naming the library and the ways to get it, no traceback
  library_absent(freepats)
  monkeypatch.setattr(soundfonts.shutil, "which", lambda name: None)
  with pytest.raises(freepats.PatchesUnavailable, match="fetching freepats needs apt-get"):
    libraries.ensure("soundfont,freepats")
  monkeypatch.setattr(libraries, "needed", lambda engines: ["freepats"])
  with pytest.raises(SystemExit, match=f"error: fetching freepats needs apt-get .* set {freepats.ENV}"):
    libraries.main(["--config=quick"])
  # found where it is: printed, nothing fetched
  monkeypatch.setenv(freepats.ENV, str(tmp_path / "here"))
  (tmp_path / "here" / "Tone_000").mkdir(parents=True)
  libraries.main(["--config=quick"])
  assert capsys.readouterr().out == f"freepats: {tmp_path / 'here'}\n"


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="builds a .deb with dpkg-deb (Debian, Ubuntu)")
def test_fetch_takes_the_patch_folder_not_the_docs_of_the_same_name_and_mends_a_fetch_that_took_the_docs(
    tmp_path, monkeypatch):
  from instruments_jax.data import soundfonts

  # a package laid out like Debian's freepats: usr/share/doc/freepats sorts before usr/share/midi/freepats
  tree = tmp_path / "pkg"
  (tree / "DEBIAN").mkdir(parents=True)
  (tree / "DEBIAN" / "control").write_text("Package: freepats\nVersion: 1\nArchitecture: all\n"
                                           "Maintainer: t <t@t>\nDescription: t\n")
  (tree / "usr/share/doc/freepats").mkdir(parents=True)
  (tree / "usr/share/doc/freepats/copyright").write_text("GPL")
  (tree / "usr/share/midi/freepats/Tone_000").mkdir(parents=True)
  (tree / "usr/share/midi/freepats/Tone_000/000_Acoustic_Grand_Piano.pat").write_bytes(b"GF1PATCH110")
  subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(tmp_path / "freepats_1_all.deb")],
                 check=True, capture_output=True)
  real_run, downloads = subprocess.run, []

  def fake_run(cmd, **kw):  # only `apt-get download` is faked: dpkg-deb unpacks the package above for real
    if cmd[:2] == ["apt-get", "download"]:
      downloads.append(cmd[2])
      shutil.copy(tmp_path / "freepats_1_all.deb", kw["cwd"])
      return subprocess.CompletedProcess(cmd, 0, "", "")
    return real_run(cmd, **kw)

  monkeypatch.setattr(soundfonts.subprocess, "run", fake_run)
  monkeypatch.setattr(soundfonts.shutil, "which", lambda name: f"/usr/bin/{name}")
  dest = tmp_path / "cache" / "freepats"
  dest.mkdir(parents=True)
  (dest / "copyright").write_text("GPL")  # what the first version of fetch left: the docs folder
  got = soundfonts.unpack_debian("freepats", "freepats", str(dest), freepats.PatchesUnavailable, holds="Tone_000")
  assert got == str(dest) and downloads == ["freepats"]
  assert sorted(os.listdir(dest)) == ["Tone_000"] and os.listdir(dest / "Tone_000") == ["000_Acoustic_Grand_Piano.pat"]
  # a good folder is kept: no second download
  assert soundfonts.unpack_debian("freepats", "freepats", str(dest), holds="Tone_000") == str(dest)
  assert downloads == ["freepats"]
  # a package with no such folder: the error says what it looked for
  with pytest.raises(freepats.PatchesUnavailable, match="holds no freepats with Drum_999 in it"):
    soundfonts.unpack_debian("freepats", "freepats", str(tmp_path / "other"), freepats.PatchesUnavailable,
                             holds="Drum_999")
