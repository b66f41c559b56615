"""A third sample library for the embedded set: FreePats, GUS patches made into small SoundFonts.

FreePats (freepats.opensrc.org, 2004-2006; GPL 2 or later with an exception for compositions,
33 MB) is a General MIDI set of Gravis UltraSound patches recorded apart from TimGM6mb and
FluidR3 (RESULTS.md, "Issue 15, ninth round"). midirenderer plays SoundFonts, not patches, so
`preset(bank, program)` converts the patch of one program (or, for bank 128, the whole drum kit)
into a SoundFont 2 file once and keeps it in the cache folder. The conversion keeps every
sample, its key range, root pitch, tuning, loop and pan; a GUS patch's six-stage envelope is not
carried over: notes release in RELEASE_S seconds (drums ring out for DRUM_RELEASE_S).

FreePats has no patch for some GM programs; those play the nearest program of the same family
(FALLBACK), and every kit plays its one drum kit.

Where the patches come from, first found first:
  1. $INSTRUMENTS_JAX_FREEPATS (the folder holding Tone_000/ and Drum_000/),
  2. /usr/share/midi/freepats (Debian's and Ubuntu's `freepats`),
  3. the cache folder, where `fetch()` unpacks Debian's package (`apt-get download`, no root).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import struct

import numpy as np

from instruments_jax.data import soundfonts

SYSTEM_PATH = "/usr/share/midi/freepats"
DEBIAN_PACKAGE = "freepats"
ENV = "INSTRUMENTS_JAX_FREEPATS"
# The sha256 of `manifest()`: every patch's path and sha256 (Debian's freepats 20060219).
SHA256 = "7daf785b30bd7f98fe4d23b542afad43850d26cec7e98cc44906982dd9c37ead"
# GM programs FreePats lacks, played by the nearest one it has of the same family
FALLBACK = {3: 1, 17: 16, 18: 16, 20: 19, 43: 42, 110: 40}
RELEASE_S = 0.25
DRUM_RELEASE_S = 2.0

_HEADER, _INSTRUMENT, _LAYER, _SAMPLE = 129, 63, 47, 96  # GUS patch record sizes
_SAMPLE_FMT = "<7sBIIIHIIIhB6s6sBBBBBBBHH"
_16BIT, _UNSIGNED, _LOOP, _PINGPONG, _REVERSE = 1, 2, 4, 8, 16  # the sample's mode bits
# SoundFont generators this writes
_PAN, _RELEASE, _INSTRUMENT_GEN, _KEYRANGE, _SCALE, _SAMPLE_ID, _MODES = 17, 38, 41, 43, 56, 53, 54


class PatchesUnavailable(soundfonts.SoundfontUnavailable):
  """FreePats is nowhere this machine can read it."""


def _candidates():
  if os.environ.get(ENV):
    yield os.environ[ENV]
  yield SYSTEM_PATH
  yield os.path.join(soundfonts.cache_root(), "freepats")


def path() -> str:
  """Returns the FreePats folder; raises PatchesUnavailable, saying how to get it, when there is none."""
  for p in _candidates():
    if os.path.isdir(os.path.join(p, "Tone_000")):
      return p
  raise PatchesUnavailable(
      f"the 'freepats' sound engine needs the FreePats patches (GPL) and found none at "
      f"{', '.join(_candidates())}.\n"
      f"  python -m instruments_jax.data.freepats --fetch       (Debian/Ubuntu: apt-get download, no root)\n"
      f"  apt-get install {DEBIAN_PACKAGE}                                (puts them at {SYSTEM_PATH})\n"
      f"  export {ENV}=/path/to/freepats\n"
      f"or leave the engine out of data.synth_engines")


def fetch() -> str:
  """Returns `path()`; where there is none, downloads Debian's freepats and unpacks its patches into the cache."""
  try:
    return path()
  except PatchesUnavailable:
    pass
  return soundfonts.unpack_debian(DEBIAN_PACKAGE, "freepats", os.path.join(soundfonts.cache_root(), "freepats"),
                                  PatchesUnavailable, ENV, holds="Tone_000")


def _files(root: str) -> dict:
  """Maps (bank, number) to a patch file: (0, program) for Tone_000/, (128, note) for Drum_000/."""
  out = {}
  for bank, folder in ((0, "Tone_000"), (128, "Drum_000")):
    for f in sorted(os.listdir(os.path.join(root, folder))):
      if f.endswith(".pat") and f[:3].isdigit():
        out[(bank, int(f[:3]))] = os.path.join(folder, f)
  return out


def manifest(root: str) -> str:
  """Every patch of `root`, one `path sha256` line each, sorted."""
  lines = []
  for rel in sorted(_files(root).values()):
    with open(os.path.join(root, rel), "rb") as f:
      lines.append(f"{rel} {hashlib.sha256(f.read()).hexdigest()}")
  return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=None)
def check() -> str:
  """Returns the FreePats folder; raises PatchesUnavailable when it is missing or holds other patches."""
  p = path()
  digest = hashlib.sha256(manifest(p).encode()).hexdigest()
  if digest != SHA256:
    raise PatchesUnavailable(f"{p} holds other patches than the FreePats the embedded set is rendered from "
                             f"(manifest sha256 {digest[:16]}..., expected {SHA256[:16]}...): its clips would differ")
  return p


def samples(data: bytes, name: str = "patch") -> list[dict]:
  """Parses a GUS patch: one dict per sample (int16 `pcm`, `loop` (start, end) or None, `rate`,
  `low`/`high`/`root` in Hz, `pan` 0..15, `scale` (1024: a semitone a key)). Raises ValueError."""
  if data[:12] not in (b"GF1PATCH110\0", b"GF1PATCH100\0"):
    raise ValueError(f"{name}: not a GUS patch (no GF1PATCH header)")
  off = _HEADER + _INSTRUMENT
  n = data[off + 6]
  off += _LAYER
  out = []
  for _ in range(n):
    (_, _, size, loop0, loop1, rate, low, high, root, _, pan, _, _, _, _, _, _, _, _, modes, _,
     scale) = struct.unpack_from(_SAMPLE_FMT, data, off)
    off += _SAMPLE
    raw = data[off:off + size]
    off += size
    if len(raw) != size:
      raise ValueError(f"{name}: truncated (a sample of {size} bytes runs past the end)")
    if modes & _16BIT:
      pcm = np.frombuffer(raw, "<u2" if modes & _UNSIGNED else "<i2").astype(np.int32)
      loop0, loop1 = loop0 // 2, loop1 // 2
    else:
      pcm = np.frombuffer(raw, "u1" if modes & _UNSIGNED else "i1").astype(np.int32) * 256
    if modes & _UNSIGNED:
      pcm = pcm - 32768
    if modes & _REVERSE:
      pcm = pcm[::-1]
    loop = (loop0, loop1) if modes & _LOOP and 0 <= loop0 < loop1 <= len(pcm) else None
    if loop and modes & _PINGPONG:  # SoundFonts loop forward only: the loop played back and forth, once
      pcm = np.concatenate([pcm[:loop1], pcm[loop0:loop1][::-1]])
      loop = (loop0, loop1 + (loop1 - loop0))
    out.append({"pcm": np.clip(pcm, -32768, 32767).astype("<i2"), "loop": loop, "rate": rate, "low": low / 1000.0,
                "high": high / 1000.0, "root": root / 1000.0, "pan": pan, "scale": scale})
  return out


def _key(hz: float) -> float:
  return 69.0 + 12.0 * math.log2(max(hz, 1e-3) / 440.0)


def _timecents(seconds: float) -> int:
  return int(round(1200.0 * math.log2(seconds)))


def convert(patches: dict, bank: int, program: int, name: str) -> bytes:
  """Returns a SoundFont 2 file whose one preset (bank, program) plays GUS patches.

  `patches` maps a key range (lo, hi) to a patch's bytes: a whole instrument for (0, 127), one
  drum per key for a kit (each plays at its recorded pitch there).
  """
  t = {tag: [] for tag in soundfonts._RECORDS}
  pcm, at = [], 0
  t[b"phdr"].append([name.encode()[:19], program, bank, 0, 0, 0, 0])
  t[b"pbag"].append([0, 0])
  t[b"pgen"].append([_INSTRUMENT_GEN, 0])
  t[b"inst"].append([name.encode()[:19], 0])
  drum = bank == 128
  for (lo, hi), data in sorted(patches.items()):
    for s in samples(data, name):
      if drum:
        keys, root = (lo, hi), float(lo)  # the drum plays at its recorded pitch on its key
      else:
        keys = (max(lo, int(math.ceil(_key(s["low"]) - 1e-6))), min(hi, int(math.floor(_key(s["high"]) - 1e-6))))
        root = _key(s["root"])
      if keys[0] > keys[1]:
        continue  # a sample no key of the range plays
      gens = [[_KEYRANGE, keys[0] | keys[1] << 8]]
      if s["pan"] != 7:
        gens.append([_PAN, int(round((s["pan"] - 7) / 7.0 * 500)) & 0xFFFF])
      gens.append([_RELEASE, _timecents(DRUM_RELEASE_S if drum else RELEASE_S) & 0xFFFF])
      if s["scale"] != 1024 and not drum:
        gens.append([_SCALE, int(round(s["scale"] * 100 / 1024))])
      gens.append([_MODES, 1 if s["loop"] and not drum else 0])  # a drum plays its sample once
      gens.append([_SAMPLE_ID, len(t[b"shdr"])])
      t[b"ibag"].append([len(t[b"igen"]), 0])
      t[b"igen"].extend(gens)
      key = int(math.floor(root + 0.5))
      n = len(s["pcm"])
      loop0, loop1 = s["loop"] or (0, 0)
      t[b"shdr"].append([f"{name[:14]}{len(t[b'shdr']):05d}".encode()[:19], at, at + n, at + loop0, at + loop1,
                         s["rate"], max(0, min(127, key)), int(round((key - root) * 100)), 0, 1])
      pcm.append(s["pcm"].tobytes() + b"\0" * (2 * soundfonts._PAD))
      at += n + soundfonts._PAD
  if not t[b"shdr"]:
    raise ValueError(f"{name}: no sample plays on any key")
  info = soundfonts.listed(b"INFO", soundfonts.chunk(b"ifil", struct.pack("<HH", 2, 1)) +
                           soundfonts.chunk(b"isng", b"EMU8000\0") + soundfonts.chunk(b"INAM", b"FreePats\0\0"))
  return soundfonts.write(info, pcm, t)


def program_of(bank: int, program: int, root: str | None = None) -> int:
  """The FreePats program that plays GM (bank, program): itself, or FALLBACK's; every kit is kit 0."""
  if bank == 128:
    return 0
  files = _files(root or check())
  return program if (0, program) in files else FALLBACK.get(program, program)


@functools.lru_cache(maxsize=64)
def preset(bank: int, program: int) -> bytes:
  """Returns a SoundFont playing FreePats' patch for GM (bank, program), converted once and then read from the cache."""
  root = check()
  files = _files(root)

  def make():
    if bank == 128:
      patches, name = {(note, note): files[(128, note)] for b, note in files if b == 128}, "Drum_000"
    else:
      have = program_of(bank, program, root)
      if (0, have) not in files:
        raise ValueError(f"FreePats has no patch for GM program {program} (nor a fallback)")
      patches, name = {(0, 127): files[(0, have)]}, os.path.basename(files[(0, have)])[4:-4]
    read = {}
    for keys, rel in patches.items():
      with open(os.path.join(root, rel), "rb") as f:
        read[keys] = f.read()
    return convert(read, bank, program, name)

  # keyed by the patches and by this file: a changed conversion never reads an old one's SoundFonts
  return soundfonts.cached(os.path.join(soundfonts.cache_root(), f"freepats-{SHA256[:12]}-{_code()}",
                                        f"b{bank:03d}p{program:03d}.sf2"), make)


@functools.lru_cache(maxsize=1)
def _code() -> str:
  with open(__file__, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()[:8]


def main(argv=None):
  soundfonts.cli(argv, __doc__, path, fetch, DEBIAN_PACKAGE)


if __name__ == "__main__":
  main()
