"""Times engines.render on 2 s windows of typical synth clips, and compares levels with the soundfont.

    taskset -c 1 python experiments/bench_engines.py [--clips=2] [--levels]

For every (engine, family) it renders a 2 s window of `--clips` clips of each
style of the family (voices cycling), best of 3 runs each, and prints the mean
and worst ms per window. With --levels it also prints, per voice, the RMS ratio
engine / soundfont (synth's render of the same notes, mono, gain 1) over the
same windows: the numbers _LEVEL in engines.py is set from.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from instruments_jax.data import engines, synth


def _clips(per_style):
  """Clips of at least 4 s, `per_style` of each (family, style), from the train split."""
  got = {}
  for i in range(3000):
    s = synth.clip_spec(0, "train", i, synth.FAMILIES)
    if s.duration < 4.0:
      continue
    lst = got.setdefault((s.label, s.style), [])
    if len(lst) < per_style:
      lst.append(s)
    if len(got) == sum(len(v) for v in synth.STYLES.values()) and all(len(v) >= per_style for v in got.values()):
      break
  return got


def _window(s):
  # The window the pipeline would take from the middle of the clip.
  start = round(min(max(s.duration / 2 - 1.0, 0.0), s.duration - 2.0), 3)
  return start, start + 2.0


def _soundfont_rms(s, start, stop):
  x = synth.render(dataclasses.replace(s, gain=1.0), start, stop - start)  # dry: the soundfont mix has no chain
  return float(np.sqrt(np.mean(x.mean(axis=1) ** 2)))


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--clips", type=int, default=2, help="clips per style")
  p.add_argument("--levels", action="store_true", help="also measure RMS against the soundfont")
  a = p.parse_args(argv)
  clips = _clips(a.clips)
  engines.render("physical", "drum", 0, np.zeros((0, 4)), np.zeros((0, 2)), 0, 1, (0,))  # build tables
  engines._noise_bank()
  sf = {}
  if a.levels:
    for (fam, style), lst in clips.items():
      for s in lst:
        sf[s.index] = _soundfont_rms(s, *_window(s))
  print(f"{'engine':9s} {'family':8s} {'mean ms':>8s} {'worst ms':>9s}  worst style   (2 s window, 1 core)")
  for engine in ("physical", "spectral"):
    for fam in engines.families_of(engine):
      n_voices = len(engines.VOICES[engine]["seen"][fam]) + len(engines.VOICES[engine]["unseen"][fam])
      times, worst, ratios = [], (0.0, ""), {v: [] for v in range(n_voices)}
      j = 0
      for style in synth.STYLES[fam]:
        for s in clips.get((fam, style), []):
          start, stop = _window(s)
          voice = j % n_voices
          j += 1
          best = 1e9
          for _ in range(3):
            t0 = time.perf_counter()
            y = engines.render(engine, fam, voice, s.notes, s.bends, start, stop, (0, 1, s.index))
            best = min(best, time.perf_counter() - t0)
          times.append(best * 1e3)
          if best * 1e3 > worst[0]:
            worst = (best * 1e3, style)
          if a.levels:
            for v in range(n_voices):
              y = engines.render(engine, fam, v, s.notes, s.bends, start, stop, (0, 1, s.index))
              ratios[v].append(np.sqrt(np.mean(y**2)) / max(sf[s.index], 1e-6))
      print(f"{engine:9s} {fam:8s} {np.mean(times):8.1f} {worst[0]:9.1f}  {worst[1]}")
      if a.levels:
        med = {v: float(np.median(r)) for v, r in ratios.items()}
        print("   rms ratio engine/soundfont per voice: " + ", ".join(f"{v}: {r:.2f}" for v, r in med.items()))


if __name__ == "__main__":
  main()
