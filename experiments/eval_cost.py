"""Where `quick`'s validation time goes: rendering and log-mel (the pipeline) vs the model's forward pass.

    python experiments/eval_cost.py [--config=quick] [--workers=2]

Iterates the validation split's evaluation batches once without the model (the pipeline alone),
then runs the jitted predict step over the same batches kept in memory (the model alone), and
prints both with their share: which one "keep rendered features" would save.
"""

import argparse
import time

import numpy as np

import instruments_jax  # noqa: F401
from instruments_jax import step
from instruments_jax.configs import get_config
from instruments_jax.data import pipeline, sources


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="quick")
  p.add_argument("--workers", type=int, default=None, help="data workers (default: the config's)")
  a = p.parse_args()
  cfg = get_config(a.config)
  ds, _, val = sources.train_validation(cfg.data)
  cfg.data.classes = ",".join(ds.classes)
  plan, batches = pipeline.eval_batches(ds, val, cfg, num_workers=a.workers)
  t0 = time.time()
  kept = list(batches)
  t_pipe = time.time() - t0
  s = step.setup(cfg, total_steps=1, seed=0, evaluates=True)
  state = s.state
  run = lambda x: np.asarray(s.predict(state["params"], state["model_state"], step.shard(x, s.mesh)))
  run(kept[0]["x"])  # compile
  t0 = time.time()
  for b in kept:
    run(b["x"])
  t_model = time.time() - t0
  total = t_pipe + t_model
  print(f"{a.config}: {len(val)} validation clips, {len(plan)} chunks in {len(kept)} batches")
  print(f"  pipeline (render/decode + log-mel, {a.workers if a.workers is not None else cfg.data.num_workers} "
        f"workers): {t_pipe:6.1f} s  ({100 * t_pipe / total:.0f}%)")
  print(f"  model forward (jitted, compiled before): {t_model:6.1f} s  ({100 * t_model / total:.0f}%)")


if __name__ == "__main__":
  main()
