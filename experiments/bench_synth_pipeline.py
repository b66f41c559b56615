r"""Is rendering the bottleneck of `quick`? The embedded train pipeline alone against the train step alone.

    python experiments/bench_synth_pipeline.py [--config=quick] [--batches=12] [--steps=6] [--mix=...]

One run, this machine: (1) `pipeline.train_batches` of the config's embedded train split with
its data.num_workers worker processes, nothing else running (rooms built first, untimed);
(2) the jitted train step at the config's input shape on random batches. Prints samples/s of
each, the CPU seconds the pipeline spends per sample, and their ratio. Training runs both on
the same cores at once, so a run's samples/s is below both.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="quick")
  p.add_argument("--batches", type=int, default=12)
  p.add_argument("--steps", type=int, default=6)
  p.add_argument("--engines", default=None, help="data.synth_engines (default: the config's)")
  p.add_argument("--chain_prob", type=float, default=None)
  a = p.parse_args()

  from instruments_jax.configs import get_config
  from instruments_jax.data import features, pipeline, sources

  cfg = get_config(a.config)
  if a.engines is not None:
    cfg.data.synth_engines = a.engines
  if a.chain_prob is not None:
    cfg.data.synth_chain_prob = a.chain_prob
  ds, train, _ = sources.train_validation(cfg.data)
  b = cfg.train.batch_size
  it = iter(pipeline.train_batches(ds, train, cfg, 0, 1))
  for _ in range(3):  # workers start, build their rooms
    next(it)
  usage = lambda: sum(resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime
                      for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
  t0, c0 = time.time(), usage()
  for _ in range(a.batches):
    next(it)
  pipe_s = time.time() - t0
  del it
  pipe_rate = a.batches * b / pipe_s

  import jax

  from instruments_jax import step

  s = step.setup(cfg, 100, 0)
  shape = features.input_shape(cfg.audio, cfg.audio.training_chunk_seconds)
  x = np.random.default_rng(0).normal(-40, 15, (b,) + shape).astype(np.float32)
  y = np.arange(b, dtype=np.int32) % len(ds.classes)
  state = s.state
  state, loss = s.train_step(state, step.shard(x, s.mesh), step.shard(y, s.mesh))
  jax.block_until_ready(loss)
  t0 = time.time()
  for _ in range(a.steps):
    state, loss = s.train_step(state, step.shard(x, s.mesh), step.shard(y, s.mesh))
  jax.block_until_ready(loss)
  step_rate = a.steps * b / (time.time() - t0)
  print(f"config {a.config}, engines {cfg.data.synth_engines}, chain share {cfg.data.synth_chain_prob}, "
        f"{cfg.data.num_workers} workers, {os.cpu_count()} cores")
  print(f"pipeline alone: {pipe_rate:.1f} samples/s ({a.batches} batches of {b})")
  print(f"train step alone: {step_rate:.1f} samples/s ({a.steps} steps, bf16={cfg.train.mixed_precision})")
  print(f"pipeline / step: {pipe_rate / step_rate:.2f}x")


if __name__ == "__main__":
  main()
