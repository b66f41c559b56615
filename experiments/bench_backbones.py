r"""The train step of each `model.backbone` at one config's training shape, side by side in one process.

    python experiments/bench_backbones.py                      # quick's shape: 64 x 173, batch 32, bf16
    python experiments/bench_backbones.py --config=baseline --rounds=3

Each backbone's step is `instruments_jax.profile.build_step` (the jitted, state-donating step
`train` runs: model, AdamW, cosine, loss), on random log-mel batches of the config's training
shape. Every backbone is compiled first; then `--rounds` rounds run them in turn (interleaved,
so machine noise hits all alike), `--steps` steps per turn with one wait at the turn's end. A
backbone's figure is the median over rounds; the ratio is its samples/s over resnet50's. The
data pipeline is not in it: `bench_synth_pipeline.py` measures that.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
  import jax

  from instruments_jax import configs, model
  from instruments_jax.profile import build_step

  p = argparse.ArgumentParser()
  p.add_argument("--config", default="quick")
  p.add_argument("--backbones", default=",".join(model.BACKBONES))
  p.add_argument("--steps", type=int, default=4)
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--precisions", default="", help="bf16,float32: each backbone in each (default: the config's); "
                                                   "bf16 is emulated on CPUs without AVX512-BF16")
  a = p.parse_args(argv)
  runs = {}
  default = "bf16" if configs.get_config(a.config).train.mixed_precision else "float32"
  precisions = a.precisions.split(",") if a.precisions else [default]
  for backbone in a.backbones.split(","):
    for precision in precisions:
      cfg = configs.get_config(a.config)
      with cfg.unlocked():
        cfg.model.backbone, cfg.model.weights = backbone, "none"
        cfg.train.mixed_precision = precision == "bf16"
      name = f"{backbone} {precision}" if len(precisions) > 1 else backbone
      step, state, x, y = build_step(cfg, cfg.train.batch_size)
      t0 = time.perf_counter()
      state, metrics = step(state, x, y)
      jax.block_until_ready(metrics)
      params = sum(v.size for v in jax.tree_util.tree_leaves(state["params"]))
      runs[name] = {"step": step, "state": state, "compile_s": time.perf_counter() - t0, "params": params,
                    "times": [], "batch": cfg.train.batch_size, "shape": x.shape}
  for _ in range(a.rounds):
    for r in runs.values():
      t0 = time.perf_counter()
      for _ in range(a.steps):
        r["state"], metrics = r["step"](r["state"], x, y)
      jax.block_until_ready(metrics)
      r["times"].append((time.perf_counter() - t0) / a.steps)
  base_name = next((n for n in runs if n.startswith("resnet50")), next(iter(runs)))
  base = runs[base_name]
  print(f"config {a.config}: input {tuple(next(iter(runs.values()))['shape'])}, "
        f"{'/'.join(precisions)}, {jax.devices()[0].device_kind}; "
        f"median of {a.rounds} rounds of {a.steps} steps")
  print(f"| backbone | weights | compile + first step | step | samples/s | vs {base_name} |")
  print("|---|---|---|---|---|---|")
  for name, r in runs.items():
    t = statistics.median(r["times"])
    ratio = f"{statistics.median(base['times']) / t:.2f}x"
    print(f"| {name} | {r['params'] / 1e6:.2f} M | {r['compile_s']:.1f} s | {t * 1000:.0f} ms | "
          f"{r['batch'] / t:.1f} | {ratio} |")


if __name__ == "__main__":
  main()
