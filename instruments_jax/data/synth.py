"""The embedded dataset: music rendered from the General MIDI soundfont pretty_midi ships.

Each clip is a pure function of (seed, split, index): its class, GM program or
drum kit, style, key, tempo, notes, duration, sample rate, channel count and
gain come from one `numpy.random.Generator` seeded with those three numbers.
Nothing is stored: `render(spec, start, duration)` synthesizes any window of a
clip on demand (about 200x real time per core), so training on a 2 s chunk of
a 2-minute clip costs 2 s of synthesis, not 2 minutes.

    python -m instruments_jax.data.synth --out=DIR [--split=train|test|unseen|all] [--seed=N]

writes a split to disk in the Kaggle layout of the recipe's dataset.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os

import numpy as np

# Split sizes and class counts of the recipe's Kaggle data (Metadata_Train.csv has
# 2629 clips, one class short of 700; Metadata_Test.csv has 20 per class).
SPLITS = {
    "train": {"guitar": 700, "drum": 700, "violin": 700, "piano": 529},
    "test": {"guitar": 20, "drum": 20, "violin": 20, "piano": 20},
    # Programs and kits that never appear in train/test: a stand-in for
    # instruments and studios the model has not heard.
    "unseen": {"guitar": 20, "drum": 20, "violin": 20, "piano": 20},
}
_SPLIT_IDS = {"train": 1, "test": 2, "unseen": 3}

# GM programs (bank 0) and drum kits (bank 128) present in TimGM6mb.sf2.
PROGRAMS = {
    "seen": {
        "piano": (0, 2, 4, 6),  # acoustic grand, electric grand, e.piano 1, harpsichord
        "guitar": (24, 25, 27, 29),  # nylon, steel, clean electric, overdrive
        "violin": (40, 110),  # violin, fiddle
        "drum": (0, 16, 25, 40),  # standard, power, TR-808, brush kits
    },
    "unseen": {
        "piano": (1, 3, 5),  # bright piano, honky-tonk, e.piano 2
        "guitar": (26, 28, 30),  # jazz, muted, distortion
        "violin": (44, 45),  # tremolo strings, pizzicato
        "drum": (8, 24, 32, 48),  # room, electronic, jazz, orchestra kits
    },
}
STYLES = {
    "piano": ("melody_chords", "arpeggio", "block_chords", "alberti"),
    "guitar": ("strum", "fingerpick", "melody", "power_chords"),
    "violin": ("legato", "scales", "double_stops", "long_tones"),
    "drum": ("rock", "funk", "shuffle", "halftime", "latin"),
}
# Pitch ranges (MIDI) of the melodic parts.
RANGES = {"piano": (36, 88), "guitar": (40, 81), "violin": (55, 98)}

RENDER_RATE = 48000  # what midirenderer produces
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_STRUM_RHYTHMS = ((0, 2), (0, 1, 2, 3), (0, 1.5, 2, 3), (0, 0.5, 1.5, 2.5, 3))
_PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 4), (5, 3, 0, 4), (0, 5, 3, 4), (1, 4, 0, 0), (0, 0, 3, 4))


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """Everything that defines one clip; `notes` rows are (pitch, velocity, start_s, end_s)."""

  seed: int
  split: str
  index: int
  label: str
  program: int
  is_drum: bool
  style: str
  tempo: float
  duration: float
  sample_rate: int
  channels: int
  gain: float
  notes: np.ndarray
  bends: np.ndarray  # rows (time_s, value in -8192..8191)


def split_labels(seed: int, split: str) -> list[str]:
  """Returns the class of every index of a split, classes interleaved by a seeded shuffle."""
  labels = [c for c, n in SPLITS[split].items() for _ in range(n)]
  order = np.random.default_rng([seed, _SPLIT_IDS[split], 0]).permutation(len(labels))
  return [labels[i] for i in order]


@functools.lru_cache(maxsize=8)
def _labels_cached(seed, split):
  return tuple(split_labels(seed, split))


def clip_spec(seed: int, split: str, index: int) -> ClipSpec:
  """Returns the deterministic description of clip `index` of `split`."""
  labels = _labels_cached(seed, split)
  if not 0 <= index < len(labels):
    raise IndexError(f"synth {split} split has {len(labels)} clips, asked for index {index}")
  label = labels[index]
  rng = np.random.default_rng([seed, _SPLIT_IDS[split], 1, index])
  pool = PROGRAMS["unseen" if split == "unseen" else "seen"][label]
  program = int(rng.choice(pool))
  style = str(rng.choice(STYLES[label]))
  # Durations like the recipe's data: median 14 s, a few near 2 minutes.
  duration = float(np.clip(np.exp(rng.normal(np.log(14.0), 0.7)), 1.0, 128.0))
  duration = round(duration, 2)
  tempo = float(rng.uniform(60, 170))
  sample_rate = int(rng.choice([44100, 48000, 22050], p=[0.8, 0.12, 0.08]))
  channels = int(rng.choice([1, 2], p=[0.75, 0.25]))
  gain = float(10 ** (rng.uniform(-9, 6) / 20) * 2.5)
  if label == "drum":
    notes, bends = _drum_part(rng, style, tempo, duration)
  else:
    notes, bends = _melodic_part(rng, label, style, program, tempo, duration)
  return ClipSpec(seed, split, index, label, program, label == "drum", style, tempo, duration,
                  sample_rate, channels, gain, notes, bends)


def _melodic_part(rng, label, style, program, tempo, duration):
  beat = 60.0 / tempo
  lo, hi = RANGES[label]
  root = int(rng.integers(0, 12))
  scale = _MAJOR if rng.random() < 0.6 else _MINOR
  prog = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
  center = int(rng.integers(lo + 10, hi - 10))
  base_vel = int(rng.integers(45, 115))
  swing = rng.uniform(0, 0.02)
  notes, bends = [], []

  def pitch_of(degree, octave_center):
    octave, step = divmod(degree, 7)
    p = root + scale[step] + 12 * octave
    while p < octave_center - 6:
      p += 12
    while p > octave_center + 6:
      p -= 12
    return int(np.clip(p, lo, hi))

  def add(p, start, length, vel_jitter=12):
    v = int(np.clip(base_vel + rng.normal(0, vel_jitter), 20, 127))
    s = start + rng.normal(0, swing)
    if s < duration:
      notes.append((p, v, max(s, 0.0), min(s + length, duration)))

  lead_in = float(rng.uniform(0, 0.4))
  t, bar = lead_in, 0
  degree = int(rng.integers(0, 7))
  while t < duration:
    chord_root = prog[bar % len(prog)]
    chord = [chord_root, chord_root + 2, chord_root + 4]
    if style in ("melody_chords", "melody", "legato", "long_tones", "scales"):
      # Melodic line by steps and small leaps over four beats.
      sub = {"scales": 0.25, "legato": 0.5, "long_tones": 2.0}.get(style, float(rng.choice([0.5, 1.0])))
      k = 0.0
      while k < 4.0:
        length = sub if style == "scales" else float(rng.choice([sub, sub, 2 * sub]))
        degree += int(rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3])) if style != "scales" else 1
        degree = int(np.clip(degree, -7, 14))
        legato = 1.05 if label == "violin" else 0.9
        add(pitch_of(degree, center), t + k * beat, length * beat * legato)
        k += length
      if style == "melody_chords":
        for d in chord:
          add(pitch_of(d, center - 14), t, 4 * beat * 0.95, 8)
    elif style in ("arpeggio", "fingerpick", "alberti"):
      pattern = {"alberti": (0, 2, 1, 2), "fingerpick": (0, 2, 1, 2, 0, 1, 2, 1)}.get(style, (0, 1, 2, 1, 0, 1, 2, 3))
      step = 4.0 / len(pattern)
      for j, idx in enumerate(pattern):
        d = chord[idx % 3] + 7 * (idx // 3)
        add(pitch_of(d, center - 5 + 3 * (idx % 3)), t + j * step * beat, step * beat * 1.6)
    elif style in ("strum", "block_chords", "power_chords", "double_stops"):
      voicing = {"power_chords": (0, 4, 7), "double_stops": (0, 2)}.get(style, (0, 2, 4, 7, 9))
      hits = _STRUM_RHYTHMS[rng.integers(len(_STRUM_RHYTHMS))]
      for h in hits:
        down = rng.random() < 0.6
        order = voicing if down else voicing[::-1]
        spread = 0.012 if style == "strum" else 0.002
        for j, d in enumerate(order):
          add(pitch_of(chord_root + d, center - 4 + 2 * j), t + h * beat + j * spread, beat * 0.9, 10)
    if label == "violin" and style in ("legato", "long_tones") and rng.random() < 0.8:
      # Vibrato: a 5-6 Hz pitch-bend wobble over the bar.
      rate, depth = rng.uniform(4.5, 6.5), rng.uniform(150, 500)
      for tb in np.arange(t, min(t + 4 * beat, duration), 0.04):
        bends.append((float(tb), int(depth * np.sin(2 * np.pi * rate * (tb - t)))))
    t += 4 * beat
    bar += 1
  return _pack(notes), np.asarray(bends, np.float64).reshape(-1, 2)


_DRUM_PATTERNS = {  # 16 steps per bar: (kick, snare, hat) probabilities
    "rock": ("x...x...x...x...", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "funk": ("x..x..x...x..x..", "....x..x.x..x...", "xxxxxxxxxxxxxxxx"),
    "shuffle": ("x.....x.x.....x.", "....x.......x...", "x..xx..xx..xx..x"),
    "halftime": ("x.......x.x.....", "........x.......", "x.x.x.x.x.x.x.x."),
    "latin": ("x..x..x.x..x..x.", "..x..x....x..x..", "x.xxx.xxx.xxx.xx"),
}


def _drum_part(rng, style, tempo, duration):
  kick, snare, hat = _DRUM_PATTERNS[style]
  kick_note = int(rng.choice([35, 36]))
  snare_note = int(rng.choice([38, 40, 37, 39]))
  hat_note = int(rng.choice([42, 42, 44, 51, 46]))
  step = 60.0 / tempo / 4
  base_vel = int(rng.integers(50, 120))
  notes = []
  t, bar = float(rng.uniform(0, 0.3)), 0
  while t < duration:
    fill = bar % 4 == 3 and rng.random() < 0.5
    for j in range(16):
      s = t + j * step + rng.normal(0, 0.006)
      if s >= duration:
        break
      hits = []
      if fill and j >= 8:
        if rng.random() < 0.7:
          hits.append(int(rng.choice([41, 43, 45, 47, 48, 50, 38])))
      else:
        if kick[j] == "x":
          hits.append(kick_note)
        if snare[j] == "x":
          hits.append(snare_note)
        if hat[j] == "x" and rng.random() < 0.9:
          hits.append(hat_note)
      if j == 0 and bar % 8 == 0:
        hits.append(int(rng.choice([49, 57, 55])))
      for p in hits:
        v = int(np.clip(base_vel + rng.normal(0, 14) - (12 if p == hat_note and j % 2 else 0), 15, 127))
        notes.append((p, v, max(s, 0.0), min(s + 0.12, duration)))
    t += 16 * step
    bar += 1
  return _pack(notes), np.zeros((0, 2))


def _pack(notes):
  return np.asarray(notes, np.float64).reshape(-1, 4)


@functools.lru_cache(maxsize=1)
def _soundfont() -> bytes:
  import pretty_midi

  with open(os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2"), "rb") as f:
    return f.read()


def render(spec: ClipSpec, start: float = 0.0, duration: float | None = None) -> np.ndarray:
  """Synthesizes [start, start + duration) of a clip: float32 [frames, channels] at spec.sample_rate.

  Notes already sounding at `start` are re-struck up to 1 s earlier and that
  pre-roll is cut, so a window sounds like the same stretch of the whole clip.
  """
  import midirenderer
  import pretty_midi
  import soundfile as sf
  import soxr

  if duration is None:
    duration = spec.duration - start
  end = start + duration
  preroll = min(start, 1.0)
  t0 = start - preroll
  n_out = int(round(duration * spec.sample_rate))
  n_render = int(round((preroll + duration) * RENDER_RATE))
  notes = spec.notes
  keep = (notes[:, 2] < end) & (notes[:, 3] > t0) if len(notes) else np.zeros(0, bool)
  audio = np.zeros((n_render, 2), np.float32)
  if keep.any():
    inst = pretty_midi.Instrument(program=spec.program, is_drum=spec.is_drum)
    for p, v, s, e in notes[keep]:
      inst.notes.append(pretty_midi.Note(int(v), int(p), max(s - t0, 0.0), min(e, end + 0.05) - t0))
    if len(spec.bends):
      before = spec.bends[spec.bends[:, 0] < t0]
      if len(before):
        inst.pitch_bends.append(pretty_midi.PitchBend(int(before[-1, 1]), 0.0))
      for tb, val in spec.bends[(spec.bends[:, 0] >= t0) & (spec.bends[:, 0] < end)]:
        inst.pitch_bends.append(pretty_midi.PitchBend(int(val), float(tb - t0)))
    pm = pretty_midi.PrettyMIDI(initial_tempo=spec.tempo)
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    wav, _ = sf.read(io.BytesIO(midirenderer.render_wave_from(_soundfont(), buf.getvalue())),
                     dtype="float32", always_2d=True)
    wav = wav[: n_render]
    audio[: len(wav)] = wav
  audio = audio[int(round(preroll * RENDER_RATE)):]
  if spec.channels == 1:
    audio = audio.mean(axis=1, keepdims=True)
  if spec.sample_rate != RENDER_RATE:
    audio = soxr.resample(audio, RENDER_RATE, spec.sample_rate, quality="HQ")
  out = np.zeros((n_out, spec.channels), np.float32)
  out[: min(n_out, len(audio))] = audio[:n_out]
  return np.clip(out * spec.gain, -1.0, 1.0)


# --- writing a split to disk in the Kaggle layout ---------------------------------

KAGGLE_LABELS = {"guitar": "Sound_Guitar", "drum": "Sound_Drum", "violin": "Sound_Violin", "piano": "Sound_Piano"}
# Metadata_Test.csv of the real dataset misspells guitar; ours does too, so that
# loaders are tested against the file users actually have.
KAGGLE_TEST_LABELS = dict(KAGGLE_LABELS, guitar="Sound_Guiatr")
KAGGLE_DIRS = {"train": ("Metadata_Train.csv", "Train_submission/Train_submission"),
               "test": ("Metadata_Test.csv", "Test_submission/Test_submission"),
               "unseen": ("Metadata_Unseen.csv", "Unseen_submission/Unseen_submission")}


def file_name(split: str, index: int) -> str:
  return f"synth_{split}_{index:04d}.wav"


def _write_one(args):
  import soundfile as sf

  seed, split, index, audio_dir = args
  spec = clip_spec(seed, split, index)
  sf.write(os.path.join(audio_dir, file_name(split, index)), render(spec), spec.sample_rate, subtype="PCM_16")
  return spec.label


def write_split(out: str, split: str, seed: int = 0, limit: int | None = None, workers: int | None = None) -> str:
  """Renders a split to `out` in the Kaggle layout; returns the CSV path."""
  import csv
  import multiprocessing

  csv_name, sub = KAGGLE_DIRS[split]
  audio_dir = os.path.join(out, sub)
  os.makedirs(audio_dir, exist_ok=True)
  n = len(_labels_cached(seed, split)) if limit is None else min(limit, len(_labels_cached(seed, split)))
  jobs = [(seed, split, i, audio_dir) for i in range(n)]
  workers = workers or os.cpu_count() or 1
  if workers > 1 and n > 1:
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
      labels = list(_progress(pool.imap(_write_one, jobs, chunksize=4), n, split))
  else:
    labels = list(_progress(map(_write_one, jobs), n, split))
  names = KAGGLE_TEST_LABELS if split == "test" else KAGGLE_LABELS
  csv_path = os.path.join(out, csv_name)
  tmp = csv_path + ".tmp"
  with open(tmp, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["FileName", "Class"])
    for i, label in enumerate(labels):
      w.writerow([file_name(split, i), names[label]])
  os.replace(tmp, csv_path)
  return csv_path


def _progress(it, n, what):
  import sys
  import time

  t0 = time.time()
  for i, x in enumerate(it, 1):
    if i % 100 == 0 or i == n:
      rate = i / max(time.time() - t0, 1e-9)
      print(f"\rrendering {what}: {i}/{n} clips, {rate:.1f} clips/s, ETA {(n - i) / rate:.0f}s",
            end="\n" if i == n else "", file=sys.stderr, flush=True)
    yield x


def main(argv=None):
  import argparse

  p = argparse.ArgumentParser(prog="python -m instruments_jax.data.synth", description=__doc__.split("\n")[0])
  p.add_argument("--out", required=True, help="directory to write the Kaggle layout into")
  p.add_argument("--split", default="all", choices=["train", "test", "unseen", "all"])
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--limit", type=int, default=None, help="write only the first N clips of each split")
  p.add_argument("--workers", type=int, default=None)
  a = p.parse_args(argv)
  splits = ["train", "test", "unseen"] if a.split == "all" else [a.split]
  for s in splits:
    path = write_split(a.out, s, a.seed, a.limit, a.workers)
    print(f"wrote {path}")


if __name__ == "__main__":
  main()
