"""FluidR3 against TimGM6mb on the same notes: are its samples its own, how loud, how fast (issue 15).

    python experiments/bench_fluid.py [--clips=16] [--other=PATH.sf2]

For `--clips` train clips of each family (a 2 s window from each clip's middle, or with
`--first=N` each clip's first N s, dry, gain 1)
it renders the notes with TimGM6mb (the `soundfont` engine) and with FluidR3's preset cut to
that program (the `fluid` engine, before its level) and prints per family: the median RMS
ratio FluidR3 / TimGM6mb (what synth.FLUID_LEVEL is set from), the median waveform
correlation and mean log-mel distance between the two (shared samples correlate near 1 and
differ by under a dB), and the median ms per window of each, side by side in one process.
`--other` compares a third SoundFont with TimGM6mb the same way, rendered whole (for banks
that are not FluidR3, e.g. csound's sf_GMbank.sf2).
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np


def _midi(spec, start, stop):
  import pretty_midi

  inst = pretty_midi.Instrument(program=spec.program, is_drum=spec.is_drum)
  for p, v, s, e in spec.notes:
    if s < stop and e > start:
      inst.notes.append(pretty_midi.Note(int(v), int(p), max(s - start, 0.0), min(e, stop) - start))
  pm = pretty_midi.PrettyMIDI(initial_tempo=spec.tempo)
  pm.instruments.append(inst)
  buf = io.BytesIO()
  pm.write(buf)
  return buf.getvalue()


def _render(bank, midi, stereo=False):
  import midirenderer
  import soundfile as sf

  t0 = time.perf_counter()
  wav, _ = sf.read(io.BytesIO(midirenderer.render_wave_from(bank, midi)), dtype="float32", always_2d=True)
  return (wav.reshape(-1) if stereo else wav.mean(axis=1)), (time.perf_counter() - t0) * 1e3


def _logmel(x):
  import librosa

  return librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=48000, n_mels=64), ref=1.0, top_db=80.0)


def main(argv=None):
  from instruments_jax.data import soundfonts, synth

  p = argparse.ArgumentParser()
  p.add_argument("--clips", type=int, default=16, help="train clips per family")
  p.add_argument("--other", default="", help="also compare this SoundFont (whole) with TimGM6mb")
  p.add_argument("--first", type=float, default=0.0,
                 help="render each clip's first N s (any length of clip) instead of a 2 s window from its middle "
                      "(clips of 4 s or more)")
  p.add_argument("--library", default="fluid", choices=["fluid", "freepats"],
                 help="the library compared with TimGM6mb: fluid (FluidR3), or freepats (also compared with FluidR3, "
                      "the 'other' columns)")
  p.add_argument("--stereo", action="store_true", help="RMS over both channels instead of the mono mix: "
                 "`--first=8 --stereo` is how synth.FLUID_LEVEL was measured")
  a = p.parse_args(argv)
  from instruments_jax.data import libraries

  tim = synth._soundfont()
  library = libraries.module(a.library).preset
  other = open(a.other, "rb").read() if a.other else None
  by_family = {f: [] for f in synth.FAMILIES}
  for i in range(4000):
    s = synth.clip_spec(0, "train", i, synth.FAMILIES)
    if (a.first or s.duration >= 4.0) and len(by_family[s.label]) < a.clips:
      by_family[s.label].append(s)
    if all(len(v) >= a.clips for v in by_family.values()):
      break
  print(f"{'family':8s} {'rms F/T':>8s} {'corr':>6s} {'|dB|':>6s} {'Tim ms':>7s} {'Fluid ms':>9s}"
        + ("   other: corr  |dB|" if other or a.library == "freepats" else ""))
  for family, specs in by_family.items():
    ratio, corr, dist, t_tim, t_fl, o_corr, o_dist = [], [], [], [], [], [], []
    for s in specs:
      start = 0.0 if a.first else round(s.duration / 2 - 1.0, 3)
      midi = _midi(s, start, a.first or start + 2.0)
      x, tt = _render(tim, midi, a.stereo)
      y, tf = _render(library(128 if s.is_drum else 0, s.program), midi, a.stereo)
      n = min(len(x), len(y))
      x, y = x[:n], y[:n]
      if np.sqrt(np.mean(x**2)) < 1e-4:
        continue  # a window of silence says nothing
      ratio.append(np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2)))
      corr.append(np.corrcoef(x, y)[0, 1])
      dist.append(np.abs(_logmel(x) - _logmel(y)).mean())
      t_tim.append(tt)
      t_fl.append(tf)
      if other is not None or a.library == "freepats":
        # --other against TimGM6mb; FreePats against FluidR3
        bank, ref = (other, x) if other is not None else (soundfonts.preset(128 if s.is_drum else 0, s.program), y)
        z, _ = _render(bank, midi, a.stereo)
        z = z[:n] if len(z) >= n else np.pad(z, (0, n - len(z)))
        o_corr.append(np.corrcoef(ref, z)[0, 1])
        o_dist.append(np.abs(_logmel(ref) - _logmel(z)).mean())
    line = (f"{family:8s} {np.median(ratio):8.2f} {np.median(corr):6.2f} {np.mean(dist):6.1f} "
            f"{np.median(t_tim):7.1f} {np.median(t_fl):9.1f}")
    if o_corr:
      line += f"   {np.median(o_corr):11.2f} {np.mean(o_dist):5.1f}"
    print(line, flush=True)


if __name__ == "__main__":
  main()
