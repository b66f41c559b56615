r"""XLA:CPU compiler options against our train step, in one process, interleaved.

    python experiments/xla_cpu_flags.py                      # 128 x 256, batch 8, fp32
    python experiments/xla_cpu_flags.py --bf16 --rounds=7

Each variant compiles the same lowered step (`instruments_jax.profile.build_step`, the code
`train` runs) with its own `compiler_options` (XLA DebugOptions, per executable, so all
variants live in one process and share the machine's noise), then: what its optimized HLO holds
(YNNPACK fusions, oneDNN custom calls, convolutions, transposes), whether its losses over the
first steps equal the default's (same start state, same batch), and its step time: the median of
`--rounds` interleaved rounds of `--steps` steps, one wait per round.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VARIANTS = {
    "default": {},
    "ynn_off (Eigen convs/dots)": {"xla_cpu_experimental_ynn_fusion_type": ""},
    "onednn": {"xla_cpu_use_onednn": True, "xla_cpu_experimental_onednn_custom_call": True},
    "xnnpack": {"xla_cpu_use_xnnpack": True},
    "fast_math": {"xla_cpu_enable_fast_math": True},
    "vector_width_512": {"xla_cpu_prefer_vector_width": 512},
}


def hlo_counts(text: str) -> dict:
  return {
      "ynn_fusions": len(re.findall(r"^\s*(?:ROOT )?%?ynn_fusion[.\d]* = ", text, re.M)),
      "onednn_calls": len(re.findall(r'custom_call_target="__onednn', text)),
      "convolutions": len(re.findall(r" convolution\(", text)),
      "transposes": len(re.findall(r" transpose\(", text)),
  }


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--mels", type=int, default=128)
  p.add_argument("--frames", type=int, default=256)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--bf16", action="store_true")
  p.add_argument("--steps", type=int, default=2)
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--check_steps", type=int, default=2, help="steps whose losses are compared to the default's")
  p.add_argument("--variants", default=",".join(VARIANTS))
  a = p.parse_args()

  import jax
  import numpy as np

  from instruments_jax import configs
  from instruments_jax.profile import build_step

  cfg = configs.get_config("baseline")
  with cfg.unlocked():
    cfg.model.weights = "none"
    cfg.audio.mel_bins = a.mels
    cfg.train.batch_size = a.batch
    cfg.train.mixed_precision = a.bf16
  step, state0, x, y = build_step(cfg, a.batch, a.frames, donate=True)
  lowered = step.lower(state0, x, y)
  host_state = jax.device_get(state0)  # every variant starts from these values
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; input {tuple(x.shape)} "
        f"{'bf16' if a.bf16 else 'fp32'}", flush=True)

  runs, ref_losses = {}, None
  for name in a.variants.split(","):
    opts = VARIANTS[name]
    t0 = time.perf_counter()
    try:
      compiled = lowered.compile(compiler_options=opts or None)
    except Exception as e:  # noqa: BLE001  (an option this jaxlib does not know)
      print(f"{name}: does not compile: {type(e).__name__}: {str(e).splitlines()[0]}", flush=True)
      continue
    compile_s = time.perf_counter() - t0
    counts = hlo_counts(compiled.as_text() or "")
    state = jax.device_put(host_state)
    losses = []
    for _ in range(a.check_steps + 1):  # the +1 is a warm-up for timing
      state, loss = compiled(state, x, y)
      losses.append(float(loss))
    losses = losses[:a.check_steps]
    if ref_losses is None:
      ref_losses = losses
    diff = max(abs(l - r) / max(abs(r), 1e-12) for l, r in zip(losses, ref_losses))
    runs[name] = {"compiled": compiled, "state": state, "times": [], "compile_s": compile_s, "counts": counts,
                  "losses": losses, "rel_diff": diff}
    print(f"{name}: compiled in {compile_s:.1f} s; {counts}; losses {np.round(losses, 6).tolist()} "
          f"(max rel. diff to default {diff:.2e})", flush=True)

  for r in range(a.rounds):
    for name, v in runs.items():
      t0 = time.perf_counter()
      for _ in range(a.steps):
        v["state"], loss = v["compiled"](v["state"], x, y)
      jax.block_until_ready(loss)
      v["times"].append((time.perf_counter() - t0) / a.steps)
    print(f"round {r + 1}: " + "  ".join(f"{n} {a.batch / v['times'][-1]:.2f}" for n, v in runs.items()), flush=True)

  base = statistics.median(runs["default"]["times"]) if "default" in runs else None
  print("\n| variant | samples/s | vs default | compile (s) | ynn fusions | oneDNN calls | convolutions | "
        "transposes | loss rel. diff |\n|---|---|---|---|---|---|---|---|---|")
  for name, v in runs.items():
    t = statistics.median(v["times"])
    c = v["counts"]
    print(f"| {name} | {a.batch / t:.2f} | {base / t if base else float('nan'):.2f}x | {v['compile_s']:.1f} | "
          f"{c['ynn_fusions']} | {c['onednn_calls']} | {c['convolutions']} | {c['transposes']} | {v['rel_diff']:.1e} |")


if __name__ == "__main__":
  main()
