r"""numpy's BLAS threads and the embedded set's rendering: default threads against one, side by side.

    python experiments/bench_blas_threads.py [--config=quick] [--windows=40] [--rounds=3]

Renders the same `--windows` training windows of the config's embedded train split (engine,
voice, chain and log-mel, as a data worker does) in this process, alternating rounds with
numpy's BLAS at its default thread count and on one thread (threadpoolctl). Prints CPU and wall
milliseconds per window for each and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="quick")
  p.add_argument("--windows", type=int, default=40)
  p.add_argument("--rounds", type=int, default=3)
  a = p.parse_args()

  import threadpoolctl

  from instruments_jax.configs import get_config
  from instruments_jax.data import features, sources

  cfg = get_config(a.config)
  ds, train, _ = sources.train_validation(cfg.data)
  rng = np.random.default_rng(0)
  picks = [int(i) for i in rng.choice(train, a.windows, replace=False)]
  seconds = cfg.audio.training_chunk_seconds
  starts = [float(rng.uniform(0, max(0.0, ds.clips[i].duration - seconds))) for i in picks]

  def render():
    cpu, wall = time.process_time(), time.time()
    for i, s in zip(picks, starts):
      features.log_mel(ds.load(i, s, seconds, cfg.audio.sample_rate), cfg.audio)
    return (time.process_time() - cpu) * 1e3 / len(picks), (time.time() - wall) * 1e3 / len(picks)

  threads = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
  render()  # rooms and voices built, untimed
  arms = {f"default ({threads} threads)": contextlib.nullcontext,
          "one thread": lambda: threadpoolctl.threadpool_limits(1, user_api="blas")}
  got = {name: [] for name in arms}
  for _ in range(a.rounds):
    for name, ctx in arms.items():
      with ctx():
        got[name].append(render())
  print(f"{a.windows} windows of {seconds:g} s from `{cfg.name}`'s train split, {a.rounds} alternating rounds "
        f"(medians):")
  print("| numpy BLAS | CPU ms per window | wall ms per window |")
  print("|---|---|---|")
  med = {name: np.median(np.array(v), axis=0) for name, v in got.items()}
  for name, (cpu, wall) in med.items():
    print(f"| {name} | {cpu:.1f} | {wall:.1f} |")
  (cpu0, wall0), (cpu1, wall1) = med.values()
  print(f"one thread / default: {cpu1 / cpu0:.2f}x the CPU time, {wall1 / wall0:.2f}x the wall time")


if __name__ == "__main__":
  main()
