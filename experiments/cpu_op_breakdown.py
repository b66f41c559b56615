r"""Where the CPU time of one train step goes: the XLA ops of a `profile` trace, grouped by kind.

    python -m instruments_jax.profile --config=baseline --config.model.weights=none \
        --config.train.mixed_precision=false --frames=256 --trace_dir=/tmp/trace_fp32
    python experiments/cpu_op_breakdown.py /tmp/trace_fp32

XLA: the events of the XLA:CPU worker threads (`tf_XLAEigen/...`) in the newest .xplane.pb, grouped
by thunk kind (the HLO name without its number: ynn_fusion = convolutions and dots in YNNPACK,
transpose_copy_fusion = layout transposes, ...), per step (`--steps` = the profile's trace_steps),
summed over threads. With `--device=gpu` (a trace taken on a GPU): the kernels of the GPU planes
(`/device:GPU:N`): per line (XLA Modules, XLA Ops, each stream), the busy time per step against
the step's wall time, then the `XLA Ops` events grouped by HLO kind and the kernels that took
longest; what it cannot find it says, naming the planes and lines it saw. (torch.profiler was tried for the PyTorch side: on this machine it slowed
the eager step about 20x, so its per-op figures said nothing about the unprofiled step.)
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re

os.environ.setdefault("KERAS_BACKEND", "jax")


def newest_xplane(trace_dir):
  """The newest `profile` trace under `trace_dir`; exits saying so where there is none."""
  paths = sorted(glob.glob(os.path.join(trace_dir, "plugins", "profile", "*", "*.xplane.pb")), key=os.path.getmtime)
  if not paths:
    raise SystemExit(f"no .xplane.pb under {trace_dir}")
  return paths[-1]


def jax_breakdown(trace_dir, steps, top):
  from jax.profiler import ProfileData

  path = newest_xplane(trace_dir)
  total, count = collections.Counter(), collections.Counter()
  for plane in ProfileData.from_file(path).planes:
    for line in plane.lines:
      if not line.name.startswith("tf_XLAEigen"):
        continue
      for e in line.events:
        if e.name.startswith(("ThunkExecutor", "SlinkyThreadPool", "end: ")):
          continue
        kind = re.sub(r"\.\d+$", "", e.name)
        total[kind] += e.duration_ns
        count[kind] += 1
  s = sum(total.values())
  print(f"{path}\nXLA op time per step, summed over worker threads: {s / 1e6 / steps:.0f} ms\n")
  print("| thunk kind | ms / step | share | calls / step |\n|---|---|---|---|")
  for kind, ns in total.most_common(top):
    print(f"| {kind} | {ns / 1e6 / steps:.1f} | {100 * ns / s:.1f}% | {count[kind] // steps} |")


def gpu_breakdown(trace_dir, steps, top):
  from jax.profiler import ProfileData

  path = newest_xplane(trace_dir)
  planes = list(ProfileData.from_file(path).planes)
  gpus = [p for p in planes if p.name.startswith("/device:GPU")]
  print(f"{path}\nplanes: {', '.join(p.name for p in planes)}")
  for plane in gpus:
    lines = [(line.name, list(line.events)) for line in plane.lines]
    print(f"\n{plane.name}: lines {', '.join(f'{name} ({len(ev)})' for name, ev in lines)}")
    print("| line | busy ms / step | span ms / step | events / step |\n|---|---|---|---|")
    for name, ev in lines:
      if not ev:
        continue
      busy = sum(e.duration_ns for e in ev)
      span = max(e.start_ns + e.duration_ns for e in ev) - min(e.start_ns for e in ev)
      print(f"| {name} | {busy / 1e6 / steps:.2f} | {span / 1e6 / steps:.2f} | {len(ev) // steps} |")
    ops = [ev for name, ev in lines if name == "XLA Ops"]
    streams = [ev for name, ev in lines if name.startswith("Stream")]
    for title, group in (("XLA op kind", ops), ("kernel", streams)):
      total, count = collections.Counter(), collections.Counter()
      for ev in group:
        for e in ev:
          kind = re.sub(r"\.\d+$", "", e.name) if title == "XLA op kind" else e.name[:90]
          total[kind] += e.duration_ns
          count[kind] += 1
      s = sum(total.values())
      if not s:
        print(f"\n(no {title} events)")
        continue
      print(f"\n{s / 1e6 / steps:.2f} ms / step of {title} time\n| {title} | ms / step | share | calls / step |\n|---|---|---|---|")
      for kind, ns in total.most_common(top):
        print(f"| {kind} | {ns / 1e6 / steps:.3f} | {100 * ns / s:.1f}% | {count[kind] / steps:g} |")
  if not gpus:
    print("no GPU plane in this trace")


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("trace_dir")
  p.add_argument("--steps", type=int, default=2)
  p.add_argument("--top", type=int, default=12)
  p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
  a = p.parse_args()
  (gpu_breakdown if a.device == "gpu" else jax_breakdown)(a.trace_dir, a.steps, a.top)


if __name__ == "__main__":
  main()
