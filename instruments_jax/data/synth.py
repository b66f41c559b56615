"""The embedded dataset: music rendered by a General MIDI soundfont and two model engines, recorded through rooms.

Each clip is a pure function of (seed, split, index[, classes, mix]): its class, GM
program, style, key, tempo, notes, duration, sample rate, channel count and gain come
from one `numpy.random.Generator` seeded with those numbers; its sound engine and voice,
and its recording chain, from two more (so the notes stay the same whichever engines a
mix allows). Nothing is stored: `render(spec, start, duration)` synthesizes any window of
a clip on demand, so training on a 2 s chunk of a 2-minute clip costs 2 s of synthesis.

Sound engines (`Mix.engines`): "soundfont" (TimGM6mb.sf2 through midirenderer, the table
below), "physical" and "spectral" (engines.py: plucked, hammered and bowed string
models, modal drums; additive and FM voices), "fluid" and "freepats" (two more sample
libraries, FluidR3 GM and FreePats, playing the same GM programs: soundfonts.py, freepats.py;
train mixes and held-out validation only, as BENCHMARK predates them and stays as it was). A recording chain (chains.py: a room,
microphone and EQ curve, distortion, compression, noise floor, lossy codec, level)
records a share `Mix.chain_prob` of the clips (`Mix.distortion_prob` of those distort). Train mixes
may also give model-engine clips voices of their own (`Mix.voice_spread`), put a share of the
model engines' guitars through an overdriven amplifier (`Mix.guitar_amp`, `_amp`) and move the
sample libraries' resonances by a formant shift (`Mix.formant_shift`, `_dry`). The train split's mix is a choice of the
recipe (data.synth_engines, data.synth_chain_prob); test and unseen are always BENCHMARK
(every engine, 3 clips in 4 through a chain), so runs compare on the same clips. The
unseen split plays voices, programs, rooms and microphones used nowhere else. SOUNDFONT
gives the set as it was before engines and chains, clip for clip.

The generator renders the eight FAMILIES; a label set is any two or more of
them (`classes`), and DEFAULT_CLASSES gives the recipe's four, clip for clip as
before families were added. Multi-label clips (`mix_spec`, `render_mix`) mix
two families in one clip.

Programs (GM bank 0 of TimGM6mb.sf2; drum kits bank 128):

  family   seen (train, test)                              unseen
  guitar   24 nylon, 25 steel, 27 clean electric,          26 jazz, 28 muted, 30 distortion
           29 overdrive
  drum     kits 0 standard, 16 power, 25 TR-808, 40 brush  kits 8 room, 24 electronic, 32 jazz, 48 orchestra
  violin   40 violin, 110 fiddle                           44 tremolo strings, 45 pizzicato
  piano    0 grand, 2 electric grand, 4 e.piano 1,         1 bright, 3 honky-tonk, 5 e.piano 2
           6 harpsichord
  flute    73 flute, 72 piccolo, 75 pan flute              74 recorder
  trumpet  56 trumpet, 61 brass section                    59 muted trumpet
  cello    42 cello                                        43 contrabass
  organ    16 drawbar, 17 percussive, 19 church            18 rock, 20 reed

Every program of the last four families is a preset of the soundfont (its
preset headers name them), and rendered over its family's pitch range it sounds
unlike program 0, so none falls back to the piano. Their unseen programs are
the nearest other member of the family the soundfont has: recorder has its own
samples (piccolo's only at key 108, above the flute range); muted trumpet plays
Harmon-mute samples, not the open trumpet's or the brass section's; the
soundfont has one cello preset, so the unseen low bowed string is the
contrabass (its own samples below key 97, above the cello range); reed organ
has reed and accordion samples of its own, and rock organ layers a distorted B3
over the percussive organ's samples (a new patch on a seen sample, as honky-tonk
is for piano). Of the recipe's four, which must not change: fiddle plays the
violin's samples, and the jazz kit sounds exactly like the standard kit on
every note the drum parts play.

    python -m instruments_jax.data.synth --out=DIR [--split=train|test|unseen|all] [--seed=N] [--limit=N]
        [--classes=guitar,drum,...] [--layout=kaggle|folders] [--multi_label]
        [--engines=soundfont,physical,spectral,fluid,freepats] [--chain_prob=0.75]

writes splits to disk: by default the recipe's four classes in its Kaggle layout.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os

import numpy as np

FAMILIES = ("guitar", "drum", "violin", "piano", "flute", "trumpet", "cello", "organ")
DEFAULT_CLASSES = ("guitar", "drum", "violin", "piano")  # the recipe's label set

# Split sizes and class counts of the recipe's Kaggle data (Metadata_Train.csv has
# 2629 clips, one class short of 700; Metadata_Test.csv has 20 per class); the
# families beyond the recipe's four get full counts.
SPLITS = {
    "train": {"guitar": 700, "drum": 700, "violin": 700, "piano": 529,
              "flute": 700, "trumpet": 700, "cello": 700, "organ": 700},
    "test": {c: 20 for c in FAMILIES},
    # Programs and kits that never appear in train/test: a stand-in for
    # instruments and studios the model has not heard.
    "unseen": {c: 20 for c in FAMILIES},
}
_SPLIT_IDS = {"train": 1, "test": 2, "unseen": 3}

# GM programs (bank 0) and drum kits (bank 128) present in TimGM6mb.sf2; the
# module docstring says why these.
PROGRAMS = {
    "seen": {
        "piano": (0, 2, 4, 6),  # acoustic grand, electric grand, e.piano 1, harpsichord
        "guitar": (24, 25, 27, 29),  # nylon, steel, clean electric, overdrive
        "violin": (40, 110),  # violin, fiddle
        "drum": (0, 16, 25, 40),  # standard, power, TR-808, brush kits
        "flute": (73, 72, 75),  # flute, piccolo, pan flute
        "trumpet": (56, 61),  # trumpet, brass section
        "cello": (42,),  # cello: the soundfont's only one
        "organ": (16, 17, 19),  # drawbar, percussive, church
    },
    "unseen": {
        "piano": (1, 3, 5),  # bright piano, honky-tonk, e.piano 2
        "guitar": (26, 28, 30),  # jazz, muted, distortion
        "violin": (44, 45),  # tremolo strings, pizzicato
        "drum": (8, 24, 32, 48),  # room, electronic, jazz, orchestra kits
        "flute": (74,),  # recorder
        "trumpet": (59,),  # muted trumpet
        "cello": (43,),  # contrabass
        "organ": (18, 20),  # rock organ, reed organ
    },
}
STYLES = {
    "piano": ("melody_chords", "arpeggio", "block_chords", "alberti"),
    "guitar": ("strum", "fingerpick", "melody", "power_chords"),
    "violin": ("legato", "scales", "double_stops", "long_tones"),
    "drum": ("rock", "funk", "shuffle", "halftime", "latin"),
    "flute": ("legato", "scales", "long_tones", "melody"),
    "trumpet": ("melody", "legato", "long_tones", "scales"),
    "cello": ("legato", "long_tones", "scales", "double_stops"),
    "organ": ("block_chords", "melody_chords", "long_tones", "arpeggio"),
}
# Pitch ranges (MIDI) of the melodic parts.
RANGES = {"piano": (36, 88), "guitar": (40, 81), "violin": (55, 98), "flute": (60, 96), "trumpet": (54, 82),
          "cello": (36, 76), "organ": (36, 88)}
# Note length as a fraction of its step in melodic lines (bowed and blown notes join up).
_LEGATO = {"violin": 1.05, "cello": 1.05, "flute": 1.02, "organ": 1.0}
# Vibrato of sustained styles: rate range (Hz) and depth range (pitch-bend units).
_VIBRATO = {"violin": (4.5, 6.5, 150, 500), "cello": (4.5, 6.0, 150, 450), "flute": (4.5, 6.0, 100, 350)}

RENDER_RATE = 48000  # what midirenderer produces
MAX_FORMANT_SHIFT = 6  # semitones (Mix.formant_shift): half an octave either way
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
  engine: str = "soundfont"  # what makes the sound: a soundfont program, or engines.py's models (program = voice)
  chain: object = None  # the recording chain (chains.Chain), or None: dry, at studio level
  part: int = 0  # 0, or 1 for the second part of a multi-label mix (its own engine's random stream)
  spread: float = 0.0  # model engines: 0 plays voice `program`; above 0, a voice of its own (engines.blend_voice)
  # model-engine guitar through an amplifier: (curve, drive dB, low cut Hz, cabinet cutoff Hz); () for none
  amp: tuple = ()
  # sample libraries: semitones the notes are rendered up and the audio played back down (a formant shift); 0 none
  shift: int = 0


@dataclasses.dataclass(frozen=True)
class Mix:
  """Where a split's sound comes from: the engines clips are drawn from, and the share recorded through a chain."""

  engines: tuple[str, ...] = ("soundfont",)
  chain_prob: float = 0.0
  # Model-engine clips play a voice of their own, between their voice and another of its pool and up
  # to this far past them (engines.blend_voice); 0 plays the listed voices themselves.
  voice_spread: float = 0.0
  # Chained clips distorted (chains.draw's p_distortion; 0.1 is chains.P_DISTORTION, what the benchmark uses).
  distortion_prob: float = 0.1
  # Model-engine guitar clips played through an overdriven amplifier and its cabinet (`_amp`): the
  # sustained, compressed electric guitar the sample libraries' programs 29 and 30 play.
  guitar_amp: float = 0.0
  # Sample-library clips rendered k semitones up and played back k down, k drawn from -this..this (`_dry`):
  # the notes stay, the library's formants (body, bore, soundboard) move by k, its envelopes stretch by 2^(k/12).
  formant_shift: int = 0


SOUNDFONT = Mix()  # the embedded set before engines and chains: every clip the soundfont, dry
# The train split's default, and what the test and unseen splits always are: every engine, 3 clips
# in 4 recorded through a chain (seen rooms and mics for test, unseen ones for unseen).
BENCHMARK = Mix(("soundfont", "physical", "spectral"), 0.75)


def parse_mix(engines: str, chain_prob: float, voice_spread: float = 0.0, distortion_prob: float = 0.1,
              guitar_amp: float = 0.0, formant_shift: int = 0) -> Mix:
  """The Mix of a comma-separated engine list (data.synth_engines, --engines), a chain share, a voice spread,
  the chained clips' distortion share, the model-engine guitars' amplifier share and the sample libraries'
  formant shift."""
  return Mix(tuple(e.strip() for e in engines.split(",") if e.strip()), float(chain_prob), float(voice_spread),
             float(distortion_prob), float(guitar_amp), int(formant_shift))


def split_mix(split: str, train_mix: Mix = BENCHMARK) -> Mix:
  """The mix of a split: the train split's is a choice of the recipe (`train_mix`); test and unseen are
  always BENCHMARK, so runs with different training mixes are scored on the same clips."""
  return train_mix if split == "train" else BENCHMARK


def check_classes(classes) -> tuple[str, ...]:
  """Returns `classes` in FAMILIES order; raises ValueError unless they are 2+ distinct families."""
  if isinstance(classes, str):
    raise ValueError(f"classes must be a sequence of family names, not the string {classes!r}")
  classes = tuple(classes)
  for c in classes:
    if c not in FAMILIES:
      raise ValueError(f"unknown instrument class {c!r}: the synth renders {', '.join(FAMILIES)}")
  if len(set(classes)) != len(classes):
    raise ValueError(f"classes {', '.join(classes)} name a class twice")
  if len(classes) < 2:
    raise ValueError(f"classes needs at least 2 of {', '.join(FAMILIES)}, got {len(classes)}")
  return tuple(c for c in FAMILIES if c in classes)


def split_labels(seed: int, split: str, classes=DEFAULT_CLASSES) -> list[str]:
  """Returns the class of every index of a split, classes interleaved by a seeded shuffle.

  The labels depend on the set of `classes`, not on their order.
  """
  labels = [c for c in check_classes(classes) for _ in range(SPLITS[split][c])]
  order = np.random.default_rng([seed, _SPLIT_IDS[split], 0]).permutation(len(labels))
  return [labels[i] for i in order]


@functools.lru_cache(maxsize=16)
def _labels_cached(seed, split, classes=DEFAULT_CLASSES):
  return tuple(split_labels(seed, split, classes))


def check_mix(mix: Mix, classes=DEFAULT_CLASSES) -> Mix:
  """Returns `mix`; raises ValueError for an unknown engine, a bad chain share, or a class no engine renders."""
  from instruments_jax.data import engines

  if not mix.engines or len(set(mix.engines)) != len(mix.engines):
    raise ValueError(f"engines {','.join(mix.engines)!r}: name one or more of {', '.join(engines.ENGINES)}, each once")
  for e in mix.engines:
    if e not in engines.ENGINES:
      raise ValueError(f"unknown sound engine {e!r}: one of {', '.join(engines.ENGINES)}")
  if not 0.0 <= mix.chain_prob <= 1.0:
    raise ValueError(f"chain share {mix.chain_prob!r} is not in 0..1")
  if not 0.0 <= mix.voice_spread <= 2.0:
    raise ValueError(f"voice spread {mix.voice_spread!r} is not in 0..2")
  if not 0.0 <= mix.distortion_prob <= 1.0:
    raise ValueError(f"distortion share {mix.distortion_prob!r} is not in 0..1")
  if not 0.0 <= mix.guitar_amp <= 1.0:
    raise ValueError(f"guitar amplifier share {mix.guitar_amp!r} is not in 0..1")
  if not (isinstance(mix.formant_shift, int) and 0 <= mix.formant_shift <= MAX_FORMANT_SHIFT):
    raise ValueError(f"formant shift {mix.formant_shift!r} is not a whole number of semitones in 0..{MAX_FORMANT_SHIFT}")
  for c in check_classes(classes):
    if not _engines_of(c, mix.engines):
      raise ValueError(f"no engine of {', '.join(mix.engines)} renders {c}")
  # before any clip renders: a missing library is one line, not a worker's traceback
  from instruments_jax.data import libraries, soundfonts

  for e in mix.engines:
    if e in libraries.ENGINES:
      try:
        libraries.module(e).check()
      except soundfonts.SoundfontUnavailable as err:
        raise ValueError(str(err)) from None
  return mix


def _engines_of(family, names):
  from instruments_jax.data import engines

  return tuple(e for e in names if family in engines.families_of(e))


def clip_spec(seed: int, split: str, index: int, classes=DEFAULT_CLASSES, mix: Mix = SOUNDFONT) -> ClipSpec:
  """Returns the deterministic description of clip `index` of `split` over the label set `classes`.

  `mix` picks the clip's engine and voice (from its own random stream, so the notes are
  the same whichever engines are allowed) and whether, and through which chain, it is
  recorded; SOUNDFONT gives the clips as they were before engines and chains.
  """
  return _clip(seed, split, index, classes, mix, notes=True)


def clip_header(seed: int, split: str, index: int, classes=DEFAULT_CLASSES, mix: Mix = SOUNDFONT) -> ClipSpec:
  """Returns `clip_spec` without drawing its notes (`notes` and `bends` are None): every other field is the same.

  The notes are nearly all of a spec's cost (about 2 ms a clip); listing a split's clips (their
  duration, rate, channels, engine) needs none of them, so every run starts this much sooner.
  """
  return _clip(seed, split, index, classes, mix, notes=False)


def _clip(seed, split, index, classes, mix, notes):
  labels = _labels_cached(seed, split, check_classes(classes))
  if not 0 <= index < len(labels):
    raise IndexError(f"synth {split} split has {len(labels)} clips, asked for index {index}")
  spec = _build_spec(seed, split, index, labels[index], np.random.default_rng([seed, _SPLIT_IDS[split], 1, index]),
                     notes=notes)
  return _sound(spec, mix, 0)


def _sound(spec: ClipSpec, mix: Mix, part: int) -> ClipSpec:
  """Returns `spec` with the engine, voice and chain `mix` draws for it (unchanged for SOUNDFONT)."""
  if mix == SOUNDFONT:
    return spec
  from instruments_jax.data import chains, engines

  pool = "unseen" if spec.split == "unseen" else "seen"
  sid = _SPLIT_IDS[spec.split]
  rng = np.random.default_rng([spec.seed, sid, 4 + 2 * part, spec.index])
  # A seeded order of every engine that renders the family; the clip takes the first the mix
  # allows. So a clip keeps its engine in any smaller mix that still allows it, and leaving an
  # engine out (validation_strategy=engine) moves only that engine's clips.
  family = _engines_of(spec.label, engines.ENGINES[:3])
  order = [family[k] for k in rng.permutation(len(family))]
  # Engines added later (fluid, freepats) take a seeded place in that order from a stream of their own, so the
  # first three keep their clips in every mix without them, clip for clip.
  for n, e in enumerate(_engines_of(spec.label, engines.ENGINES[3:])):
    order.insert(int(np.random.default_rng([spec.seed, sid, 8 + 2 * part, spec.index, n]).integers(len(order) + 1)),
                 e)
  engine = next(e for e in order if e in mix.engines)
  sampled = engine in engines.SAMPLED
  program = spec.program if sampled else int(rng.choice(engines.VOICES[engine][pool][spec.label]))
  chain = None
  if part == 0:
    rng = np.random.default_rng([spec.seed, sid, 5, spec.index])
    if rng.random() < mix.chain_prob:
      chain = chains.draw(rng, pool, mix.distortion_prob)
  spread = 0.0 if sampled else mix.voice_spread
  amp = ()
  if not sampled and spec.label == "guitar" and mix.guitar_amp > 0:
    rng = np.random.default_rng([spec.seed, sid, 20 + part, spec.index])  # its own stream: nothing else moves
    curve, drive = str(rng.choice(("tanh", "tube"))), float(rng.uniform(18.0, 36.0))
    low, cab = float(rng.uniform(70.0, 140.0)), float(rng.uniform(2500.0, 6000.0))
    if rng.random() < mix.guitar_amp:
      amp = (curve, drive, low, cab)
  shift = 0
  if sampled and mix.formant_shift:
    rng = np.random.default_rng([spec.seed, sid, 22 + part, spec.index])  # its own stream, as the amp's
    shift = int(rng.integers(-mix.formant_shift, mix.formant_shift + 1))
  return dataclasses.replace(spec, engine=engine, program=program, chain=chain, part=part, spread=spread, amp=amp,
                             shift=shift)


def _amp(mono: np.ndarray, amp: tuple, rate: int) -> np.ndarray:
  """A guitar amplifier: the string's signal driven into a static curve (chains' distortion), then a
  closed-back cabinet's band (a 2nd-order low cut, a 4th-order roll-off above a few kHz). Float32 [n]."""
  from scipy.signal import butter, sosfilt

  from instruments_jax.data import chains

  curve, drive, low, cab = amp
  x = mono.astype(np.float64)[None]
  if not np.any(x):
    return mono
  y = chains.distort(x, curve, drive)
  sos = np.concatenate([butter(2, low, "highpass", fs=rate, output="sos"),
                        butter(4, cab, "lowpass", fs=rate, output="sos")])
  return sosfilt(sos, y, axis=-1)[0].astype(np.float32)


def _build_spec(seed, split, index, label, rng, duration=None, sample_rate=None, channels=None, tempo=None,
                gain=None, notes=True) -> ClipSpec:
  """Draws a clip of class `label` from `rng`; a value given overrides the drawn one (the draws stay the same).

  notes=False stops before the notes, the last draws: the header `clip_header` returns.
  """
  pool = PROGRAMS["unseen" if split == "unseen" else "seen"][label]
  program = int(rng.choice(pool))
  style = str(rng.choice(STYLES[label]))
  # Durations like the recipe's data: median 14 s, a few near 2 minutes.
  drawn = _clamp(float(np.exp(rng.normal(np.log(14.0), 0.7))), 1.0, 128.0)
  duration = round(drawn, 2) if duration is None else duration
  drawn = float(rng.uniform(60, 170))
  tempo = drawn if tempo is None else tempo
  drawn = int(rng.choice([44100, 48000, 22050], p=[0.8, 0.12, 0.08]))
  sample_rate = drawn if sample_rate is None else sample_rate
  drawn = int(rng.choice([1, 2], p=[0.75, 0.25]))
  channels = drawn if channels is None else channels
  drawn = float(10 ** (rng.uniform(-9, 6) / 20) * 2.5)
  gain = drawn if gain is None else gain
  if not notes:
    return ClipSpec(seed, split, index, label, program, label == "drum", style, tempo, duration,
                    sample_rate, channels, gain, None, None)
  if label == "drum":
    notes, bends = _drum_part(rng, style, tempo, duration)
  else:
    notes, bends = _melodic_part(rng, label, style, program, tempo, duration)
  return ClipSpec(seed, split, index, label, program, label == "drum", style, tempo, duration,
                  sample_rate, channels, gain, notes, bends)


def mix_spec(seed: int, split: str, index: int, classes=DEFAULT_CLASSES,
             mix: Mix = SOUNDFONT) -> tuple[ClipSpec, ClipSpec]:
  """Returns the two parts of multi-label clip `index`: `clip_spec`'s clip, and a second of another class.

  The second part comes from its own random stream; it shares the first's
  duration, tempo, sample rate and channels, and sits a seeded -6..+6 dB from it
  (its gain). `mix_label` names the pair; `render_mix` renders it.
  """
  classes = check_classes(classes)
  first = clip_spec(seed, split, index, classes, mix)
  rng = np.random.default_rng([seed, _SPLIT_IDS[split], 2, index])
  label = str(rng.choice([c for c in classes if c != first.label]))
  level_db = float(rng.uniform(-6, 6))
  second = _build_spec(seed, split, index, label, rng, duration=first.duration, sample_rate=first.sample_rate,
                       channels=first.channels, tempo=first.tempo, gain=first.gain * 10 ** (level_db / 20))
  return first, _sound(second, mix, 1)


def mix_label(parts) -> str:
  """Returns the multi-label name of clips or class names: the classes joined by "|" in FAMILIES order."""
  names = {p if isinstance(p, str) else p.label for p in parts}
  return "|".join(c for c in FAMILIES if c in names)


def _clamp(x, lo, hi):
  """np.clip for one number, without its array round trip (the notes of every clip are drawn at start-up)."""
  return min(max(x, lo), hi)


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
    return int(_clamp(p, lo, hi))

  def add(p, start, length, vel_jitter=12):
    v = int(_clamp(base_vel + rng.normal(0, vel_jitter), 20, 127))
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
        degree = _clamp(degree, -7, 14)
        legato = _LEGATO.get(label, 0.9)
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
    if label in _VIBRATO and style in ("legato", "long_tones") and rng.random() < 0.8:
      # Vibrato: a 5-6 Hz pitch-bend wobble over the bar.
      rate_lo, rate_hi, depth_lo, depth_hi = _VIBRATO[label]
      rate, depth = rng.uniform(rate_lo, rate_hi), rng.uniform(depth_lo, depth_hi)
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
        v = int(_clamp(base_vel + rng.normal(0, 14) - (12 if p == hat_note and j % 2 else 0), 15, 127))
        notes.append((p, v, max(s, 0.0), min(s + 0.12, duration)))
    t += 16 * step
    bar += 1
  return _pack(notes), np.zeros((0, 2))


def _pack(notes):
  return np.asarray(notes, np.float64).reshape(-1, 4)


_SAMPLED = ("soundfont", "fluid", "freepats")  # engines.SAMPLED, without importing the engines for the soundfont alone
# FluidR3's level per family: the inverse of its median RMS ratio to TimGM6mb's on the same notes (16
# train clips a family, their first 8 s, both channels: `experiments/bench_fluid.py --first=8 --stereo`),
# so neither library is the louder one for a class.
FLUID_LEVEL = {"guitar": 0.54, "drum": 0.80, "violin": 1.25, "piano": 0.60, "flute": 0.88, "trumpet": 0.75,
               "cello": 1.82, "organ": 0.69}
# FreePats' the same way (`experiments/bench_fluid.py --library=freepats --first=8 --stereo`).
FREEPATS_LEVEL = {"guitar": 0.58, "drum": 0.81, "violin": 1.23, "piano": 0.60, "flute": 0.76, "trumpet": 0.69,
                  "cello": 0.79, "organ": 0.57}
_LEVELS = {"fluid": FLUID_LEVEL, "freepats": FREEPATS_LEVEL}  # per library engine (libraries.ENGINES)


@functools.lru_cache(maxsize=1)
def _soundfont() -> bytes:
  import pretty_midi

  with open(os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2"), "rb") as f:
    return f.read()


def render(spec: ClipSpec, start: float = 0.0, duration: float | None = None) -> np.ndarray:
  """Synthesizes [start, start + duration) of a clip: float32 [frames, channels] at spec.sample_rate.

  Soundfont notes already sounding at `start` are re-struck up to 1 s earlier and that
  pre-roll is cut, so a window sounds like the same stretch of the whole clip; the model
  engines render every note from its own onset, and a recording chain runs over the
  pre-roll too, so its room tail and compressor start warm.
  """
  return _render([spec], start, duration)


def render_mix(parts, start: float = 0.0, duration: float | None = None) -> np.ndarray:
  """Synthesizes a window of a multi-label clip (the parts of `mix_spec`), like `render` does one clip.

  The parts sum dry, at their gains; the first part's recording chain records the sum.
  """
  first = parts[0]
  if any((p.duration, p.sample_rate, p.channels) != (first.duration, first.sample_rate, first.channels)
         for p in parts):
    raise ValueError("the parts of a mix need one duration, sample rate and channel count")
  return _render(list(parts), start, duration)


def _render(parts, start, duration):
  first = parts[0]
  if duration is None:
    duration = first.duration - start
  end = start + duration
  n_out = int(round(duration * first.sample_rate))
  soundfont = any(p.engine in _SAMPLED for p in parts)
  # The models render each note from its onset: they need a pre-roll only to warm up a chain.
  preroll = min(start, 1.0) if soundfont or first.chain is not None else 0.0
  if first.chain is None and all(p.engine == "soundfont" for p in parts):  # as before engines and chains, bit for bit
    return np.clip(sum(_finish(first, _dry(p, start, end, preroll)[0], RENDER_RATE, preroll, n_out) * p.gain
                       for p in parts), -1.0, 1.0)
  from instruments_jax.data import chains

  rate = RENDER_RATE if soundfont else _model_rate()
  audio = None
  for p in parts:
    x, r = _dry(p, start, end, preroll)
    if r != rate:
      import soxr

      x = _fit(soxr.resample(x, r, rate, quality="HQ"), int(round((preroll + duration) * rate)))
    audio = x * p.gain if audio is None else audio + x * p.gain
  if first.chain is not None:
    audio = chains.apply(first.chain, audio, rate, start - preroll, (first.seed, _SPLIT_IDS[first.split], first.index))
  return np.clip(_finish(first, audio, rate, preroll, n_out), -1.0, 1.0)


def _model_rate():
  from instruments_jax.data import engines

  return engines.MODEL_RATE


def _fit(x, n):
  out = np.zeros((n,) + x.shape[1:], np.float32)
  out[: min(n, len(x))] = x[:n]
  return out


def _finish(spec, audio, rate, preroll, n_out):
  """Cuts the pre-roll, folds to the clip's channels and resamples to its rate: [n_out, channels]."""
  import soxr

  audio = audio[int(round(preroll * rate)):]
  if spec.channels == 1:
    audio = audio.mean(axis=1, keepdims=True)
  if spec.sample_rate != rate:
    audio = soxr.resample(audio, rate, spec.sample_rate, quality="HQ")
  return _fit(audio, n_out)


def _dry(spec, start, end, preroll):
  """Returns (float32 [frames, 2] of clip time [start - preroll, end) before gain and chain, its rate).

  The soundfont re-strikes notes sounding at `start - preroll`; `render` gives it a pre-roll
  of min(start, 1) s and cuts it.
  """
  if spec.engine not in _SAMPLED:
    from instruments_jax.data import engines

    key = (spec.seed, _SPLIT_IDS[spec.split], spec.index, spec.part)
    mono = engines.render(spec.engine, spec.label, spec.program, spec.notes, spec.bends, start - preroll, end, key,
                          spread=spec.spread)
    if spec.amp:
      mono = _amp(mono, spec.amp, engines.MODEL_RATE)
    return np.repeat(mono[:, None], 2, axis=1), engines.MODEL_RATE
  t0 = start - preroll
  if not spec.shift:
    return _sampled(spec, t0, end, spec.notes, spec.bends), RENDER_RATE
  import soxr

  # Render k semitones up at 1/r the clip's pace, then play it back r times slower: the notes and their times
  # come back, the library's fixed resonances move down by k (a larger body; up for k < 0). A drum kit keeps
  # its notes (a note is a drum), so it is tuned down by k instead.
  r = 2.0 ** (spec.shift / 12)
  notes = spec.notes.copy()
  notes[:, 2:4] /= r
  if not spec.is_drum:
    notes[:, 0] = np.clip(notes[:, 0] + spec.shift, 0, 127)
  bends = spec.bends.copy()
  bends[:, 0] /= r
  x = _sampled(spec, t0 / r, end / r, notes, bends)
  return _fit(soxr.resample(x, RENDER_RATE / r, RENDER_RATE, quality="HQ"), int(round((end - t0) * RENDER_RATE))), \
      RENDER_RATE


def _sampled(spec, t0, end, notes, bends):
  """float32 [frames, 2] at RENDER_RATE of a sample library playing `notes` (rows as ClipSpec's) over [t0, end)."""
  import midirenderer
  import pretty_midi
  import soundfile as sf

  n_render = int(round((end - t0) * RENDER_RATE))
  keep = (notes[:, 2] < end) & (notes[:, 3] > t0) if len(notes) else np.zeros(0, bool)
  audio = np.zeros((n_render, 2), np.float32)
  if keep.any():
    inst = pretty_midi.Instrument(program=spec.program, is_drum=spec.is_drum)
    for p, v, s, e in notes[keep]:
      inst.notes.append(pretty_midi.Note(int(v), int(p), max(s - t0, 0.0), min(e, end + 0.05) - t0))
    if len(bends):
      before = bends[bends[:, 0] < t0]
      if len(before):
        inst.pitch_bends.append(pretty_midi.PitchBend(int(before[-1, 1]), 0.0))
      for tb, val in bends[(bends[:, 0] >= t0) & (bends[:, 0] < end)]:
        inst.pitch_bends.append(pretty_midi.PitchBend(int(val), float(tb - t0)))
    pm = pretty_midi.PrettyMIDI(initial_tempo=spec.tempo)
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    if spec.engine == "soundfont":
      bank, level = _soundfont(), 1.0
    else:
      from instruments_jax.data import libraries

      bank = libraries.module(spec.engine).preset(128 if spec.is_drum else 0, spec.program)
      level = _LEVELS[spec.engine][spec.label]
    wav, _ = sf.read(io.BytesIO(midirenderer.render_wave_from(bank, buf.getvalue())),
                     dtype="float32", always_2d=True)
    wav = wav[: n_render]
    audio[: len(wav)] = wav if level == 1.0 else wav * np.float32(level)
  return audio


# --- writing a split to disk ------------------------------------------------------

KAGGLE_LABELS = {c: f"Sound_{c.capitalize()}" for c in FAMILIES}
# Metadata_Test.csv of the real dataset misspells guitar; ours does too, so that
# loaders are tested against the file users actually have.
KAGGLE_TEST_LABELS = dict(KAGGLE_LABELS, guitar="Sound_Guiatr")
KAGGLE_DIRS = {"train": ("Metadata_Train.csv", "Train_submission/Train_submission"),
               "test": ("Metadata_Test.csv", "Test_submission/Test_submission"),
               "unseen": ("Metadata_Unseen.csv", "Unseen_submission/Unseen_submission")}
LAYOUTS = ("kaggle", "folders")


def file_name(split: str, index: int) -> str:
  return f"synth_{split}_{index:04d}.wav"


def check_write_args(classes=DEFAULT_CLASSES, layout: str = "kaggle", multi_label: bool = False) -> tuple[str, ...]:
  """Returns `classes` in FAMILIES order; raises ValueError for a bad label set, layout or combination."""
  classes = check_classes(classes)
  if layout not in LAYOUTS:
    raise ValueError(f"unknown layout {layout!r}: one of {', '.join(LAYOUTS)}")
  if multi_label and layout == "folders":
    raise ValueError("multi_label needs the kaggle layout: a clip with two classes has no one class folder to go in")
  return classes


def _write_one(args):
  import soundfile as sf

  seed, split, index, classes, multi_label, out_dir, mix = args
  if multi_label:
    parts = mix_spec(seed, split, index, classes, mix)
    audio, label, sample_rate = render_mix(parts), mix_label(parts), parts[0].sample_rate
  else:
    spec = clip_spec(seed, split, index, classes, mix)
    audio, label, sample_rate = render(spec), spec.label, spec.sample_rate
  sf.write(os.path.join(out_dir, file_name(split, index)), audio, sample_rate, subtype="PCM_16")
  return label


def write_split(out: str, split: str, seed: int = 0, limit: int | None = None, workers: int | None = None,
                classes=DEFAULT_CLASSES, layout: str = "kaggle", multi_label: bool = False,
                train_mix: Mix = BENCHMARK) -> str:
  """Renders a split of the label set `classes` to `out`; returns the CSV path (kaggle) or the split folder.

  The train split is drawn from `train_mix`, test and unseen from BENCHMARK (`split_mix`).

  layout "kaggle" is the recipe's: a Metadata CSV of "Sound_<Class>" labels
  (guitar misspelt in the test CSV, as in the real data) beside the audio
  folder. layout "folders" is `out/<split>/<class>/<file>.wav`. With
  `multi_label` (kaggle only) each clip mixes two classes (`mix_spec`) and its
  Class cell names both, e.g. "guitar|piano".
  """
  import csv
  import multiprocessing

  classes = check_write_args(classes, layout, multi_label)
  mix = check_mix(split_mix(split, train_mix), classes)
  labels = _labels_cached(seed, split, classes)
  n = len(labels) if limit is None else min(limit, len(labels))
  if layout == "folders":
    split_dir = os.path.join(out, split)
    for c in sorted(set(labels[:n])):
      os.makedirs(os.path.join(split_dir, c), exist_ok=True)
    jobs = [(seed, split, i, classes, False, os.path.join(split_dir, labels[i]), mix) for i in range(n)]
  else:
    csv_name, sub = KAGGLE_DIRS[split]
    audio_dir = os.path.join(out, sub)
    os.makedirs(audio_dir, exist_ok=True)
    jobs = [(seed, split, i, classes, multi_label, audio_dir, mix) for i in range(n)]
  workers = workers or os.cpu_count() or 1
  if workers > 1 and n > 1:
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
      written = list(_progress(pool.imap(_write_one, jobs, chunksize=4), n, split))
  else:
    written = list(_progress(map(_write_one, jobs), n, split))
  if layout == "folders":
    return split_dir
  names = KAGGLE_TEST_LABELS if split == "test" else KAGGLE_LABELS
  csv_path = os.path.join(out, csv_name)
  tmp = csv_path + ".tmp"
  with open(tmp, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["FileName", "Class"])
    for i, label in enumerate(written):
      w.writerow([file_name(split, i), label if multi_label else names[label]])
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
  import sys

  p = argparse.ArgumentParser(prog="python -m instruments_jax.data.synth", description=__doc__.split("\n")[0])
  p.add_argument("--out", required=True, help="directory to write the splits into")
  p.add_argument("--split", default="all", choices=["train", "test", "unseen", "all"])
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--limit", type=int, default=None, help="write only the first N clips of each split")
  p.add_argument("--workers", type=int, default=None)
  p.add_argument("--classes", default=",".join(DEFAULT_CLASSES),
                 help=f"comma-separated label set, 2 or more of {','.join(FAMILIES)}")
  p.add_argument("--layout", default="kaggle", help="kaggle (CSV + audio folder) or folders (<split>/<class>/)")
  p.add_argument("--multi_label", action="store_true", help="mix two classes per clip (kaggle layout only)")
  p.add_argument("--engines", default=",".join(BENCHMARK.engines),
                 help="sound engines the train split is drawn from (test and unseen: always "
                      "soundfont, physical and spectral)")
  p.add_argument("--chain_prob", type=float, default=BENCHMARK.chain_prob,
                 help="share of train clips recorded through a random room, mic and codec chain (test and unseen: "
                      f"{BENCHMARK.chain_prob})")
  p.add_argument("--voice_spread", type=float, default=BENCHMARK.voice_spread,
                 help="train clips of the model engines play a voice of their own, between two listed voices and up to "
                      "this far past them (0: the listed voices; test and unseen: 0)")
  p.add_argument("--distortion_prob", type=float, default=BENCHMARK.distortion_prob,
                 help=f"share of chained train clips distorted (test and unseen: {BENCHMARK.distortion_prob})")
  p.add_argument("--guitar_amp", type=float, default=BENCHMARK.guitar_amp,
                 help="share of model-engine guitar train clips played through an overdriven amplifier and cabinet "
                      "(test and unseen: 0)")
  p.add_argument("--formant_shift", type=int, default=BENCHMARK.formant_shift,
                 help="sample-library train clips rendered k semitones up and played back k down, k drawn from "
                      "-this..this (test and unseen: 0)")
  a = p.parse_args(argv)
  try:
    classes = check_write_args([c.strip() for c in a.classes.split(",") if c.strip()], a.layout, a.multi_label)
    train_mix = check_mix(parse_mix(a.engines, a.chain_prob, a.voice_spread, a.distortion_prob, a.guitar_amp, a.formant_shift),
                          classes)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  splits = ["train", "test", "unseen"] if a.split == "all" else [a.split]
  for s in splits:
    path = write_split(a.out, s, a.seed, a.limit, a.workers, classes, a.layout, a.multi_label, train_mix)
    print(f"wrote {path}")


if __name__ == "__main__":
  main()
