"""A second sample library for the embedded set: FluidR3 GM, one small SoundFont per preset.

FluidR3_GM.sf2 (Frank Wen and Toby Smithe, MIT licence, 148 MB) is a General MIDI bank recorded
apart from pretty_midi's TimGM6mb: no sample of one is a sample of the other
(RESULTS.md, "Issue 15, eighth round"). midirenderer parses the whole SoundFont it is handed on
every call, about 4.5 ms per MB here, so the embedded set never hands it the 148 MB file:
`preset(bank, program)` returns a SoundFont holding that one preset, its instruments and their
samples (0.2-12 MB), cut from the big file once and kept in the cache folder.

The SoundFont 2 writing here (`write`, `chunk`, `listed`), the cached-file write (`cached`),
the Debian download (`unpack_debian`) and the command line (`cli`) also serve freepats.py, the
third library.

Where the big file comes from, first found first:
  1. $INSTRUMENTS_JAX_FLUIDR3 (a path to FluidR3_GM.sf2),
  2. /usr/share/sounds/sf2/FluidR3_GM.sf2 (Debian's and Ubuntu's `fluid-soundfont-gm`),
  3. the cache folder, where `fetch()` unpacks Debian's package (`apt-get download`, no root).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile

FILE = "FluidR3_GM.sf2"
SHA256 = "74594e8f4250680adf590507a306655a299935343583256f3b722c48a1bc1cb0"
SYSTEM_PATH = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
DEBIAN_PACKAGE = "fluid-soundfont-gm"
ENV = "INSTRUMENTS_JAX_FLUIDR3"

# SoundFont 2 record layouts (the spec's pdta sub-chunks), in file order.
_RECORDS = {b"phdr": "<20sHHHIII", b"pbag": "<HH", b"pmod": "<HHhHH", b"pgen": "<HH",
            b"inst": "<20sH", b"ibag": "<HH", b"imod": "<HHhHH", b"igen": "<HH", b"shdr": "<20sIIIIIBbHH"}
_INSTRUMENT, _SAMPLE_ID = 41, 53  # the generators that point at an instrument and at a sample
_PAD = 46  # zero sample points the spec asks for after every sample
_LINKED = (2, 4, 8)  # sfSampleType of a right, left or linked sample: wSampleLink names its partner


class SoundfontUnavailable(RuntimeError):
  """FluidR3_GM.sf2 is nowhere this machine can read it."""


def cache_root() -> str:
  from instruments_jax.data import default_root

  return os.path.join(default_root(), "soundfonts")


def _candidates():
  if os.environ.get(ENV):
    yield os.environ[ENV]
  yield SYSTEM_PATH
  yield os.path.join(cache_root(), FILE)


def path() -> str:
  """Returns the path of FluidR3_GM.sf2; raises SoundfontUnavailable, saying how to get it, when there is none."""
  for p in _candidates():
    if os.path.isfile(p):
      return p
  raise SoundfontUnavailable(
      f"the 'fluid' sound engine needs {FILE} (FluidR3 GM, MIT licence) and found none at "
      f"{', '.join(_candidates())}.\n"
      f"  python -m instruments_jax.data.soundfonts --fetch      (Debian/Ubuntu: apt-get download, no root)\n"
      f"  apt-get install {DEBIAN_PACKAGE}                       (puts it at {SYSTEM_PATH})\n"
      f"  export {ENV}=/path/to/{FILE}\n"
      f"or leave the engine out: --config.data.synth_engines=soundfont,physical,spectral")


def fetch() -> str:
  """Returns `path()`; where there is none, downloads Debian's fluid-soundfont-gm and unpacks FluidR3_GM.sf2 into the cache."""
  try:
    return path()
  except SoundfontUnavailable:
    return unpack_debian(DEBIAN_PACKAGE, FILE, os.path.join(cache_root(), FILE), SoundfontUnavailable, ENV)


def unpack_debian(package: str, member: str, dest: str, error=RuntimeError, env: str = "", holds: str = "") -> str:
  """Moves the file or folder `member` of Debian's `package` (`apt-get download`, no root) to `dest`; returns `dest`.

  `holds`: an entry the folder `member` must contain. A package can name several paths `member` (freepats has
  usr/share/doc/freepats beside usr/share/midi/freepats): the one holding it is taken, and a `dest` left
  without it (an earlier fetch that took the docs) is fetched again. Raises `error` saying why when there is
  no apt-get, the download fails or the package holds no such `member`.
  """
  def complete(path):  # `path` is there, and holds `holds` where one is named
    return os.path.exists(os.path.join(path, holds) if holds else path)

  if complete(dest):
    return dest
  if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
    raise error(f"fetching {member} needs apt-get and dpkg-deb (Debian, Ubuntu); elsewhere download "
                f"{member} yourself" + (f" and set {env}" if env else ""))
  parent = os.path.dirname(dest)
  os.makedirs(parent, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=parent) as tmp:
    got = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
    debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
    if got.returncode or not debs:
      raise error(f"apt-get download {package} failed: {(got.stderr or got.stdout).strip()}")
    subprocess.run(["dpkg-deb", "-x", debs[0], "x"], cwd=tmp, check=True)
    found = sorted(os.path.join(r, f) for r, ds, fs in os.walk(os.path.join(tmp, "x")) for f in fs + ds if f == member)
    found = [f for f in found if complete(f)]
    if not found:
      raise error(f"{debs[0]} holds no {member}" + (f" with {holds} in it" if holds else ""))
    if os.path.isdir(dest):
      shutil.rmtree(dest)
    os.replace(found[0], dest)
  return dest


def _chunks(data: bytes, start: int, size: int) -> dict:
  """Maps each sub-chunk tag of the `size` bytes at `start` to (offset of its body, size); LISTs by their type."""
  out, end = {}, start + size
  while start + 8 <= end:
    tag, size = data[start:start + 4], struct.unpack_from("<I", data, start + 4)[0]
    if tag == b"LIST":
      out[data[start + 8:start + 12]] = (start + 12, size - 4)
    else:
      out[tag] = (start + 8, size)
    start += 8 + size + (size & 1)
  return out


def _parse(data: bytes):
  if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
    raise ValueError("not a SoundFont 2 file (no RIFF sfbk header)")
  top = _chunks(data, 12, len(data) - 12)
  info_at, info_size = top[b"INFO"]
  pdta = _chunks(data, *top[b"pdta"])
  tables = {}
  for tag, fmt in _RECORDS.items():
    off, size = pdta[tag]
    step = struct.calcsize(fmt)
    tables[tag] = [list(struct.unpack_from(fmt, data, off + k)) for k in range(0, size, step)]
  smpl_at = _chunks(data, *top[b"sdta"])[b"smpl"][0]
  return data[info_at - 12:info_at + info_size], smpl_at, tables


def subset(data: bytes, keep) -> bytes:
  """Returns a SoundFont 2 file holding only the presets `keep` ((bank, program) pairs) of `data`.

  The presets keep their bank and program, so a MIDI file plays them as it would in the whole
  bank; their instruments and samples (stereo partners included) come along, nothing else.
  """
  info, smpl_at, t = _parse(data)
  keep = set(keep)
  presets = [i for i, r in enumerate(t[b"phdr"][:-1]) if (r[2], r[1]) in keep]
  missing = keep - {(t[b"phdr"][i][2], t[b"phdr"][i][1]) for i in presets}
  if missing:
    raise ValueError(f"no preset (bank, program) {sorted(missing)} in this SoundFont")
  out = {tag: [] for tag in _RECORDS}
  inst_map, sample_map = {}, {}

  def copy_zones(head, bag, mod, gen, i, ref_gen, ref_add):
    heads, bags = t[head], t[bag]
    hb = 3 if head == b"phdr" else 1
    b0, b1 = heads[i][hb], heads[i + 1][hb]
    rec = list(heads[i])
    rec[hb] = len(out[bag])
    out[head].append(rec)
    for b in range(b0, b1):
      out[bag].append([len(out[gen]), len(out[mod])])
      for g in range(bags[b][0], bags[b + 1][0]):
        oper, amount = t[gen][g]
        if oper == ref_gen:
          amount = ref_add(amount)
        out[gen].append([oper, amount])
      out[mod].extend(list(m) for m in t[mod][bags[b][1]:bags[b + 1][1]])

  def add_sample(s):
    # A stereo sample names its partner (wSampleLink); both must come, so the links are followed.
    todo = [s]
    while todo:
      k = todo.pop()
      if k in sample_map:
        continue
      sample_map[k] = len(sample_map)
      if t[b"shdr"][k][9] & 0x7FFF in _LINKED:
        todo.append(t[b"shdr"][k][8])
    return sample_map[s]

  def add_inst(i):
    return inst_map.setdefault(i, len(inst_map))

  for i in presets:
    copy_zones(b"phdr", b"pbag", b"pmod", b"pgen", i, _INSTRUMENT, add_inst)
  for i in list(inst_map):  # in their new order
    copy_zones(b"inst", b"ibag", b"imod", b"igen", i, _SAMPLE_ID, add_sample)
  # The samples, in the order first met, each followed by the spec's 46 zero points.
  samples = sorted(sample_map, key=sample_map.get)
  pcm, at = [], 0
  for k in samples:
    name, start, end, loop0, loop1, rate, pitch, corr, link, kind = t[b"shdr"][k]
    pcm.append(data[smpl_at + 2 * start:smpl_at + 2 * end] + b"\0" * (2 * _PAD))
    shift = at - start
    out[b"shdr"].append([name, at, at + end - start, loop0 + shift, loop1 + shift, rate, pitch, corr,
                         sample_map.get(link, 0) if kind & 0x7FFF in _LINKED else 0, kind])
    at += end - start + _PAD
  return write(info, pcm, out)


def write(info: bytes, pcm: list, tables: dict) -> bytes:
  """Returns a SoundFont 2 file of an INFO LIST chunk, sample data and pdta records.

  `pcm` is the sample data, each sample already followed by its 46 zero points; `tables` maps
  each pdta tag to its records without the terminal one, which this adds (its bag, generator
  and modulator indices close the last zone).
  """
  out = {tag: [list(r) for r in tables[tag]] for tag in _RECORDS}
  out[b"phdr"].append([b"EOP", 0, 0, len(out[b"pbag"]), 0, 0, 0])
  out[b"pbag"].append([len(out[b"pgen"]), len(out[b"pmod"])])
  out[b"pmod"].append([0, 0, 0, 0, 0])
  out[b"pgen"].append([0, 0])
  out[b"inst"].append([b"EOI", len(out[b"ibag"])])
  out[b"ibag"].append([len(out[b"igen"]), len(out[b"imod"])])
  out[b"imod"].append([0, 0, 0, 0, 0])
  out[b"igen"].append([0, 0])
  out[b"shdr"].append([b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0])
  pdta = b"".join(chunk(tag, b"".join(struct.pack(fmt, *r) for r in out[tag])) for tag, fmt in _RECORDS.items())
  body = b"sfbk" + info + listed(b"sdta", chunk(b"smpl", b"".join(pcm))) + listed(b"pdta", pdta)
  return b"RIFF" + struct.pack("<I", len(body)) + body


def chunk(tag: bytes, body: bytes) -> bytes:
  """A RIFF chunk: tag, size, body, padded to an even length."""
  return tag + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def listed(kind: bytes, body: bytes) -> bytes:
  """A RIFF LIST chunk of `kind`."""
  return chunk(b"LIST", kind + body)


def presets(data: bytes) -> list[tuple[int, int, str]]:
  """Returns (bank, program, name) of every preset of a SoundFont."""
  _, _, t = _parse(data)
  return [(r[2], r[1], r[0].split(b"\0")[0].decode("latin-1")) for r in t[b"phdr"][:-1]]


def _digest(p: str) -> str:
  h = hashlib.sha256()
  with open(p, "rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      h.update(block)
  return h.hexdigest()


@functools.lru_cache(maxsize=None)
def check() -> str:
  """Returns the path of FluidR3_GM.sf2; raises SoundfontUnavailable when it is missing or another file."""
  p = path()
  digest = _digest(p)
  if digest != SHA256:
    raise SoundfontUnavailable(f"{p} is not the FluidR3_GM.sf2 the embedded set is rendered from "
                               f"(sha256 {digest[:16]}..., expected {SHA256[:16]}...): its clips would differ")
  return p


@functools.lru_cache(maxsize=64)
def preset(bank: int, program: int) -> bytes:
  """Returns a SoundFont of FluidR3's preset (bank, program) alone, cut once and then read from the cache."""
  p = check()

  def cut():
    with open(p, "rb") as f:
      return subset(f.read(), [(bank, program)])

  return cached(os.path.join(cache_root(), f"fluidr3-{SHA256[:12]}", f"b{bank:03d}p{program:03d}.sf2"), cut)


def cached(dest: str, make) -> bytes:
  """Returns the bytes of file `dest`, writing `make()` there first when it is absent.

  Written atomically: processes making the same file at once all read a whole one.
  """
  if not os.path.isfile(dest):
    data = make()
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), suffix=".part")
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(tmp, dest)
  with open(dest, "rb") as f:
    return f.read()


def cli(argv, doc: str, path_fn, fetch_fn, package: str) -> None:
  """A library's command line: prints where it is, or with --fetch fetches it where absent; one line on error."""
  import argparse

  ap = argparse.ArgumentParser(description=doc.splitlines()[0])
  ap.add_argument("--fetch", action="store_true", help=f"download and unpack Debian's {package} if absent")
  args = ap.parse_args(argv)
  try:
    print(fetch_fn() if args.fetch else path_fn())
  except SoundfontUnavailable as e:
    raise SystemExit(f"error: {e}") from None


def main(argv=None):
  cli(argv, __doc__, path, fetch, DEBIAN_PACKAGE)


if __name__ == "__main__":
  main()
