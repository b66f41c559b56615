r"""What bf16, buffer donation and a per-step host sync do to our train step, in one process, interleaved.

    python experiments/step_ablation.py --config=quick           # 64 x 173, batch 32
    python experiments/step_ablation.py --config=baseline --frames=256 --batch=8

Variants (all built by `instruments_jax.profile.build_step`, i.e. `train`'s own step):
  fp32            the config in float32, state donated, one host sync per round (as `train`)
  fp32_nodonate   the same step jitted without donate_argnums
  fp32_syncstep   the same step, the loss read on the host after every step (`float(loss)`)
  bf16            Keras' mixed_bfloat16 policy (`train.mixed_precision=true`, as `baseline`)
Every variant starts from the same initial weights (same seed) and batch; the losses of the
first steps are compared with fp32's. Step time: median of `--rounds` interleaved rounds of
`--steps` steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="quick")
  p.add_argument("--frames", type=int, default=0)
  p.add_argument("--batch", type=int, default=0)
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--check_steps", type=int, default=3)
  p.add_argument("--variants", default="fp32,fp32_nodonate,fp32_syncstep,bf16")
  a = p.parse_args()

  import jax

  from instruments_jax import configs
  from instruments_jax.profile import build_step

  runs = {}
  for name in a.variants.split(","):
    cfg = configs.get_config(a.config)
    with cfg.unlocked():
      cfg.model.weights = "none"
      cfg.train.mixed_precision = name.startswith("bf16")
    batch = a.batch or cfg.train.batch_size
    step, state, x, y = build_step(cfg, batch, a.frames or None, donate=not name.endswith("nodonate"))
    t0 = time.perf_counter()
    compiled = step.lower(state, x, y).compile()
    compile_s = time.perf_counter() - t0
    losses = []
    for _ in range(a.check_steps + 1):  # +1: warm-up
      state, loss = compiled(state, x, y)
      losses.append(float(loss))
    runs[name] = {"step": compiled, "state": state, "x": x, "y": y, "batch": batch, "times": [],
                  "losses": losses[:a.check_steps], "compile_s": compile_s, "sync": name.endswith("syncstep")}
    print(f"{name}: input {tuple(x.shape)}, compiled in {compile_s:.1f} s, losses {losses[:a.check_steps]}",
          flush=True)

  for r in range(a.rounds):
    for v in runs.values():
      t0 = time.perf_counter()
      for _ in range(a.steps):
        v["state"], loss = v["step"](v["state"], v["x"], v["y"])
        if v["sync"]:
          float(loss)
      jax.block_until_ready((v["state"], loss))
      v["times"].append((time.perf_counter() - t0) / a.steps)
    print(f"round {r + 1}: " + "  ".join(f"{n} {v['batch'] / v['times'][-1]:.2f}" for n, v in runs.items()),
          flush=True)

  ref = runs.get("fp32")
  print("\n| variant | samples/s | vs fp32 | step (ms) | compile (s) | losses of the first steps vs fp32 |\n"
        "|---|---|---|---|---|---|")
  for name, v in runs.items():
    t = statistics.median(v["times"])
    if ref is None:
      same = "n/a"
    elif v["losses"] == ref["losses"]:
      same = "bitwise equal"
    else:
      same = "max rel. diff " + f"{max(abs(l - r) / abs(r) for l, r in zip(v['losses'], ref['losses'])):.1e}"
    speed = statistics.median(ref["times"]) / t if ref else float("nan")
    print(f"| {name} | {v['batch'] / t:.2f} | {speed:.2f}x | {1e3 * t:.0f} | {v['compile_s']:.1f} | {same} |")


if __name__ == "__main__":
  main()
