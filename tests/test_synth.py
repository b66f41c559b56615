import csv
import dataclasses
import hashlib
import io
import struct
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from instruments_jax.data import sources, synth

NEW_FAMILIES = ("flute", "trumpet", "cello", "organ")
# sha256 of the default label set's output for seed 0 (see _fingerprint), recorded before the
# families beyond the recipe's four were added: the four-class data must never change.
DEFAULT_FINGERPRINT = "d8d399eb7ad10f9b00d5dab7c8568734e4f500c42ecf4a6733c1f322e1770bdb"
# ... and with synth.BENCHMARK's engines, voices and recording chains (issue 15).
BENCHMARK_FINGERPRINT = "371b35cdc29f08855b245d76a4c61afee6960b89360027c35a8f2e62cdba3e6c"


def _fingerprint(seed=0, n_train=200, mix=None, **kw):
  """Hashes the labels of every split and the specs of the first n_train train clips and all test and unseen ones.

  With a `mix`, also each clip's engine, voice and recording chain (every split drawn from that mix).
  """
  h = hashlib.sha256()
  for split, n in (("train", n_train), ("test", None), ("unseen", None)):
    labels = synth.split_labels(seed, split, **kw)
    h.update(repr((split, labels)).encode())
    for i in range(len(labels) if n is None else n):
      s = synth.clip_spec(seed, split, i, **kw) if mix is None else synth.clip_spec(seed, split, i, mix=mix, **kw)
      # Floats rounded, so that a last-bit difference of a platform's libm does not count.
      h.update(repr((s.label, s.program, s.is_drum, s.style, round(s.tempo, 9), s.duration, s.sample_rate,
                     s.channels, round(s.gain, 9))).encode())
      h.update(np.round(s.notes, 9).tobytes())
      h.update(np.round(s.bends, 9).tobytes())
      if mix is not None:
        chain = None if s.chain is None else tuple(round(v, 9) if isinstance(v, float) else v
                                                   for v in dataclasses.astuple(s.chain))
        h.update(repr((s.engine, s.program, chain)).encode())
  return h.hexdigest()


def test_split_sizes_match_the_seed_dataset():
  train = Counter(synth.split_labels(0, "train"))
  assert sum(train.values()) == 2629
  assert sorted(train.values()) == [529, 700, 700, 700]
  assert Counter(synth.split_labels(0, "test")) == {"guitar": 20, "drum": 20, "violin": 20, "piano": 20}


def test_clip_is_a_pure_function_of_seed_split_and_index():
  a, b = synth.clip_spec(0, "train", 17), synth.clip_spec(0, "train", 17)
  assert np.array_equal(a.notes, b.notes) and a.duration == b.duration
  assert np.array_equal(synth.render(a, 1.0, 1.5), synth.render(b, 1.0, 1.5))
  assert not np.array_equal(synth.clip_spec(1, "train", 17).notes, a.notes)


@pytest.mark.parametrize("split", ["train", "test", "unseen"])
def test_a_clip_header_is_its_spec_without_the_notes(split):
  """Datasets list their clips from headers: every field but the notes must be the spec's, in every mix."""
  n = len(synth.split_labels(0, split))
  for i in list(range(40)) + list(range(n - 10, n)):
    for mix in (synth.SOUNDFONT, synth.BENCHMARK):
      spec, head = synth.clip_spec(0, split, i, mix=mix), synth.clip_header(0, split, i, mix=mix)
      assert head.notes is None and head.bends is None
      assert dataclasses.replace(spec, notes=None, bends=None) == head, (split, i, mix)
  listed = sources.synth_dataset(0, split).clips[n - 1]
  spec = synth.clip_spec(0, split, n - 1)
  assert (listed.duration, listed.sample_rate, listed.channels) == (spec.duration, spec.sample_rate, spec.channels)


def test_clips_vary_like_real_recordings():
  specs = [synth.clip_spec(0, "train", i) for i in range(400)]
  durations = np.array([s.duration for s in specs])
  assert 10 < np.median(durations) < 18
  assert durations.max() > 60
  assert {s.sample_rate for s in specs} == {22050, 44100, 48000}
  assert {s.channels for s in specs} == {1, 2}
  for label in ("piano", "guitar", "violin", "drum"):
    of_class = [s for s in specs if s.label == label]
    assert len({s.program for s in of_class}) >= 2, label
    assert len({s.style for s in of_class}) >= 3, label
  assert all(len(s.notes) > 0 for s in specs)


def test_window_render_matches_the_same_stretch_of_the_whole_clip():
  spec = synth.clip_spec(0, "train", 3)
  full = synth.render(spec)
  assert full.shape == (round(spec.duration * spec.sample_rate), spec.channels)
  sr = spec.sample_rate
  window = synth.render(spec, 3.0, 2.0)[:, 0]
  segment = full[3 * sr:5 * sr, 0]
  assert np.corrcoef(segment, window)[0, 1] > 0.8


def test_unseen_split_uses_programs_never_in_train():
  train = {(s.label, s.program) for s in (synth.clip_spec(0, "train", i) for i in range(300))}
  unseen = {(s.label, s.program) for s in (synth.clip_spec(0, "unseen", i) for i in range(80))}
  assert not train & unseen


@pytest.mark.slow
def test_cli_writes_test_split_in_kaggle_layout_with_the_typo(tmp_path):
  subprocess.run([sys.executable, "-m", "instruments_jax.data.synth", f"--out={tmp_path}", "--split=test"],
                 check=True, capture_output=True)
  rows = list(csv.DictReader(open(tmp_path / "Metadata_Test.csv")))
  assert len(rows) == 80 and set(rows[0]) == {"FileName", "Class"}
  assert Counter(r["Class"] for r in rows)["Sound_Guiatr"] == 20
  assert len(list((tmp_path / "Test_submission" / "Test_submission").glob("*.wav"))) == 80
  ds = sources.open_dataset(str(tmp_path), "test")
  assert Counter(ds.labels.tolist()) == {0: 20, 1: 20, 2: 20, 3: 20}


def test_default_classes_give_the_same_clips_as_before_families_were_added():
  assert synth.DEFAULT_CLASSES == synth.FAMILIES[:4] == ("guitar", "drum", "violin", "piano")
  assert _fingerprint() == DEFAULT_FINGERPRINT
  assert _fingerprint(classes=("piano", "violin", "drum", "guitar")) == DEFAULT_FINGERPRINT  # order does not matter


def test_the_benchmark_mix_is_pinned():
  """Test and unseen are always drawn from BENCHMARK: their engines, voices and chains must not drift."""
  assert _fingerprint(mix=synth.BENCHMARK) == BENCHMARK_FINGERPRINT


def test_eight_class_split_sizes():
  families = synth.FAMILIES
  assert families == ("guitar", "drum", "violin", "piano", "flute", "trumpet", "cello", "organ")
  train = Counter(synth.split_labels(0, "train", families))
  assert train == dict({c: 700 for c in families}, piano=529)
  for split in ("test", "unseen"):
    assert Counter(synth.split_labels(0, split, families)) == {c: 20 for c in families}
  assert synth.split_labels(0, "train", families[::-1]) == synth.split_labels(0, "train", families)
  sub = ("organ", "guitar")
  assert Counter(synth.split_labels(3, "test", sub)) == {"guitar": 20, "organ": 20}
  assert synth.clip_spec(3, "test", 39, sub).label in sub


@pytest.mark.parametrize("classes, message", [(("guitar", "banjo"), "'banjo'"), (("flute",), "at least 2"),
                                              (("drum", "drum"), "twice"), ("guitar,drum", "not the string")])
def test_a_bad_label_set_is_a_value_error(classes, message):
  with pytest.raises(ValueError, match=message) as e:
    synth.clip_spec(0, "train", 0, classes)
  if "banjo" in message:
    assert all(f in str(e.value) for f in synth.FAMILIES)
  with pytest.raises(ValueError, match=message):
    synth.split_labels(0, "train", classes)


def test_new_families_have_styles_ranges_and_separate_unseen_programs():
  for family in NEW_FAMILIES:
    assert len(synth.STYLES[family]) >= 2, family
    lo, hi = synth.RANGES[family]
    assert 0 < lo < hi - 20 < 127, family
    seen, unseen = synth.PROGRAMS["seen"][family], synth.PROGRAMS["unseen"][family]
    assert seen and unseen and not set(seen) & set(unseen), family
  specs = {split: [synth.clip_spec(0, split, i, synth.FAMILIES) for i in range(n)]
           for split, n in (("train", 400), ("test", 160), ("unseen", 160))}
  for family in NEW_FAMILIES:
    for split, pool in (("train", "seen"), ("test", "seen"), ("unseen", "unseen")):
      of_class = [s for s in specs[split] if s.label == family]
      assert of_class and {s.program for s in of_class} <= set(synth.PROGRAMS[pool][family]), (family, split)
      lo, hi = synth.RANGES[family]
      assert all(len(s.notes) and lo <= s.notes[:, 0].min() and s.notes[:, 0].max() <= hi for s in of_class)
    assert len({s.style for s in specs["train"] if s.label == family}) >= 3, family


def _presets(sf2: bytes) -> set[tuple[int, int]]:
  """Returns the (bank, program) of every preset a soundfont's preset headers (pdta/phdr) name."""
  def chunks(start, end):
    while start < end:
      size = struct.unpack("<I", sf2[start + 4:start + 8])[0]
      yield sf2[start:start + 4], start + 8, size
      start += 8 + size + (size & 1)

  for cid, off, size in chunks(12, len(sf2)):
    if cid == b"LIST" and sf2[off:off + 4] == b"pdta":
      phdr = next((o, n) for c, o, n in chunks(off + 4, off + size) if c == b"phdr")
      records = [struct.unpack("<20sHH", sf2[o:o + 24]) for o in range(phdr[0], phdr[0] + phdr[1] - 38, 38)]
      return {(bank, program) for _, program, bank in records}
  raise AssertionError("no preset headers")


def test_every_program_is_a_preset_of_the_soundfont_and_not_the_piano():
  import midirenderer
  import pretty_midi
  import soundfile as sf

  presets = _presets(synth._soundfont())
  for pool in synth.PROGRAMS.values():
    for family, programs in pool.items():
      assert {(128 if family == "drum" else 0, p) for p in programs} <= presets, family

  def spectrum(program, pitch):
    inst = pretty_midi.Instrument(program=program)
    inst.notes.append(pretty_midi.Note(100, pitch, 0.0, 0.5))
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    wav, _ = sf.read(io.BytesIO(midirenderer.render_wave_from(synth._soundfont(), buf.getvalue())), dtype="float32")
    return np.log(np.abs(np.fft.rfft(wav.mean(axis=1)[:16384] * np.hanning(16384))) + 1e-6)

  for family in NEW_FAMILIES:
    pitch = sum(synth.RANGES[family]) // 2
    piano = spectrum(0, pitch)
    for program in synth.PROGRAMS["seen"][family] + synth.PROGRAMS["unseen"][family]:
      assert np.abs(spectrum(program, pitch) - piano).mean() > 0.3, (family, program)


def test_a_clip_of_each_new_family_sounds():
  specs = [synth.clip_spec(0, "train", i, synth.FAMILIES) for i in range(60)]
  for family in NEW_FAMILIES:
    spec = next(s for s in specs if s.label == family)
    audio = synth.render(spec, 0.5, 1.5)
    assert audio.shape == (round(1.5 * spec.sample_rate), spec.channels)
    assert np.isfinite(audio).all() and np.sqrt(np.mean(audio ** 2)) > 1e-3, family


def test_folders_layout_puts_each_clip_in_its_class_folder(tmp_path):
  out = synth.write_split(str(tmp_path), "test", seed=0, limit=6, workers=1, classes=synth.FAMILIES,
                          layout="folders")
  assert out == str(tmp_path / "test")
  written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.wav"))
  expected = sorted(f"test/{synth.clip_spec(0, 'test', i, synth.FAMILIES).label}/{synth.file_name('test', i)}"
                    for i in range(6))
  assert written == expected
  assert not list(tmp_path.glob("*.csv"))


def test_multi_label_clips_name_two_classes_and_are_deterministic(tmp_path):
  first, second = synth.mix_spec(0, "unseen", 5, synth.FAMILIES)
  assert first.label != second.label and first.label == synth.clip_spec(0, "unseen", 5, synth.FAMILIES).label
  assert (second.duration, second.sample_rate, second.channels) == (first.duration, first.sample_rate, first.channels)
  assert 10 ** (-6 / 20) <= second.gain / first.gain <= 10 ** (6 / 20)
  assert second.program in synth.PROGRAMS["unseen"][second.label]
  paths = [synth.write_split(str(tmp_path / d), "test", seed=0, limit=3, workers=1, classes=synth.FAMILIES,
                             multi_label=True) for d in ("a", "b")]
  rows = list(csv.DictReader(open(paths[0])))
  assert len(rows) == 3
  for r in rows:
    names = r["Class"].split("|")
    assert len(names) == 2 and len(set(names)) == 2 and set(names) <= set(synth.FAMILIES), r
    assert r["Class"] == synth.mix_label(synth.mix_spec(0, "test", int(r["FileName"][-8:-4]), synth.FAMILIES))
  assert open(paths[0], "rb").read() == open(paths[1], "rb").read()
  for r in rows:
    a, b = (tmp_path / d / "Test_submission" / "Test_submission" / r["FileName"] for d in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()


def test_a_mix_holds_both_parts():
  parts = synth.mix_spec(0, "train", 2, synth.FAMILIES)  # parts quiet enough not to clip
  mix = synth.render_mix(parts, 1.0, 1.0)
  alone = [synth.render(p, 1.0, 1.0) for p in parts]
  assert mix.shape == alone[0].shape and np.abs(mix).max() < 1.0
  assert np.allclose(mix, alone[0] + alone[1], atol=1e-6)
  assert all(np.sqrt(np.mean(a ** 2)) > 1e-3 for a in alone)


def test_multi_label_needs_the_kaggle_layout(tmp_path):
  with pytest.raises(ValueError, match="kaggle"):
    synth.write_split(str(tmp_path), "test", limit=1, workers=1, layout="folders", multi_label=True)
  with pytest.raises(ValueError, match="layout"):
    synth.write_split(str(tmp_path), "test", limit=1, workers=1, layout="csv")
  assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, message", [(["--classes=guitar,banjo"], "banjo"), (["--classes=guitar"], "at least 2"),
                                           (["--layout=folders", "--multi_label"], "kaggle"),
                                           (["--engines=soundfont,fm"], "unknown sound engine 'fm'"),
                                           (["--chain_prob=2"], "chain share"),
                                           (["--engines=physical", "--classes=guitar,flute"], "renders flute")])
def test_cli_rejects_a_bad_label_set_in_one_line(tmp_path, args, message):
  r = subprocess.run([sys.executable, "-m", "instruments_jax.data.synth", f"--out={tmp_path}", "--split=test", *args],
                     capture_output=True, text=True)
  assert r.returncode == 2
  assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1 and message in r.stderr
  assert "Traceback" not in r.stderr and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_cli_writes_eight_classes_in_folders_and_multi_label(tmp_path):
  classes = "--classes=" + ",".join(synth.FAMILIES)
  cli = [sys.executable, "-m", "instruments_jax.data.synth", "--split=test", "--limit=8", "--workers=2", classes]
  subprocess.run([*cli, f"--out={tmp_path / 'f'}", "--layout=folders"], check=True, capture_output=True)
  labels = Counter(p.parent.name for p in (tmp_path / "f" / "test").rglob("*.wav"))
  assert labels == Counter(synth.split_labels(0, "test", synth.FAMILIES)[:8])
  subprocess.run([*cli, f"--out={tmp_path / 'k'}", "--multi_label"], check=True, capture_output=True)
  rows = list(csv.DictReader(open(tmp_path / "k" / "Metadata_Test.csv")))
  assert len(rows) == 8 and all(len(set(r["Class"].split("|"))) == 2 for r in rows)
  assert {r["Class"].split("|")[0] for r in rows} <= set(synth.FAMILIES)
