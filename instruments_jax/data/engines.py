"""Two numpy sound engines that render synth note lists without the soundfont.

A model trained on one General-MIDI soundfont learns that soundfont. These
engines render the same note lists (`synth.ClipSpec.notes` / `.bends`) with
other sound production, so that each family has more than one way to sound:

  physical  models of how the instrument makes sound: a Karplus-Strong plucked
            string with the body commuted into the pluck (guitar), hammered
            stiff strings as beating, two-stage decaying modes (piano), a
            Helmholtz bowed source whose harmonics move through a body
            resonance bank under vibrato (violin, cello), and a modal drum kit
            (membrane modes, snare wires, inharmonic cymbal modes).
  spectral  synthesizer-style models: decaying additive partials, FM electric
            piano, formant-weighted harmonics with delayed vibrato, analog
            drum voices (sine sweeps, filtered noise, metallic partials),
            brass whose brightness follows its level, drawbar organ.

Voices (ids are the position in each list; `VOICES` splits them into pools):

  engine    family   seen                                          unseen
  physical  guitar   0 nylon classical, 1 steel dreadnought,       3 archtop jazz, 4 small-body parlor
                     2 clean electric (bridge+neck pickups)
  physical  drum     0 rock kit, 1 jazz kit, 2 vintage kit         3 arena kit, 4 tight funk kit
  physical  violin   0 concert violin, 1 bright fiddle,            3 viola-sized body, 4 electric violin
                     2 dark old violin
  physical  piano    0 grand, 1 upright, 2 bright old upright      3 felt-muted upright, 4 stretched baby grand
  physical  cello    0 concert cello, 1 bright cello,              3 bass-viol body, 4 electric cello
                     2 student cello
  spectral  guitar   0 additive steel, 1 additive nylon,           3 palm-muted, 4 jangly octave-doubled
                     2 additive clean electric
  spectral  drum     0 808-style, 1 909-style, 2 acoustic-like     3 lo-fi CR-style, 4 hard electro
  spectral  violin   0 bright solo, 1 warm section, 2 nasal        3 dark mute, 4 airy thin
  spectral  piano    0 additive bright, 1 additive mellow,         3 FM bell e-piano, 4 stretched honky
                     2 FM tine e-piano
  spectral  flute    0 concert flute, 1 breathy pan, 2 bright      3 wooden recorder, 4 very breathy ney
                     piccolo-like
  spectral  trumpet  0 bright trumpet, 1 mellow flugel,            3 harmon-muted, 4 dark horn
                     2 brass section (3 detuned)
  spectral  cello    0 warm cello, 1 bright cello, 2 nasal cello   3 dark bass, 4 airy thin
  spectral  organ    0 jazz drawbar, 1 full gospel, 2 church       3 beating reed, 4 percussive rock
                     principal

Every unseen voice uses a body, brightness, decay or kit used by no seen voice.

Determinism and windows: per-clip timbre jitter comes from
`default_rng([*key, 0, 0])`, everything about note row i from
`default_rng([*key, 1, i])`. Noise is read from a fixed band-split noise table
(built once from a constant seed) at a per-note random offset, so any sample
of a note is computable without the ones before it. Closed-form sources
(additive, wavetable, modal) compute only the part of a note inside the
window; the plucked string, a recursion, is computed from its onset. So
`render(..., a, b)` equals the same samples of `render(..., 0, duration)`.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import signal

MODEL_RATE = 32000  # engines render at this rate (features stop at 16 kHz)
ENGINES = ("soundfont", "physical", "spectral", "fluid", "freepats")  # the sample libraries render in synth.py
# Engines that play GM programs from a SoundFont through midirenderer (synth.py): TimGM6mb, FluidR3 GM
# (soundfonts.py) and FreePats (freepats.py). A clip of theirs plays its spec's GM program; the models here play voices.
SAMPLED = ("soundfont", "fluid", "freepats")

_FAMILIES = ("guitar", "drum", "violin", "piano", "flute", "trumpet", "cello", "organ")  # synth.FAMILIES
_SR = MODEL_RATE
_TAIL_MAX = 3.0  # no note rings longer than this after its end (drums: after onset)
_F32 = np.float32


def _hz(p):
  return 440.0 * 2.0 ** ((p - 69.0) / 12.0)


# --- voices -------------------------------------------------------------------------
# Each voice is a dict of its settings; "pool" says seen or unseen. Voice id = list index.

def _v(name, pool, **kw):
  return dict(name=name, pool=pool, **kw)


_PHYS = {
    # body: (freq Hz, Q, gain) modes of the guitar body, commuted into the pluck.
    "guitar": [
        _v("nylon classical", "seen", bright=0.45, loss=0.22, t60=2.6, pluck=0.17, detune=2.0, release=0.07,
           body=((98, 10, 1.4), (205, 12, 1.0), (390, 14, 0.6), (560, 16, 0.4), (820, 18, 0.3)), pickup=()),
        _v("steel dreadnought", "seen", bright=1.0, loss=0.08, t60=4.0, pluck=0.12, detune=2.5, release=0.06,
           body=((102, 12, 1.6), (225, 14, 1.1), (430, 16, 0.7), (690, 18, 0.5), (1150, 20, 0.3)), pickup=()),
        _v("clean electric", "seen", bright=0.9, loss=0.1, t60=5.0, pluck=0.1, detune=1.5, release=0.05,
           body=(), pickup=(0.08, 0.22)),
        _v("archtop jazz", "unseen", bright=0.35, loss=0.28, t60=1.8, pluck=0.3, detune=2.0, release=0.05,
           body=((120, 9, 1.0), (270, 10, 1.3), (520, 12, 0.9), (1000, 14, 0.4)), pickup=(0.3,)),
        _v("small-body parlor", "unseen", bright=1.3, loss=0.05, t60=3.0, pluck=0.08, detune=4.0, release=0.08,
           body=((135, 14, 1.2), (290, 16, 1.2), (560, 18, 0.8), (950, 20, 0.6), (1700, 20, 0.4)), pickup=()),
    ],
    "piano": [
        _v("grand", "seen", inharm=2.5e-4, detune=0.6, hammer=1600, strike=1 / 8.3, decay=1.0, release=0.12,
           knock=0.06, board=((110, 1.5), (250, 1.3), (520, 1.2), (2200, 1.15))),
        _v("upright", "seen", inharm=6e-4, detune=1.4, hammer=1200, strike=1 / 7.2, decay=0.6, release=0.1,
           knock=0.12, board=((150, 1.6), (330, 1.4), (750, 1.3))),
        _v("bright old upright", "seen", inharm=4e-4, detune=3.5, hammer=3200, strike=1 / 9.5, decay=0.5,
           release=0.08, knock=0.18, board=((180, 1.5), (420, 1.4), (1500, 1.6))),
        _v("felt-muted upright", "unseen", inharm=8e-4, detune=1.0, hammer=520, strike=1 / 6.0, decay=0.3,
           release=0.06, knock=0.25, board=((140, 1.8), (290, 1.5))),
        _v("stretched baby grand", "unseen", inharm=1.3e-3, detune=0.25, hammer=2300, strike=1 / 11.0, decay=0.85,
           release=0.15, knock=0.04, board=((90, 1.4), (200, 1.3), (1000, 1.3), (3000, 1.4))),
    ],
    # body: modes (freq, Q, gain); bow: bow position (fraction of string); roll: string-loss rolloff Hz.
    "violin": [
        _v("concert violin", "seen", body=((280, 14, 1.0), (460, 16, 1.1), (540, 20, 1.2), (850, 14, 0.7),
                                            (2600, 1.6, 0.9)), bow=0.11, roll=5000, noise=0.05, attack=0.06,
           release=0.08, jitter=4.0),
        _v("bright fiddle", "seen", body=((290, 12, 0.8), (480, 14, 1.0), (560, 18, 1.0), (1100, 10, 0.8),
                                           (3000, 1.4, 1.4)), bow=0.07, roll=7000, noise=0.08, attack=0.03,
           release=0.06, jitter=7.0),
        _v("dark old violin", "seen", body=((270, 16, 1.3), (440, 18, 1.2), (520, 22, 1.0), (780, 14, 0.6),
                                             (2200, 2.0, 0.5)), bow=0.14, roll=3500, noise=0.04, attack=0.09,
           release=0.1, jitter=3.0),
        _v("viola-sized body", "unseen", body=((220, 12, 1.2), (350, 14, 1.2), (410, 16, 1.0), (650, 12, 0.7),
                                                (1800, 1.8, 0.7)), bow=0.12, roll=4000, noise=0.06, attack=0.08,
           release=0.09, jitter=5.0),
        _v("electric violin", "unseen", body=((900, 1.2, 0.6), (4000, 1.0, 0.8)), bow=0.09, roll=9000, noise=0.02,
           attack=0.04, release=0.05, jitter=2.0),
    ],
    "cello": [
        _v("concert cello", "seen", body=((100, 12, 1.0), (175, 14, 1.2), (210, 16, 1.0), (420, 12, 0.7),
                                           (1100, 1.6, 0.7)), bow=0.1, roll=3000, noise=0.04, attack=0.08,
           release=0.1, jitter=4.0),
        _v("bright cello", "seen", body=((105, 10, 0.8), (185, 12, 1.0), (230, 14, 1.0), (480, 10, 0.8),
                                          (1500, 1.4, 1.2)), bow=0.07, roll=4500, noise=0.07, attack=0.05,
           release=0.08, jitter=6.0),
        _v("student cello", "seen", body=((95, 14, 1.3), (165, 16, 1.3), (200, 18, 0.9), (380, 14, 0.5),
                                           (900, 2.0, 0.5)), bow=0.13, roll=2400, noise=0.06, attack=0.1,
           release=0.12, jitter=8.0),
        _v("bass-viol body", "unseen", body=((70, 10, 1.4), (120, 12, 1.2), (160, 14, 0.9), (300, 10, 0.6),
                                              (700, 2.0, 0.5)), bow=0.15, roll=2000, noise=0.05, attack=0.12,
           release=0.12, jitter=5.0),
        _v("electric cello", "unseen", body=((600, 1.0, 0.6), (2500, 1.0, 0.7)), bow=0.08, roll=6000, noise=0.02,
           attack=0.05, release=0.06, jitter=2.0),
    ],
    # Kits: kick (Hz, sweep ratio, decay s, click), snare (Hz, decay, wires, wire decay), toms (low, high Hz,
    # decay), hats (base Hz, closed, open decay s, bright), cymbals (base Hz, crash decay, ride decay).
    "drum": [
        _v("rock kit", "seen", kick=(58, 1.6, 0.28, 0.6), snare=(190, 0.12, 0.9, 0.18), tom=(85, 200, 0.45),
           hat=(3200, 0.05, 0.55, 1.0), cym=(420, 1.8, 1.4)),
        _v("jazz kit", "seen", kick=(72, 1.3, 0.35, 0.3), snare=(230, 0.16, 0.6, 0.14), tom=(110, 260, 0.6),
           hat=(3800, 0.07, 0.8, 0.8), cym=(360, 2.4, 2.2)),
        _v("vintage kit", "seen", kick=(52, 1.4, 0.2, 0.4), snare=(170, 0.09, 0.7, 0.12), tom=(80, 170, 0.3),
           hat=(2800, 0.045, 0.4, 0.6), cym=(480, 1.3, 1.0)),
        _v("arena kit", "unseen", kick=(45, 2.0, 0.5, 0.9), snare=(150, 0.2, 1.1, 0.3), tom=(65, 150, 0.9),
           hat=(2500, 0.08, 1.0, 1.2), cym=(300, 2.8, 2.6)),
        _v("tight funk kit", "unseen", kick=(68, 1.2, 0.13, 1.0), snare=(280, 0.07, 1.2, 0.09),
           tom=(140, 320, 0.22), hat=(4600, 0.03, 0.28, 1.4), cym=(560, 0.9, 0.8)),
    ],
}

_SPEC = {
    # slope: spectral tilt of partials (k^-slope); decay: s of the fundamental; hf: extra decay per kHz.
    "guitar": [
        _v("additive steel", "seen", slope=0.9, decay=1.4, hf=1.2, pluck=0.14, burst=0.25, release=0.06,
           octave=0.0, formant=(250, 2.0)),
        _v("additive nylon", "seen", slope=1.4, decay=1.0, hf=2.5, pluck=0.2, burst=0.12, release=0.08,
           octave=0.0, formant=(180, 1.5)),
        _v("additive clean electric", "seen", slope=1.1, decay=2.2, hf=0.8, pluck=0.09, burst=0.06, release=0.05,
           octave=0.0, formant=(1200, 1.3)),
        _v("palm-muted", "unseen", slope=1.7, decay=0.18, hf=6.0, pluck=0.25, burst=0.3, release=0.03,
           octave=0.0, formant=(350, 2.5)),
        _v("jangly octave-doubled", "unseen", slope=0.7, decay=1.8, hf=0.6, pluck=0.07, burst=0.2, release=0.07,
           octave=0.6, formant=(3000, 1.6)),
    ],
    "piano": [
        _v("additive bright", "seen", kind="add", inharm=3e-4, slope=0.8, decay=2.2, hf=0.5, release=0.1),
        _v("additive mellow", "seen", kind="add", inharm=5e-4, slope=1.6, decay=1.6, hf=1.0, release=0.12),
        _v("FM tine e-piano", "seen", kind="fm", ratio=1.0, index=2.2, index_decay=0.35, tine=(14.0, 1.2, 0.03),
           decay=1.6, release=0.1),
        _v("FM bell e-piano", "unseen", kind="fm", ratio=3.5, index=1.4, index_decay=0.8, tine=(9.0, 2.0, 0.08),
           decay=2.5, release=0.15),
        _v("stretched honky", "unseen", kind="add", inharm=1.5e-3, slope=1.1, decay=0.9, hf=1.5, release=0.07,
           honky=9.0),
    ],
    # formants: (Hz, width in octaves, gain); vib: (rate Hz, depth cents, delay s).
    "violin": [
        _v("bright solo", "seen", formants=((500, 0.5, 1.0), (1600, 0.6, 0.6), (3200, 0.5, 1.0)), slope=0.9,
           vib=(5.8, 18, 0.25), attack=0.07, release=0.09, noise=0.04),
        _v("warm section", "seen", formants=((400, 0.6, 1.2), (1200, 0.6, 0.5), (2600, 0.6, 0.5)), slope=1.2,
           vib=(5.0, 12, 0.35), attack=0.14, release=0.15, noise=0.03, chorus=6.0),
        _v("nasal", "seen", formants=((700, 0.3, 1.2), (1900, 0.35, 1.1), (3600, 0.4, 0.6)), slope=0.8,
           vib=(6.2, 22, 0.2), attack=0.05, release=0.07, noise=0.05),
        _v("dark mute", "unseen", formants=((330, 0.5, 1.3), (900, 0.4, 0.7)), slope=1.6, vib=(5.3, 14, 0.3),
           attack=0.1, release=0.12, noise=0.02),
        _v("airy thin", "unseen", formants=((1100, 0.8, 0.8), (4500, 0.6, 1.0)), slope=0.7, vib=(6.8, 26, 0.15),
           attack=0.05, release=0.06, noise=0.12),
    ],
    "cello": [
        _v("warm cello", "seen", formants=((220, 0.6, 1.2), (600, 0.5, 0.7), (1500, 0.6, 0.5)), slope=1.1,
           vib=(5.0, 16, 0.3), attack=0.1, release=0.12, noise=0.03),
        _v("bright cello", "seen", formants=((300, 0.5, 1.0), (900, 0.5, 0.8), (2200, 0.5, 0.9)), slope=0.85,
           vib=(5.6, 20, 0.25), attack=0.07, release=0.1, noise=0.05),
        _v("nasal cello", "seen", formants=((450, 0.3, 1.3), (1300, 0.35, 1.0)), slope=0.9, vib=(4.8, 12, 0.35),
           attack=0.09, release=0.1, noise=0.04, chorus=5.0),
        _v("dark bass", "unseen", formants=((150, 0.7, 1.4), (400, 0.5, 0.6)), slope=1.5, vib=(4.4, 10, 0.4),
           attack=0.14, release=0.15, noise=0.02),
        _v("airy thin", "unseen", formants=((800, 0.8, 0.9), (3000, 0.6, 0.9)), slope=0.75, vib=(6.4, 24, 0.18),
           attack=0.06, release=0.07, noise=0.1),
    ],
    # harm: harmonic amplitudes 1..; breath: noise level; attack s; chiff: attack noise.
    "flute": [
        _v("concert flute", "seen", harm=(1.0, 0.25, 0.1, 0.04, 0.02), breath=0.06, attack=0.08, chiff=0.15,
           vib=(5.0, 14, 0.3), release=0.06, bands=(0, 0, 0.1, 0.4, 0.8, 0.6, 0.3, 0.1)),
        _v("breathy pan", "seen", harm=(1.0, 0.08, 0.15, 0.02), breath=0.18, attack=0.12, chiff=0.35,
           vib=(4.5, 8, 0.4), release=0.09, bands=(0, 0, 0.2, 0.6, 0.9, 0.5, 0.2, 0.05)),
        _v("bright piccolo-like", "seen", harm=(1.0, 0.4, 0.2, 0.1, 0.06, 0.03), breath=0.05, attack=0.05,
           chiff=0.2, vib=(5.8, 18, 0.2), release=0.05, bands=(0, 0, 0, 0.2, 0.5, 0.8, 0.6, 0.3)),
        _v("wooden recorder", "unseen", harm=(1.0, 0.05, 0.35, 0.03, 0.15, 0.02, 0.06), breath=0.03, attack=0.03,
           chiff=0.4, vib=(0.0, 0, 1.0), release=0.04, bands=(0, 0.1, 0.3, 0.6, 0.5, 0.3, 0.1, 0.0)),
        _v("very breathy ney", "unseen", harm=(1.0, 0.3, 0.05, 0.05), breath=0.22, attack=0.2, chiff=0.1,
           vib=(4.0, 20, 0.5), release=0.12, bands=(0, 0, 0.1, 0.5, 0.8, 0.5, 0.25, 0.1)),
    ],
    # bright: harmonic count scale at full level; formant: bell peak (Hz, octaves); voices: detuned copies.
    "trumpet": [
        _v("bright trumpet", "seen", bright=14.0, floor=2.0, formant=(1400, 1.2), attack=0.035, scoop=30,
           release=0.06, voices=(0.0,), vib=(5.5, 8, 0.4)),
        _v("mellow flugel", "seen", bright=7.0, floor=1.5, formant=(800, 1.0), attack=0.06, scoop=15,
           release=0.09, voices=(0.0,), vib=(5.0, 10, 0.35)),
        _v("brass section", "seen", bright=11.0, floor=2.0, formant=(1100, 1.4), attack=0.05, scoop=20,
           release=0.08, voices=(-7.0, 0.0, 6.0), vib=(0.0, 0, 1.0)),
        _v("harmon-muted", "unseen", bright=18.0, floor=3.0, formant=(1900, 0.5), attack=0.03, scoop=25,
           release=0.05, voices=(0.0,), vib=(5.8, 6, 0.3), thin=True),
        _v("dark horn", "unseen", bright=5.0, floor=1.2, formant=(450, 1.0), attack=0.08, scoop=10,
           release=0.12, voices=(0.0, 4.0), vib=(0.0, 0, 1.0)),
    ],
    # bars: drawbar levels 0..8 of 16', 5 1/3', 8', 4', 2 2/3', 2', 1 3/5', 1 1/3', 1'.
    "organ": [
        _v("jazz drawbar", "seen", bars=(8, 8, 8, 0, 0, 0, 0, 0, 0), click=0.25, attack=0.005, release=0.03,
           perc=(0.0, 0, 0.2), leslie=(0.8, 0.1)),
        _v("full gospel", "seen", bars=(8, 8, 8, 8, 8, 8, 8, 8, 8), click=0.3, attack=0.005, release=0.03,
           perc=(0.0, 0, 0.2), leslie=(6.5, 0.25)),
        _v("church principal", "seen", bars=(4, 0, 8, 6, 2, 4, 0, 0, 2), click=0.05, attack=0.06, release=0.25,
           perc=(0.0, 0, 0.2), leslie=(0.0, 0.0), chiff=0.12),
        _v("beating reed", "unseen", bars=(0, 0, 8, 3, 6, 2, 5, 3, 4), click=0.02, attack=0.03, release=0.06,
           perc=(0.0, 0, 0.2), leslie=(0.0, 0.0), reed=7.0),
        _v("percussive rock", "unseen", bars=(6, 0, 8, 8, 0, 0, 0, 0, 3), click=0.5, attack=0.004, release=0.02,
           perc=(0.7, 3, 0.25), leslie=(5.8, 0.35)),
    ],
    # Kits: kick (start Hz, end Hz, sweep s, decay s, click, drive), snare (Hz pair, decay, noise, noise decay),
    # toms (low, high Hz, decay), hats (metal, noise, closed, open decay), cymbal decay, metal base Hz.
    "drum": [
        _v("808-style", "seen", kick=(150, 49, 0.045, 0.7, 0.1, 0.0), snare=(180, 330, 0.12, 0.6, 0.16),
           tom=(90, 220, 0.4), hat=(1.0, 0.5, 0.05, 0.45), cym=1.6, metal=205.0),
        _v("909-style", "seen", kick=(240, 52, 0.03, 0.35, 0.6, 1.5), snare=(200, 350, 0.08, 1.0, 0.2),
           tom=(110, 250, 0.3), hat=(0.35, 1.0, 0.06, 0.5), cym=1.9, metal=246.0),
        _v("acoustic-like", "seen", kick=(120, 60, 0.02, 0.22, 0.45, 0.5), snare=(210, 420, 0.1, 0.9, 0.22),
           tom=(95, 230, 0.5), hat=(0.6, 0.8, 0.06, 0.6), cym=2.2, metal=330.0),
        _v("lo-fi CR-style", "unseen", kick=(110, 70, 0.015, 0.12, 0.05, 0.0), snare=(260, 520, 0.05, 0.7, 0.07),
           tom=(160, 360, 0.15), hat=(0.2, 1.0, 0.025, 0.2), cym=0.8, metal=410.0),
        _v("hard electro", "unseen", kick=(400, 42, 0.06, 0.9, 0.9, 3.0), snare=(150, 240, 0.15, 1.3, 0.12),
           tom=(70, 170, 0.55), hat=(1.2, 0.3, 0.035, 0.3), cym=1.3, metal=163.0),
    ],
}

_VOICE_TABLES = {"physical": _PHYS, "spectral": _SPEC}

VOICES = {
    engine: {pool: {fam: tuple(i for i, v in enumerate(vs) if v["pool"] == pool) for fam, vs in table.items()}
             for pool in ("seen", "unseen")}
    for engine, table in _VOICE_TABLES.items()
}


def families_of(engine: str) -> tuple[str, ...]:
  """Returns the families `engine` renders, in synth.FAMILIES order."""
  if engine in SAMPLED:
    return _FAMILIES
  if engine not in _VOICE_TABLES:
    raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
  return tuple(f for f in _FAMILIES if f in _VOICE_TABLES[engine])


def _voice(engine, family, voice):
  fams = families_of(engine)
  if engine in SAMPLED:
    raise ValueError(f"engine {engine!r} renders in synth.py (synth.render), not in engines.render")
  if family not in fams:
    raise ValueError(f"engine {engine!r} does not render family {family!r}: it renders {', '.join(fams)}")
  table = _VOICE_TABLES[engine][family]
  if isinstance(voice, bool) or not isinstance(voice, (int, np.integer)) or not 0 <= voice < len(table):
    raise ValueError(f"unknown voice {voice!r} of {engine} {family}: ids 0..{len(table) - 1}")
  return table[int(voice)]


def voice_name(engine: str, family: str, voice: int) -> str:
  """Returns the human name of a voice, e.g. "steel dreadnought"; soundfont voices are GM programs or kits."""
  if engine in SAMPLED:
    if family not in _FAMILIES:
      raise ValueError(f"engine {engine!r} does not render family {family!r}")
    return f"GM drum kit {int(voice)}" if family == "drum" else f"GM program {int(voice)}"
  return _voice(engine, family, voice)["name"]


# --- shared building blocks ------------------------------------------------------------

_NOISE_LEN = 1 << 18  # 8.2 s of noise; read circularly
_NOISE_PAD = 1 << 17  # extra copy so most reads are one slice
_BAND_HZ = (125, 250, 500, 1000, 2000, 4000, 8000, 16000)


@functools.lru_cache(maxsize=1)
def _noise_bank():
  """Eight octave bands of one fixed white noise, each of unit RMS: [8, LEN + PAD] float32.

  A constant table (its seed never changes), so a note's noise is a slice at a
  per-note random offset, computable for any window without the samples before.
  """
  rng = np.random.default_rng(20240611)
  spec = np.fft.rfft(rng.standard_normal(_NOISE_LEN))
  f = np.fft.rfftfreq(_NOISE_LEN, 1.0 / _SR)
  lf = np.log2(np.maximum(f, 1.0) / 1000.0)
  centers = np.log2(np.asarray(_BAND_HZ) / 1000.0)
  bank = np.empty((len(_BAND_HZ), _NOISE_LEN + _NOISE_PAD), _F32)
  for b, c in enumerate(centers):
    # Triangular weights in log-frequency sum to one; the square root keeps the summed power flat.
    w = np.clip(1.0 - np.abs(lf - c), 0.0, 1.0)
    if b == 0:
      w[lf < c] = 1.0
    if b == len(centers) - 1:
      w[lf > c] = 1.0
    x = np.fft.irfft(spec * np.sqrt(w), _NOISE_LEN)
    x /= np.sqrt(np.mean(x**2))
    bank[b, :_NOISE_LEN] = x
    bank[b, _NOISE_LEN:] = x[:_NOISE_PAD]
  return bank


def _noise(weights, offset, a, b):
  """Band-weighted noise for samples [a, b) of a note whose noise starts at table `offset`."""
  bank = _noise_bank()
  w = np.asarray(weights, _F32)
  s = (offset + a) % _NOISE_LEN
  n = b - a
  if s + n <= _NOISE_LEN + _NOISE_PAD:
    return w @ bank[:, s:s + n]
  return w @ np.take(bank, (s + np.arange(n)) % _NOISE_LEN, axis=1)


_BLK = 128  # block of the modal bank's matrix product


def _modal(a, b, freqs, amps, decays, phases=None):
  """Sum of amps * exp(-decays t) * sin(2 pi freqs t + phases) for samples [a, b) after onset: float32.

  Damped modes as one complex matrix product: per block of _BLK samples the
  modes' complex states (closed form at the block start) times a [modes, _BLK]
  table of their evolution within a block. Blocks sit on a grid from the
  onset, so a sample's value does not depend on the window. Modes at or above
  0.45 * MODEL_RATE are dropped (no aliasing).
  """
  freqs = np.asarray(freqs, np.float64)
  amps = np.broadcast_to(np.asarray(amps, np.float64), freqs.shape)
  keep = (freqs < 0.45 * _SR) & (amps != 0)
  if not keep.any() or b <= a:
    return np.zeros(max(b - a, 0), _F32)
  s = (-np.broadcast_to(np.asarray(decays, np.float64), freqs.shape)[keep] + 2j * np.pi * freqs[keep]) / _SR
  c0 = amps[keep] * (1.0 if phases is None else np.exp(1j * np.asarray(phases, np.float64)[keep]))
  b0, b1 = a // _BLK, -(-b // _BLK)
  # States at block starts: closed form at the first, then one complex step per block.
  step = np.broadcast_to(np.exp(s * _BLK), (b1 - b0, len(s))).copy()
  step[0] = c0 * np.exp(s * (b0 * _BLK))
  states = np.cumprod(step, axis=0)
  m = np.arange(_BLK, dtype=_F32)
  dec = np.exp(np.outer(s.real.astype(_F32), m))
  ang = np.outer(s.imag.astype(_F32), m)
  # Im(state * evolve) = Re(state) Im(evolve) + Im(state) Re(evolve): one real matrix product.
  lhs = np.concatenate([states.real, states.imag], axis=1).astype(_F32)
  rhs = np.concatenate([dec * np.sin(ang), dec * np.cos(ang)], axis=0)
  out = (lhs @ rhs).ravel()
  return out[a - b0 * _BLK:b - b0 * _BLK]


def _tables(amps, phases, size):
  """One-period wavetables [J, size] of harmonics 1..K with amplitudes amps [J, K] (cosine phases)."""
  amps = np.atleast_2d(amps)
  spec = np.zeros((amps.shape[0], size // 2 + 1), np.complex128)
  k = min(amps.shape[1], size // 2 - 1)
  spec[:, 1:k + 1] = amps[:, :k] * np.exp(1j * np.asarray(phases)[:k]) * (size / 2)
  return np.fft.irfft(spec, size, axis=1).astype(_F32)


def _table_size(k):
  return int(min(2048, max(256, 1 << int(np.ceil(np.log2(8 * max(k, 1)))))))


def _wt_read(tabs, ph, pos=None):
  """Reads wavetables [J, T] at phase `ph` (cycles), crossfading tables at fractional index `pos`."""
  j_n, t_n = tabs.shape
  x = (ph - np.floor(ph)) * t_n
  i = x.astype(np.int64)
  f = (x - i).astype(_F32)
  i &= t_n - 1
  i1 = (i + 1) & (t_n - 1)
  flat = tabs.ravel()
  if j_n == 1 or pos is None:
    a = np.take(flat, i)
    return a + f * (np.take(flat, i1) - a)
  pos = np.clip(pos, 0.0, j_n - 1.000001)
  j = pos.astype(np.int64)
  g = (pos - j).astype(_F32)
  base = j * t_n
  a = np.take(flat, base + i)
  lo = a + f * (np.take(flat, base + i1) - a)
  base += t_n
  a = np.take(flat, base + i)
  hi = a + f * (np.take(flat, base + i1) - a)
  return lo + g * (hi - lo)


def _vel_amp(vel):
  # Roughly the GM velocity curve: amplitude ~ (v/127)^1.8.
  return float(vel) ** 1.8


def _bells(f, peaks):
  """Smooth gain curve of log-Gaussian bumps (Hz, width octaves, gain) over a floor of 0.15."""
  lf = np.log2(np.maximum(f, 1.0))
  g = np.full(np.shape(f), 0.15)
  for fc, w, a in peaks:
    g = g + a * np.exp(-0.5 * ((lf - np.log2(fc)) / w) ** 2)
  return g


def _resonances(f, modes):
  """|sum of 2-pole resonances| at frequencies f: modes (freq, Q, gain), plus a direct path."""
  h = np.full(np.shape(f), 0.25 + 0j)
  for fr, q, g in modes:
    r = f / fr
    h = h + g / (1.0 - r * r + 1j * r / q)
  return np.abs(h)


class _Clip:
  """Per-render state: the voice, clip jitter, window and pitch-bend time warp."""

  def __init__(self, voice, bends, n0, n, key):
    self.v = voice
    self.key = tuple(int(k) for k in key)
    self.n0, self.n = n0, n
    # Per-clip timbre jitter within the voice, uniform in [-1, 1].
    self.j = np.random.default_rng([*self.key, 0, 0]).uniform(-1.0, 1.0, 8)
    self.bends = bends
    if len(bends):
      order = np.argsort(bends[:, 0], kind="stable")
      self.bt = bends[order, 0]
      self.cents_b = bends[order, 1] / 8192.0 * 200.0  # +-2 semitones
      ratio = 2.0 ** (self.cents_b / 1200.0)
      self.ratio_b = ratio
      # G(t) = integral of the pitch ratio: the "warped time" a note's phase runs on.
      self.gb = np.concatenate([[self.bt[0]], self.bt[0] + np.cumsum(ratio[:-1] * np.diff(self.bt))])
      t = (n0 + np.arange(n)) / _SR
      self.g_win = self._warp(t)
      idx = np.searchsorted(self.bt, t, side="right") - 1
      self.cents_win = np.where(idx >= 0, self.cents_b[np.maximum(idx, 0)], 0.0)

  def _warp(self, t):
    t = np.asarray(t, np.float64)
    idx = np.searchsorted(self.bt, t, side="right") - 1
    ii = np.maximum(idx, 0)
    return np.where(idx >= 0, self.gb[ii] + self.ratio_b[ii] * (t - self.bt[ii]), t)

  def rng(self, i):
    return np.random.default_rng([*self.key, 1, int(i)])

  def phase(self, f0, on, lo, hi):
    """Cycles of a note of pitch f0 started at sample `on`, for samples [lo, hi), following the bends."""
    if not len(self.bends):
      return f0 * ((np.arange(lo, hi) - on) / _SR)
    return f0 * (self.g_win[lo - self.n0:hi - self.n0] - float(self._warp(on / _SR)))

  def cents(self, lo, hi):
    if not len(self.bends):
      return np.zeros(hi - lo)
    return self.cents_win[lo - self.n0:hi - self.n0]


def _tau(on, lo, hi):
  return ((np.arange(lo, hi) - on) / _SR).astype(_F32)


_REL_SPAN = 5.0  # a release lasts this many time constants, then is exactly zero


def _release(on, off, lo, hi, rel):
  """Exponential release after note-off (1 before it), shifted to reach zero at _REL_SPAN * rel: no click."""
  t = ((np.arange(lo, hi) - off) / (_SR * rel)).astype(_F32)
  floor = np.exp(-_REL_SPAN)
  return np.maximum((np.exp(-np.maximum(t, 0.0)) - floor) / (1.0 - floor), 0.0).astype(_F32)


def _attack(tau, att):
  return (1.0 - np.exp(-tau / _F32(max(att, 1e-4) / 3.0))).astype(_F32)


def _jit_vib(rng, cents_rms, f0):
  """Closed-form slow random pitch wander (two sinusoids): returns fn(tau) -> extra cycles."""
  rates = rng.uniform(0.7, 3.0, 2)
  ph0 = rng.uniform(0, 2 * np.pi, 2)
  depth = cents_rms * np.log(2) / 1200.0 * f0

  def cycles(tau):
    # float32 is enough: these are small extra cycles on top of the float64 phase.
    out = np.zeros(len(tau), _F32)
    for r, p in zip(rates, ph0):
      out += _F32(depth / (2 * np.pi * r)) * (np.sin(_F32(2 * np.pi * r) * tau + _F32(p)) - _F32(np.sin(p)))
    return out

  return cycles


# --- physical engine ------------------------------------------------------------------

def _ks(exc, period, loss, rho, n_out):
  """Karplus-Strong string: y = exc + rho * h * y delayed `period` samples; returns y[:n_out].

  h is a 3-tap loss lowpass times a linear fractional delay. The recursion runs
  in blocks of K periods: y[n] = e_K[n] + (h^K * y)[n - K N], where e_K (the
  excitation's first K round trips) comes from one FFT as a geometric sum, so
  the Python loop runs ~n_out / 600 times, not once per sample or period.
  """
  n = int(period - 1.0)
  frac = period - 1.0 - n
  h = rho * np.convolve([loss, 1.0 - 2.0 * loss, loss], [1.0 - frac, frac])
  k = max(1, int(round(np.sqrt(12000.0 / n))))
  m = 1 << int(np.ceil(np.log2(k * (len(h) - 1) + 1)))
  hk = np.fft.irfft(np.fft.rfft(h, m) ** k, m)[:k * (len(h) - 1) + 1]  # h convolved with itself k times
  block, ov = k * n, len(hk) - 1
  need = len(exc) + (k - 1) * (n + len(h) - 1)
  if k > 1:
    size = 1 << int(np.ceil(np.log2(need)))
    g = np.zeros(n + len(h))
    g[n:] = h
    gf = np.fft.rfft(g, size)
    geo = (1.0 - gf**k) / (1.0 - gf)  # sum_{p<k} G^p
    ek = np.fft.irfft(np.fft.rfft(exc, size) * geo, size)[:need]
  else:
    ek = exc
  y = np.zeros(ov + block + max(n_out, 1) + block)
  o = ov + block
  m = min(len(ek), len(y) - o)
  y[o:o + m] = ek[:m]
  for b in range(0, n_out, block):
    y[o + b:o + b + block] += np.convolve(y[o + b - block - ov:o + b], hk, "valid")
  return y[o:o + n_out]


def _guitar_body_ir(ctx):
  """The body's impulse response (direct path + damped modes), jittered per clip; None for no body."""
  v = ctx.v
  if not v["body"]:
    return None
  n = 3000  # ~94 ms: the modes are damped by then to below -40 dB
  tau = np.arange(n) / _SR
  scale = 1.0 + 0.04 * ctx.j[0]
  ir = np.zeros(n)
  ir[0] = 1.0
  for f, q, g in v["body"]:
    f = f * scale
    ir += 0.12 * g * np.exp(-np.pi * f / q * tau) * np.sin(2 * np.pi * f * tau) * (2 * np.pi * f / _SR) * q
  ir *= np.clip((n - np.arange(n)) / 300.0, 0.0, 1.0)  # fade the truncation
  return ir


def _guitar_phys(ctx, i, p, vel, on, off, lo, hi):
  v, rng = ctx.v, ctx.rng(i)
  if not hasattr(ctx, "body_ir"):
    ctx.body_ir = _guitar_body_ir(ctx)
  f0 = _hz(p) * 2.0 ** (rng.normal(0.0, v["detune"]) / 1200.0)
  period = _SR / f0
  n = int(period)
  # Pick: a one-period noise burst, darker when soft (a one-pole lowpass whose cutoff rises with velocity).
  burst = rng.uniform(-1.0, 1.0, n)
  fc = min(0.4 * _SR, v["bright"] * (1 + 0.1 * ctx.j[1]) * (600.0 + 5000.0 * vel**1.5))
  a = np.exp(-2 * np.pi * fc / _SR)
  burst = np.asarray(signal.lfilter([1.0 - a], [1.0, -a], burst))
  # Commuted synthesis: string and body are linear, so the body's response goes into the pluck.
  exc = burst if ctx.body_ir is None else signal.fftconvolve(burst, ctx.body_ir)
  # Pluck position: a comb that removes harmonics with a node at the plucking point.
  m = max(1, int(round(v["pluck"] * (1 + 0.15 * rng.uniform(-1, 1)) * period)))
  exc = exc.copy()
  exc[m:] -= exc[:-m].copy()
  t60 = v["t60"] * (1 + 0.15 * ctx.j[2]) * (110.0 / f0) ** 0.45
  rho = 10.0 ** (-3.0 / (t60 * f0))
  y = _ks(exc, period, v["loss"], rho, hi - on)
  for pos in v["pickup"]:
    # A magnetic pickup senses the string at a point: another comb, at the pickup's distance.
    d = max(1, int(round(pos * period)))
    delayed = np.zeros_like(y)
    delayed[d:] = y[:max(0, len(y) - d)]  # a note seen for fewer than d samples has no delayed part yet
    y = y - 0.7 * delayed
  y = y[lo - on:]
  return (y * _release(on, off, lo, hi, v["release"])).astype(_F32) * _vel_amp(vel)


def _piano_phys(ctx, i, p, vel, on, off, lo, hi):
  """Hammered strings: 1-3 detuned stiff strings per note (beating, two-stage decay), felt hammer spectrum."""
  v, rng = ctx.v, ctx.rng(i)
  f0 = _hz(p)
  n_str = 1 if p < 43 else 2 if p < 55 else 3
  k_max = max(1, min(int(9000.0 / f0), 36 // n_str))
  k = np.arange(1, k_max + 1)
  b = v["inharm"] * 2.0 ** ((p - 60) / 24.0)
  fk = k * f0 * np.sqrt(1.0 + b * k * k)  # stiff-string partials, stretched
  # Felt hammer: a lowpass whose corner rises with velocity (louder is brighter).
  fc = v["hammer"] * (1 + 0.1 * ctx.j[1]) * (0.35 + 1.3 * vel)
  amp = 1.0 / (1.0 + (fk / fc) ** 2) * np.abs(np.sin(np.pi * k * v["strike"])) / np.sqrt(k)
  # Soundboard: broad resonances lift the partials near them.
  amp *= 1.0 + sum((g - 1.0) * np.exp(-0.5 * (np.log2(fk / fr) / 0.3) ** 2) for fr, g in v["board"])
  tau1 = v["decay"] * (1 + 0.1 * ctx.j[2]) * 1.5 * 2.0 ** (-(p - 48) / 18.0)
  dk = (1.0 / tau1) * (1.0 + (fk / 1800.0) ** 1.5)  # loss grows with frequency
  cents = rng.normal(0.0, v["detune"], n_str)
  cents -= cents.mean()
  # String 0 decays fast (prompt sound), the others slowly (aftersound): two-stage decay.
  weights, rates = (0.65, 0.35, 0.3), (1.0, 0.22, 0.45)
  freqs, amps, decs = [], [], []
  for s in range(n_str):
    freqs.append(fk * 2.0 ** (cents[s] / 1200.0))
    amps.append(amp * weights[s])
    decs.append(dk * rates[s])
  freqs, amps, decs = np.concatenate(freqs), np.concatenate(amps), np.concatenate(decs)
  tau = _tau(on, lo, hi)
  y = _modal(lo - on, hi - on, freqs, amps, decs, rng.uniform(-0.3, 0.3, len(freqs)))
  y *= _attack(tau, 0.002)
  knock = v["knock"] * vel
  if knock and tau[0] < 0.08:
    m = int(np.searchsorted(tau, 0.08))
    y[:m] += knock * np.exp(-tau[:m] / 0.008) * _noise((1, 1, 0.7, 0.4, 0.2, 0.08, 0.03, 0), rng.integers(
        _NOISE_LEN), lo - on, lo - on + m)
  return y * _release(on, off, lo, hi, v["release"]) * _vel_amp(vel) * 0.5


_CENTS_GRID = np.array([-60.0, -30.0, 0.0, 30.0, 60.0])


def _bowed_phys(ctx, i, p, vel, on, off, lo, hi):
  """Bowed string: Helmholtz (sawtooth) motion through a body resonance bank.

  The body is applied per harmonic, at the harmonic's current frequency: tables
  on a grid of pitch offsets are crossfaded by the bend in cents, so vibrato
  moves harmonics across body resonances (the violin's vibrato flicker).
  """
  v, rng = ctx.v, ctx.rng(i)
  f0 = _hz(p) * 2.0 ** (rng.normal(0.0, 3.0) / 1200.0)
  kmax = max(1, int(0.45 * _SR / (f0 * 1.13)))
  k = np.arange(1, kmax + 1)
  beta = v["bow"] * (1 + 0.15 * ctx.j[3])
  src = np.abs(np.sin(np.pi * k * beta)) / (np.pi * k * k * beta)  # bow position notches on a 1/k spectrum
  src *= 1.0 / (1.0 + (k * f0 / (v["roll"] * (0.6 + 0.6 * vel))) ** 2)
  scale = 1.0 + 0.04 * ctx.j[0]
  modes = tuple((f * scale, q, g) for f, q, g in v["body"])
  f_grid = np.outer(2.0 ** (_CENTS_GRID / 1200.0), k * f0)
  amps = src * _resonances(f_grid, modes)
  amps /= max(np.sqrt(np.sum(amps[2] ** 2)), 1e-9)
  tabs = _tables(amps, rng.uniform(0, 2 * np.pi, kmax), _table_size(kmax))
  wander = _jit_vib(rng, v["jitter"], f0)
  tau64 = (np.arange(lo, hi) - on) / _SR
  ph = ctx.phase(f0, on, lo, hi) + wander(tau64.astype(_F32))
  y = _wt_read(tabs, ph, (ctx.cents(lo, hi) + 60.0) / 30.0)
  tau = tau64.astype(_F32)
  # Bow noise, strongest while the Helmholtz motion builds up.
  nz = v["noise"] * (1.0 + 3.0 * np.exp(-tau / _F32(0.06)))
  y += nz * _noise((0, 0, 0.1, 0.3, 0.6, 0.8, 0.5, 0.2), rng.integers(_NOISE_LEN), lo - on, hi - on)
  # Bow pressure wobble: a slow random amplitude movement.
  r, ph0 = rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
  env = _attack(tau, v["attack"] * (1.3 - 0.6 * vel)) * (1.0 + 0.08 * np.sin(_F32(2 * np.pi * r) * tau + ph0))
  return y * env * _release(on, off, lo, hi, v["release"]) * _vel_amp(vel) * 0.9


_MEMBRANE = np.array([1.0, 1.59, 2.14, 2.30, 2.65, 2.92, 3.16])
_GOLD = 0.6180339887


def _inharmonic(n, lo_hz, hi_hz, salt):
  """n quasi-random log-spaced mode frequencies between lo_hz and hi_hz (a fixed formula, not random)."""
  u = (np.arange(n) * _GOLD + salt) % 1.0
  return lo_hz * (hi_hz / lo_hz) ** u, u


def _drum_piece(engine, v, p):
  """Returns (kind, ring seconds) of GM percussion key p in kit v."""
  if p in (35, 36):
    kind = "kick"
  elif p in (38, 40):
    kind = "snare"
  elif p == 37:
    kind = "stick"
  elif p == 39:
    kind = "clap"
  elif p in (41, 43, 45, 47, 48, 50):
    kind = "tom"
  elif p in (42, 44):
    kind = "hat"
  elif p == 46:
    kind = "open"
  elif p in (49, 52, 55, 57):
    kind = "crash"
  elif p in (51, 53, 59):
    kind = "ride"
  else:
    kind = "stick"
  if engine == "physical":
    ring = {"kick": v["kick"][2], "snare": max(v["snare"][1], v["snare"][3]), "stick": 0.05, "clap": 0.1,
            "tom": v["tom"][2], "hat": v["hat"][1], "open": v["hat"][2],
            "crash": v["cym"][1] * (0.45 if p == 55 else 1.0), "ride": v["cym"][2]}[kind]
  else:
    ring = {"kick": v["kick"][3], "snare": max(v["snare"][2], v["snare"][4]), "stick": 0.04, "clap": 0.1,
            "tom": v["tom"][2], "hat": v["hat"][2], "open": v["hat"][3],
            "crash": v["cym"] * (0.45 if p == 55 else 1.0), "ride": v["cym"] * 0.8}[kind]
  return kind, min(_TAIL_MAX, 5.0 * ring)


_TOM_KEYS = (41, 43, 45, 47, 48, 50)


def _drum_phys(ctx, i, p, vel, on, off, lo, hi):
  """Modal kit: membranes (Bessel-mode ratios), snare wires as band noise, cymbals as inharmonic modes."""
  v, rng = ctx.v, ctx.rng(i)
  kind, _ = _drum_piece("physical", v, p)
  tau = _tau(on, lo, hi)
  a, b = lo - on, hi - on
  off_n = rng.integers(_NOISE_LEN)
  tune = 1.0 + 0.03 * ctx.j[0] + 0.01 * rng.normal()
  dec = 1.0 + 0.12 * ctx.j[1]
  vb = 0.5 + vel  # harder hits excite more high modes and noise
  jit = rng.uniform(0.85, 1.15, 8)
  if kind == "kick":
    f, sweep, d, click = v["kick"]
    f *= tune
    # Membrane tension rises with a hard hit: the pitch falls from sweep*f to f in ~25 ms.
    drop = 0.025
    ph = 2 * np.pi * (f * tau + f * (sweep - 1.0) * drop * (1.0 - np.exp(-tau / _F32(drop))))
    y = np.sin(ph).astype(_F32) * np.exp(-tau / _F32(d * dec))
    y += _modal(lo - on, hi - on, f * _MEMBRANE[1:4], 0.25 * vb * jit[:3] * np.array([0.5, 0.3, 0.2]),
                np.array([3, 5, 7]) / (d * dec))
    y += click * vb * np.exp(-tau / _F32(0.004)) * _noise((0, 0, 0.1, 0.4, 0.8, 0.6, 0.2, 0), off_n, a, b)
    return y * _vel_amp(vel)
  if kind == "snare":
    f, d, wires, wd = v["snare"]
    f *= tune * (1.12 if p == 40 else 1.0)
    amps = np.array([1.0, 0.6, 0.45, 0.35, 0.3, 0.2, 0.15]) * jit[:7] * np.minimum(1.0, vb ** np.arange(7) * 0.8)
    y = _modal(lo - on, hi - on, f * _MEMBRANE, amps, (1.0 + 0.5 * np.arange(7)) / (d * dec), rng.uniform(0, 0.5, 7))
    bright = 1.3 if p == 40 else 1.0
    nz = _noise((0, 0.05, 0.2, 0.5, 0.8 * bright, 1.0 * bright, 0.8 * vb, 0.3 * vb), off_n, a, b)
    y += wires * 0.7 * nz * np.exp(-tau / _F32(wd * dec)) * (1.0 - np.exp(-tau / _F32(0.002)))
    return y * _vel_amp(vel) * 0.9
  if kind == "tom":
    lo_f, hi_f, d = v["tom"]
    f = lo_f * (hi_f / lo_f) ** (_TOM_KEYS.index(p) / 5.0 if p in _TOM_KEYS else 0.5) * tune
    ph = 2 * np.pi * (f * tau + f * 0.15 * 0.05 * (1.0 - np.exp(-tau / _F32(0.05))))
    y = np.sin(ph).astype(_F32) * np.exp(-tau / _F32(d * dec))
    y += _modal(lo - on, hi - on, f * _MEMBRANE[1:], 0.5 * vb * jit[:6] * np.array([0.6, 0.4, 0.35, 0.25, 0.2, 0.15]),
                (1.5 + 0.7 * np.arange(6)) / (d * dec))
    y += 0.3 * vb * np.exp(-tau / _F32(0.005)) * _noise((0, 0.2, 0.5, 0.6, 0.4, 0.2, 0.05, 0), off_n, a, b)
    return y * _vel_amp(vel) * 0.9
  if kind in ("hat", "open"):
    base, closed, opened, bright = v["hat"]
    d = (opened if kind == "open" else closed * (0.7 if p == 44 else 1.0)) * dec
    fr, u = _inharmonic(14, base * tune, base * tune * 3.6, 0.11)
    y = _modal(lo - on, hi - on, fr, 0.12 * jit[np.arange(14) % 8] * (0.5 + u), 1.0 / (d * (0.6 + 0.8 * ((u * 1.7) % 1.0))),
               u * 6.0)
    nz = _noise((0, 0, 0, 0.02, 0.1, 0.4 * bright, 1.0 * bright * vb, 0.7 * bright * vb), off_n, a, b)
    y += 0.5 * nz * np.exp(-tau / _F32(d))
    return y * (1.0 - np.exp(-tau / _F32(0.0008))) * _vel_amp(vel) * (0.6 if p == 44 else 1.0)
  if kind in ("crash", "ride"):
    base, crash, ride = v["cym"]
    splash = p == 55
    d = (crash * (0.45 if splash else 1.0) if kind == "crash" else ride) * dec
    base *= tune * (1.6 if splash else 1.15 if p == 57 else 1.0)
    fr, u = _inharmonic(20, base, base * 22.0, 0.37)
    ring = 0.1 if kind == "crash" else 0.25
    y = _modal(lo - on, hi - on, fr, ring * (0.4 + u) * jit[np.arange(20) % 8], 1.0 / (d * (0.4 + 0.9 * u[::-1])), u * 5.0)
    if p == 53:  # ride bell: a few strong low modes
      y += _modal(lo - on, hi - on, base * np.array([2.0, 2.9, 4.3]), np.array([0.4, 0.3, 0.2]), np.array([1.0, 1.3, 1.7]) / d)
    wash = 0.7 if kind == "crash" else 0.25
    nz = _noise((0, 0, 0.03, 0.15, 0.4, 0.8, 1.0 * vb, 0.6 * vb), off_n, a, b)
    y += wash * nz * np.exp(-tau / _F32(d * 0.6)) * (1.0 + 2.0 * np.exp(-tau / _F32(0.05)))
    return y * (1.0 - np.exp(-tau / _F32(0.001))) * _vel_amp(vel) * 0.8
  if kind == "clap":
    env = np.zeros(len(tau), _F32)
    for t0 in (0.0, 0.011, 0.023, 0.031):
      env += np.where(tau >= t0, np.exp(-np.maximum(tau - t0, 0) / _F32(0.005)), 0).astype(_F32)
    env += 0.4 * np.exp(-tau / _F32(0.08))
    return env * _noise((0, 0, 0.2, 0.8, 1.0, 0.5, 0.2, 0), off_n, a, b) * _vel_amp(vel) * 0.6
  # side stick / other: a short woody click.
  f = 420.0 * tune * (1.0 + 0.02 * (p - 37))
  y = _modal(lo - on, hi - on, f * np.array([1.0, 2.7, 5.2]), np.array([0.8, 0.5, 0.3]), np.array([60.0, 90.0, 140.0]))
  y += 0.4 * np.exp(-tau / _F32(0.003)) * _noise((0, 0, 0.1, 0.5, 0.9, 0.7, 0.3, 0), off_n, a, b)
  return y * _vel_amp(vel)


# --- spectral engine ------------------------------------------------------------------

_SNAP0 = 0.01  # decay snapshots at 0.01 * (2^j - 1) s: 0, 10, 30, 70, 150 ms, ...
_N_SNAP = 10


def _decay_tables(amps, decays, phases):
  """Snapshot wavetables of harmonics decaying at their own rates; read with _snap_pos."""
  t = _SNAP0 * (2.0 ** np.arange(_N_SNAP) - 1.0)
  a = amps[None, :] * np.exp(-np.outer(t, decays))
  return _tables(a, phases, _table_size(len(amps)))


def _snap_pos(tau):
  return np.log2(1.0 + tau / _F32(_SNAP0))


def _guitar_spec(ctx, i, p, vel, on, off, lo, hi):
  """Decaying harmonic partials with a pluck-position spectrum and an attack noise burst."""
  v, rng = ctx.v, ctx.rng(i)
  f0 = _hz(p) * 2.0 ** (rng.normal(0.0, 2.0) / 1200.0)
  kmax = max(1, int(0.45 * _SR / f0))
  k = np.arange(1, kmax + 1)
  fk = k * f0
  slope = v["slope"] * (1 + 0.08 * ctx.j[1]) - 0.4 * vel
  amps = k ** -slope * (0.2 + np.abs(np.sin(np.pi * k * v["pluck"])))
  fc, w = v["formant"]
  amps *= 1.0 + np.exp(-0.5 * (np.log2(fk / fc) / w) ** 2)
  if v["octave"]:  # an octave string in the course: adds even harmonics, detuned later by the phase jitter
    amps[1::2] *= 1.0 + v["octave"]
  decays = (1.0 / (v["decay"] * (1 + 0.12 * ctx.j[2]) * (196.0 / f0) ** 0.4)) * (1.0 + v["hf"] * fk / 1000.0)
  amps /= np.sqrt(np.sum(amps**2))
  tabs = _decay_tables(amps, decays, rng.uniform(0, 2 * np.pi, kmax))
  tau = _tau(on, lo, hi)
  y = _wt_read(tabs, ctx.phase(f0, on, lo, hi), _snap_pos(tau))
  if tau[0] < 0.05:
    m = int(np.searchsorted(tau, 0.05))
    y[:m] += v["burst"] * vel * np.exp(-tau[:m] / _F32(0.006)) * _noise(
        (0, 0, 0.1, 0.3, 0.6, 0.8, 0.6 * vel, 0.2), rng.integers(_NOISE_LEN), lo - on, lo - on + m)
  return y * _attack(tau, 0.002) * _release(on, off, lo, hi, v["release"]) * _vel_amp(vel)


def _piano_spec(ctx, i, p, vel, on, off, lo, hi):
  """Additive inharmonic partials with per-partial decay, or a two-operator FM electric piano."""
  v, rng = ctx.v, ctx.rng(i)
  f0 = _hz(p)
  tau = _tau(on, lo, hi)
  dec = v["decay"] * (1 + 0.12 * ctx.j[2]) * 2.0 ** (-(p - 60) / 24.0)
  if v["kind"] == "fm":
    r = v["ratio"]
    # Keep FM sidebands below Nyquist: bound the index by the room above the carrier (Carson's rule).
    room = max(0.0, (0.45 * _SR / f0 - 1.0) / r - 1.0)
    index0 = min(v["index"] * (0.4 + 0.9 * vel) * (1 + 0.1 * ctx.j[1]), room)
    index = index0 * np.exp(-tau / _F32(v["index_decay"]))
    y = np.sin(_F32(2 * np.pi) * (f0 * tau) + index * np.sin(_F32(2 * np.pi * r * f0) * tau)).astype(_F32)
    y *= np.exp(-tau / _F32(dec))
    tr, ti, td = v["tine"]
    if tr * f0 < 0.4 * _SR and tau[0] < 8 * td:
      y += 0.5 * vel * np.exp(-tau / _F32(td)) * np.sin(
          _F32(2 * np.pi) * (f0 * tau) + ti * np.sin(_F32(2 * np.pi * tr * f0) * tau))
    return y * _attack(tau, 0.001) * _release(on, off, lo, hi, v["release"]) * _vel_amp(vel) * 0.5
  kmax = max(1, min(28, int(10000.0 / f0)))
  k = np.arange(1, kmax + 1)
  b = v["inharm"] * 2.0 ** ((p - 60) / 24.0)
  fk = k * f0 * np.sqrt(1.0 + b * k * k)
  amps = k ** -(v["slope"] * (1 + 0.08 * ctx.j[1]) - 0.5 * vel) * rng.uniform(0.8, 1.2, kmax)
  decays = (1.0 / dec) * (1.0 + v["hf"] * (fk / 1000.0) ** 1.2)
  y = _modal(lo - on, hi - on, fk, amps / np.sqrt(np.sum(amps**2)), decays)
  if v.get("honky"):  # a second, mistuned string set: strong beating
    y += 0.8 * _modal(lo - on, hi - on, fk[:12] * 2.0 ** (v["honky"] / 1200.0), amps[:12] / np.sqrt(np.sum(amps**2)),
                      decays[:12])
  return y * _attack(tau, 0.003) * _release(on, off, lo, hi, v["release"]) * _vel_amp(vel) * 0.7


def _delayed_vibrato(vib, f0, tau64):
  """Extra cycles of a self-vibrato that fades in after `delay`: (rate Hz, depth cents, delay s)."""
  rate, depth, delay = vib
  if not depth:
    return 0.0, 1.0
  tau = tau64.astype(_F32)
  ramp = np.clip((tau - _F32(delay)) / _F32(0.3), 0.0, 1.0)
  w = _F32(2 * np.pi * rate) * tau
  cyc = _F32(depth * np.log(2) / 1200.0 * f0 / (2 * np.pi * rate)) * ramp * (1.0 - np.cos(w))
  am = 1.0 + _F32(0.15 * depth / 20.0) * ramp * np.sin(w)
  return cyc, am


def _bowed_spec(ctx, i, p, vel, on, off, lo, hi):
  """Formant-weighted sawtooth harmonics with a delayed vibrato (on top of the clip's bends)."""
  v, rng = ctx.v, ctx.rng(i)
  f0 = _hz(p) * 2.0 ** (rng.normal(0.0, 2.0) / 1200.0)
  kmax = max(1, int(0.45 * _SR / (f0 * 1.13)))
  k = np.arange(1, kmax + 1)
  amps = k ** -(v["slope"] * (1 + 0.08 * ctx.j[1]) - 0.3 * vel) * _bells(k * f0 * (1 + 0.04 * ctx.j[0]),
                                                                          v["formants"])
  amps /= np.sqrt(np.sum(amps**2))
  tabs = _tables(amps, rng.uniform(0, 2 * np.pi, kmax), _table_size(kmax))
  tau64 = (np.arange(lo, hi) - on) / _SR
  tau = tau64.astype(_F32)
  cyc, am = _delayed_vibrato(v["vib"], f0, tau64)
  ph = ctx.phase(f0, on, lo, hi) + cyc
  y = _wt_read(tabs, ph)
  if v.get("chorus"):  # a section: a second player a few cents off
    y = 0.6 * (y + _wt_read(tabs, ph * 2.0 ** (v["chorus"] / 1200.0) + 0.37))
  y += v["noise"] * _noise((0, 0, 0.1, 0.4, 0.7, 0.6, 0.3, 0.1), rng.integers(_NOISE_LEN), lo - on, hi - on)
  env = _attack(tau, v["attack"] * (1.3 - 0.6 * vel)) * am
  return y * env * _release(on, off, lo, hi, v["release"]) * _vel_amp(vel)


def _flute_spec(ctx, i, p, vel, on, off, lo, hi):
  """Near-sine with weak upper harmonics, breath noise, chiff and a slow attack."""
  v, rng = ctx.v, ctx.rng(i)
  f0 = _hz(p) * 2.0 ** (rng.normal(0.0, 3.0) / 1200.0)
  h = np.asarray(v["harm"], np.float64)
  kmax = max(1, min(len(h), int(0.45 * _SR / (f0 * 1.13))))
  amps = h[:kmax] * (0.6 + 0.8 * vel) ** np.arange(kmax)  # overblown: louder is brighter
  tabs = _tables(amps / np.sqrt(np.sum(amps**2)), rng.uniform(0, 2 * np.pi, kmax), 256)
  tau64 = (np.arange(lo, hi) - on) / _SR
  tau = tau64.astype(_F32)
  cyc, am = _delayed_vibrato(v["vib"], f0, tau64)
  y = _wt_read(tabs, ctx.phase(f0, on, lo, hi) + cyc)
  breath = v["breath"] * (1 + 0.2 * ctx.j[1]) + v["chiff"] * np.exp(-tau / _F32(0.03))
  y += breath * _noise(v["bands"], rng.integers(_NOISE_LEN), lo - on, hi - on)
  env = _attack(tau, v["attack"] * (1 + 0.15 * ctx.j[2])) * am
  return y * env * _release(on, off, lo, hi, v["release"]) * _vel_amp(vel) * 0.9


_LEVELS = 5  # trumpet brightness tables over envelope level 0..1


def _trumpet_spec(ctx, i, p, vel, on, off, lo, hi):
  """Brass: strong harmonics whose count grows with level, during the attack and with velocity."""
  v, rng = ctx.v, ctx.rng(i)
  f0 = _hz(p) * 2.0 ** (rng.normal(0.0, 2.0) / 1200.0)
  kmax = max(1, int(0.45 * _SR / (f0 * 1.13)))
  k = np.arange(1, kmax + 1)
  fk = k * f0
  levels = np.linspace(0.0, 1.0, _LEVELS)[:, None]
  width = v["floor"] + v["bright"] * (1 + 0.1 * ctx.j[1]) * levels**1.5
  amps = np.exp(-(k - 1) / width) * (1.0 + np.exp(-0.5 * (np.log2(fk / v["formant"][0]) / v["formant"][1]) ** 2))
  if v.get("thin"):
    amps *= np.clip(fk / 1200.0, 0.1, 1.0)  # the mute thins the low end
  amps /= np.sqrt(np.sum(amps[-1] ** 2))
  tabs = _tables(amps, np.zeros(kmax), _table_size(kmax))
  tau64 = (np.arange(lo, hi) - on) / _SR
  tau = tau64.astype(_F32)
  # Lip scoop: the pitch starts a little flat and settles in ~40 ms.
  scoop = v["scoop"] * np.log(2) / 1200.0 * f0 * 0.04 * (np.exp(-tau64 / 0.04) - 1.0)
  cyc, am = _delayed_vibrato(v["vib"], f0, tau64)
  ph = ctx.phase(f0, on, lo, hi) + scoop + cyc
  att = v["attack"] * (1.2 - 0.5 * vel)
  env = _attack(tau, att) * (1.0 + 0.25 * np.exp(-tau / _F32(att * 2))) * am * _release(on, off, lo, hi,
                                                                                        v["release"])
  pos = env * (0.45 + 0.55 * vel) * (_LEVELS - 1)
  y = np.zeros(len(tau), _F32)
  for d in v["voices"]:
    y += _wt_read(tabs, ph * 2.0 ** (d / 1200.0) + 0.29 * d, pos)
  y /= np.sqrt(len(v["voices"]))
  y += 0.02 * np.exp(-tau / _F32(0.02)) * _noise((0, 0, 0.1, 0.4, 0.8, 0.6, 0.2, 0), rng.integers(_NOISE_LEN),
                                                 lo - on, hi - on)
  return y * env * _vel_amp(vel) * 0.8


_BARS = np.array([1, 3, 2, 4, 6, 8, 10, 12, 16])  # drawbar footages as harmonics of the 16' (f0 / 2)


def _organ_spec(ctx, i, p, vel, on, off, lo, hi):
  """Drawbar organ: octave/fifth partials of f0/2, key click, no decay, optional percussion and Leslie."""
  v, rng = ctx.v, ctx.rng(i)
  f0 = _hz(p)
  sub = f0 / 2.0
  kmax = int(0.45 * _SR / sub)
  bars = np.asarray(v["bars"], np.float64)
  amps = np.zeros(max(kmax, 1))
  for level, h in zip(bars, _BARS):
    if h <= kmax and level:
      amps[h - 1] += 10.0 ** ((level - 8) * 3.0 / 20.0)  # each drawbar step is 3 dB
  if not amps.any():
    amps[1] = 1.0
  amps /= np.sqrt(np.sum(amps**2))
  tabs = _tables(amps, np.zeros(len(amps)), _table_size(len(amps)))
  tau64 = (np.arange(lo, hi) - on) / _SR
  tau = tau64.astype(_F32)
  ph = ctx.phase(sub, on, lo, hi)
  y = _wt_read(tabs, ph)
  if v.get("reed"):  # two reeds a few cents apart beat
    y = 0.6 * (y + _wt_read(tabs, ph * 2.0 ** (v["reed"] / 1200.0) + 0.5))
  lvl, harm, pd = v["perc"]
  if lvl and harm * f0 < 0.45 * _SR:
    y += lvl * vel * _modal(lo - on, hi - on, [harm * f0], [1.0], [1.0 / pd])
  rate, depth = v["leslie"]
  if depth:
    y *= 1.0 + depth * np.sin(_F32(2 * np.pi * rate) * ((np.arange(lo, hi) / _SR) % 1000.0).astype(_F32))
  nz = 0.0
  if v["click"] and tau[0] < 0.02:
    nz = v["click"] * np.exp(-tau / _F32(0.002)) * (tau < 0.02)
  if v.get("chiff"):
    nz = nz + v["chiff"] * np.exp(-tau / _F32(0.04))
  if not np.isscalar(nz):
    y += nz * _noise((0, 0.1, 0.3, 0.6, 0.8, 0.6, 0.3, 0.1), rng.integers(_NOISE_LEN), lo - on, hi - on)
  # Organs barely respond to velocity; GM organ patches (and the soundfont) do, linearly here.
  return y * _attack(tau, v["attack"]) * _release(on, off, lo, hi, v["release"]) * 0.5 * vel


def _drum_spec(ctx, i, p, vel, on, off, lo, hi):
  """Analog-style kit: sine sweeps, two-oscillator snares, metallic partial clusters and filtered noise."""
  v, rng = ctx.v, ctx.rng(i)
  kind, _ = _drum_piece("spectral", v, p)
  tau = _tau(on, lo, hi)
  a, b = lo - on, hi - on
  off_n = rng.integers(_NOISE_LEN)
  tune = 1.0 + 0.03 * ctx.j[0]
  dec = 1.0 + 0.12 * ctx.j[1]

  def sweep(f_start, f_end, t_sweep, d):
    ph = _F32(2 * np.pi) * (f_end * tau + (f_start - f_end) * t_sweep * (1.0 - np.exp(-tau / _F32(t_sweep))))
    return np.sin(ph).astype(_F32) * np.exp(-tau / _F32(d))

  def metal(n_osc, spread, d, level):
    # 808-style metal: square-ish oscillators (odd harmonics) in inharmonic ratios, kept in 5-14 kHz.
    fr = []
    for o in range(n_osc):
      fo = v["metal"] * tune * (1.0, 1.4826, 1.7995, 2.5439, 2.6306, 3.8954)[o % 6] * spread
      h = np.arange(1, 80, 2) * fo
      fr.extend(h[(h > 5000) & (h < 14000)][:3])
    fr = np.asarray(fr)
    return _modal(lo - on, hi - on, fr, level * np.ones(len(fr)) / np.sqrt(max(len(fr), 1)), np.full(len(fr), 1.0 / d),
                  np.arange(len(fr)) * 1.3)

  if kind == "kick":
    fs, fe, ts, d, click, drive = v["kick"]
    y = sweep(fs * tune, fe * tune, ts, d * dec)
    if drive:
      y = np.tanh(y * (1.0 + drive * vel)) / np.tanh(1.0 + drive * vel)
    y += click * np.exp(-tau / _F32(0.0015)) * _noise((0, 0, 0, 0.3, 0.7, 1.0, 0.6, 0.2), off_n, a, b)
    return y * _vel_amp(vel)
  if kind == "snare":
    f1, f2, d, nl, nd = v["snare"]
    y = 0.6 * sweep(f1 * 1.3 * tune, f1 * tune, 0.01, d * dec) + 0.35 * sweep(f2 * tune, f2 * tune, 0.01,
                                                                             d * 0.7 * dec)
    y += nl * np.exp(-tau / _F32(nd * dec)) * _noise((0, 0, 0, 0.1, 0.4, 0.8, 1.0 * vel, 0.5), off_n, a, b) * 0.6
    return y * _vel_amp(vel)
  if kind == "tom":
    lo_f, hi_f, d = v["tom"]
    f = lo_f * (hi_f / lo_f) ** (_TOM_KEYS.index(p) / 5.0 if p in _TOM_KEYS else 0.5) * tune
    return sweep(f * 1.5, f, 0.04, d * dec) * _vel_amp(vel)
  if kind in ("hat", "open"):
    ml, nl, closed, opened = v["hat"]
    d = (opened if kind == "open" else closed * (0.7 if p == 44 else 1.0)) * dec
    y = metal(6, 1.0, d, 0.5 * ml) + 0.5 * nl * _noise((0, 0, 0, 0, 0.05, 0.3, 1.0, 0.8), off_n, a, b) * np.exp(
        -tau / _F32(d))
    return y * _vel_amp(vel) * (0.6 if p == 44 else 1.0)
  if kind in ("crash", "ride"):
    d = v["cym"] * dec * (0.45 if p == 55 else 1.0) * (0.8 if kind == "ride" else 1.0)
    ml = 0.6 if kind == "ride" else 0.3
    y = metal(6, 0.8 if kind == "ride" else 1.1, d, ml)
    y += (0.3 if kind == "ride" else 0.7) * _noise((0, 0, 0, 0.1, 0.3, 0.7, 1.0, 0.7), off_n, a, b) * np.exp(
        -tau / _F32(d * 0.7))
    return y * _vel_amp(vel) * 0.8
  if kind == "clap":
    env = np.zeros(len(tau), _F32)
    for t0 in (0.0, 0.01, 0.02):
      env += np.where(tau >= t0, np.exp(-np.maximum(tau - t0, 0) / _F32(0.004)), 0).astype(_F32)
    env += 0.5 * np.exp(-tau / _F32(0.12))
    return env * _noise((0, 0, 0, 0.6, 1.0, 0.6, 0.1, 0), off_n, a, b) * _vel_amp(vel) * 0.6
  y = _modal(lo - on, hi - on, np.array([800.0, 1700.0]) * tune, np.array([0.6, 0.4]), np.array([70.0, 90.0]))
  return y * _vel_amp(vel)


# --- render -------------------------------------------------------------------------

_SYNTHS = {
    "physical": {"guitar": _guitar_phys, "drum": _drum_phys, "violin": _bowed_phys, "piano": _piano_phys,
                 "cello": _bowed_phys},
    "spectral": {"guitar": _guitar_spec, "drum": _drum_spec, "violin": _bowed_spec, "piano": _piano_spec,
                 "flute": _flute_spec, "trumpet": _trumpet_spec, "cello": _bowed_spec, "organ": _organ_spec},
}

# Per-voice output gain, measured (experiments/bench_engines.py --levels) so a clip's RMS matches the
# soundfont's render of the same notes.
_LEVEL = {
    ("physical", "guitar"): (0.0629, 0.0366, 0.1068, 0.0443, 0.0224),
    ("physical", "drum"): (0.0509, 0.0512, 0.0721, 0.0355, 0.0560),
    ("physical", "violin"): (0.0912, 0.0894, 0.0914, 0.0910, 0.0919),
    ("physical", "piano"): (0.0851, 0.0980, 0.1066, 0.1404, 0.0846),
    ("physical", "cello"): (0.0972, 0.0957, 0.0955, 0.0976, 0.0979),
    ("spectral", "guitar"): (0.0432, 0.0478, 0.0373, 0.1374, 0.0445),
    ("spectral", "drum"): (0.0460, 0.0434, 0.0563, 0.0845, 0.0251),
    ("spectral", "violin"): (0.0817, 0.0956, 0.0816, 0.0817, 0.0799),
    ("spectral", "piano"): (0.0705, 0.0695, 0.1037, 0.0797, 0.0696),
    ("spectral", "flute"): (0.0767, 0.0726, 0.0755, 0.0755, 0.0747),
    ("spectral", "trumpet"): (0.0533, 0.0515, 0.0507, 0.0541, 0.0567),
    ("spectral", "cello"): (0.0894, 0.0883, 0.1088, 0.0878, 0.0867),
    ("spectral", "organ"): (0.0671, 0.0659, 0.0649, 0.0728, 0.0648),
}


_FADE = int(0.01 * _SR)


def _note_tail(engine, family, v, p):
  """Seconds a note sounds after its end (melodic), or after its onset (drums)."""
  if family == "drum":
    return _drum_piece(engine, v, p)[1]
  return min(_TAIL_MAX, _REL_SPAN * v["release"])


def _between(a, b, w):
  """A setting w of the way from a to b (w outside 0..1 goes beyond them): geometric between positive
  numbers, linear otherwise (never below 0 when both are >= 0), elementwise through equal-shaped
  tuples; anything else (names, flags, tuples of other shapes) stays a."""
  if isinstance(a, bool) or isinstance(b, bool):
    return a
  if isinstance(a, (int, float)) and isinstance(b, (int, float)):
    if a > 0 and b > 0:
      return float(a * (b / a) ** w)
    x = float(a + w * (b - a))
    return max(x, 0.0) if a >= 0 and b >= 0 else x
  if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
    return tuple(_between(x, y, w) for x, y in zip(a, b))
  return a


def blend_voice(engine: str, family: str, voice: int, spread: float, key: tuple[int, ...]) -> tuple[dict, float]:
  """A voice of its own for one clip: each setting of `voice` moved a random way towards (or past) the
  same setting of another voice of its pool, and its output level likewise.

  Each setting draws its own weight, uniform in [-spread, 1 + spread] (0 is `voice`, 1 the other),
  from `default_rng([*key, 2, 0])`, so the clip always gets the same voice. spread=0 still blends
  (inside the two voices); `render(..., spread=0)` does not call this and plays `voice` itself.
  Returns (the voice's settings, its output level).
  """
  base = _voice(engine, family, voice)
  mates = VOICES[engine][base["pool"]][family]
  rng = np.random.default_rng([*(int(k) for k in key), 2, 0])
  mate = int(mates[rng.integers(len(mates))])
  other = _VOICE_TABLES[engine][family][mate]
  out = dict(base, name=f"{base['name']} ~ {other['name']}")
  for k, a in base.items():  # one draw per shared setting, in the voice's order
    if k not in ("name", "pool") and k in other:
      out[k] = _between(a, other[k], rng.uniform(-spread, 1 + spread))
  levels = _LEVEL[(engine, family)]
  level = float(np.sqrt(levels[int(voice)] * levels[mate]))  # settings moved both ways: the geometric mean
  return out, level


def render(engine: str, family: str, voice: int, notes: np.ndarray, bends: np.ndarray,
           start: float, stop: float, key: tuple[int, ...], spread: float = 0.0) -> np.ndarray:
  """Mono float32 [round((stop - start) * MODEL_RATE)] of clip time [start, stop).

  Args:
    engine: "physical" or "spectral" ("soundfont" renders in synth.py).
    family: one of families_of(engine).
    voice: a voice id of VOICES[engine][pool][family].
    notes: rows (midi_pitch, velocity 1..127, start_s, end_s) in clip time.
    bends: rows (time_s, value -8192..8191): +-2 semitone pitch bend, a step function.
    start, stop: the window of clip time to render.
    key: integers that seed all randomness (per-clip timbre jitter, per-note noise).
    spread: 0 plays `voice`; above 0 the clip gets a voice of its own between `voice` and
      another of its pool, reaching `spread` beyond them (blend_voice).

  Raises:
    ValueError: an unknown engine, family or voice.
  """
  if spread > 0:
    v, level = blend_voice(engine, family, voice, spread, key)
  else:
    v, level = _voice(engine, family, voice), _LEVEL[(engine, family)][int(voice)]
  fn = _SYNTHS[engine][family]
  notes = np.asarray(notes, np.float64).reshape(-1, 4)
  bends = np.asarray(bends, np.float64).reshape(-1, 2)
  n = int(round((stop - start) * _SR))
  out = np.zeros(max(n, 0), _F32)
  if n <= 0 or not len(notes):
    return out
  n0 = int(round(start * _SR))
  ctx = _Clip(v, bends, n0, n, key)
  for i, (p, vel, s, e) in enumerate(notes):
    on = int(round(s * _SR))
    off = max(int(round(e * _SR)), on + 1)
    tail = int(_note_tail(engine, family, v, int(p)) * _SR)
    last = on + tail if family == "drum" else off + tail
    lo, hi = max(on, n0), min(last, n0 + n)
    if lo >= hi:
      continue
    y = fn(ctx, i, int(p), float(np.clip(vel, 1, 127)) / 127.0, on, off, lo, hi)
    if hi > last - _FADE:  # fade the last 10 ms before the ring-out bound: no truncation click
      y = y * np.minimum((last - np.arange(lo, hi)) / _FADE, 1.0).astype(_F32)
    out[lo - n0:hi - n0] += y
  out *= level
  return out
