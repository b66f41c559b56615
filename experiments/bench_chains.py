"""Times chains.apply per stage on 3 s stereo windows, mean and p90 over drawn chains.

Run pinned to one core (the machine is shared): `taskset -c 1 python experiments/bench_chains.py`.
Room IRs are built once first (they are cached per process in training too), so the numbers are the
per-window cost. A stage's p90 is over the windows where it ran; "total" is over all windows.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from instruments_jax.data import chains


def bench(rate: int, seconds: float, draws: int, pool: str, preroll: float) -> dict[str, list[float]]:
  rng = np.random.default_rng(0)
  n = int((seconds + preroll) * rate)
  t = np.arange(n) / rate
  # A stereo stand-in for music: a few partials with an on/off envelope and a little noise.
  tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220.0, 330.0, 440.0, 1760.0), 1))
  audio = 0.2 * tone * (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 1.5 * t)))
  audio = np.stack([audio, np.roll(audio, 37)], axis=1).astype(np.float32)
  audio += 0.003 * rng.standard_normal(audio.shape).astype(np.float32)
  drawn = [chains.draw(np.random.default_rng([1, i]), pool) for i in range(draws)]
  for c in {c.room for c in drawn if c.room >= 0}:
    chains.room_ir(c, rate, pool)  # build the bank first: the cache holds it in training
  chains.apply(drawn[0], audio, rate, 0.0, (0,))  # imports and first-call set-up out of the timing
  per_stage: dict[str, list[float]] = {"total": []}
  for i, c in enumerate(drawn):
    times: dict[str, float] = {}
    start = time.perf_counter()
    chains.apply(c, audio, rate, 2.0, (i, 3), stage_times=times)
    per_stage["total"].append(time.perf_counter() - start)
    for k, v in times.items():
      per_stage.setdefault(k, []).append(v)
  return per_stage


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--draws", type=int, default=300)
  parser.add_argument("--seconds", type=float, default=3.0)
  parser.add_argument("--preroll", type=float, default=0.0, help="added to the window (the caller uses up to 1 s)")
  parser.add_argument("--rates", type=int, nargs="+", default=[32000, 48000])
  parser.add_argument("--pool", default="seen", choices=chains.POOLS)
  args = parser.parse_args()
  for rate in args.rates:
    stats = bench(rate, args.seconds, args.draws, args.pool, args.preroll)
    print(f"{args.pool} pool, {rate} Hz, {args.seconds:g} s + {args.preroll:g} s pre-roll stereo, {args.draws} chains")
    print(f"  {'stage':<12} {'runs':>5} {'mean ms':>8} {'p90 ms':>7} {'mean ms/window':>15}")
    order = ["room", "eq", "distortion", "compression", "noise", "level", "codec", "total"]
    for k in order:
      if k not in stats:
        continue
      v = np.array(stats[k]) * 1e3
      print(f"  {k:<12} {len(v):>5} {v.mean():>8.2f} {np.percentile(v, 90):>7.2f} {v.sum() / args.draws:>15.2f}")


if __name__ == "__main__":
  main()
