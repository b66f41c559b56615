r"""Filling the feature cache with the embedded set: numpy's default BLAS threads against one per fill process.

    python experiments/bench_cache_fill.py [--config=quick] [--clips=120] [--workers=2] [--rounds=2]

Fills the same `--clips` clips of the config's train split (read up to data.max_clip_seconds, as
training reads them) into a fresh temporary cache, `--workers` processes, alternating rounds of
the package's fill (numpy's BLAS at its default thread count) and the same fill with every entry
computed on one BLAS thread (threadpoolctl, which scikit-learn installs). Prints clips/s for each
and their ratio. Not in the package: threadpoolctl's limits are per process, not per thread, so
file fills (threads) entering them at once can leave the process on one thread for good, which
changes every later in-process render (RESULTS.md, "Issue 15, fifth round").
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import numpy as np

from instruments_jax.data import cache


class OneThread(cache.FeatureCache):
  """The package's cache entry, computed on one BLAS thread (safe here: each fill process computes one at a time)."""

  def compute(self, dataset, i):
    import threadpoolctl

    with threadpoolctl.threadpool_limits(1, user_api="blas"):
      return super().compute(dataset, i)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="quick")
  p.add_argument("--clips", type=int, default=120)
  p.add_argument("--workers", type=int, default=2)
  p.add_argument("--rounds", type=int, default=2)
  a = p.parse_args()

  from instruments_jax.configs import get_config
  from instruments_jax.data import sources

  cfg = get_config(a.config)
  ds, train, _ = sources.train_validation(cfg.data)
  picks = np.random.default_rng(0).choice(train, a.clips, replace=False)
  seconds = sum(ds.clips[int(i)].duration for i in picks)
  arms = {"one BLAS thread": OneThread, "default BLAS threads (the package)": cache.FeatureCache}
  got = {name: [] for name in arms}
  for _ in range(a.rounds):
    for name, kind in arms.items():
      root = tempfile.mkdtemp(prefix="fill_bench_")
      try:
        t0 = time.time()
        assert kind(root, cfg.audio).fill(ds, picks, num_workers=a.workers) == []
        got[name].append(a.clips / (time.time() - t0))
      finally:
        shutil.rmtree(root)
  print(f"{a.clips} clips ({seconds:.0f} s of audio, data.max_clip_seconds={cfg.data.max_clip_seconds:g}) of "
        f"`{cfg.name}`'s train split, {a.workers} fill processes, {a.rounds} alternating rounds (process start "
        f"included):")
  print("| fill | clips/s per round |")
  print("|---|---|")
  for name, v in got.items():
    print(f"| {name} | {' / '.join(f'{x:.1f}' for x in v)} |")
  one, default = (np.median(v) for v in got.values())
  print(f"one thread / default: {one / default:.2f}x the clips/s (medians)")


if __name__ == "__main__":
  main()
