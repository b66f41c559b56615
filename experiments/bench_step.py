r"""Our jitted train step against PyTorch's, same model, shape, batch and optimizer, in one process.

    python experiments/bench_step.py                       # both shapes, every variant
    python experiments/bench_step.py --shapes=small --rounds=7
    python experiments/bench_step.py --variants=jax_fp32,torch_eager_fp32

Model: ResNet50 with a 1-channel stem and 4 classes. JAX: our `build_model`, `make_optimizer`
(AdamW, cosine) and jitted, state-donating `make_steps` (the code `train` runs), via
`instruments_jax.profile.build_step`. PyTorch: torchvision's `resnet50(num_classes=4)` with
conv1 replaced by a 1-input-channel conv, channels_last, `torch.optim.AdamW` (fused on CUDA),
BCE-with-logits on one-hot targets (our `train.loss`="bce"); eager and `torch.compile`d, in
float32 and in bf16 (JAX: Keras' mixed_bfloat16 policy, as `baseline`; PyTorch: bf16 autocast).

Timing: every variant is built and warmed up (compiled) first; then `--rounds` rounds run the
variants in turn (interleaved, so machine noise hits all of them alike), each turn `--steps`
steps with one wait for the device at the turn's end. A variant's figure is the median over
rounds. Ratios: JAX samples/s over PyTorch samples/s at the same precision (> 1: JAX faster).

PyTorch comes only from the `bench` extra (`pip install -e '.[bench]'`); without it the torch
variants are skipped and the reason printed.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory to PyTorch too
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

SHAPES = {  # name: (mel bins, frames, batch)
    "small": (128, 256, 8),
    "baseline": (128, 5168, 8),  # 60 s at 44.1 kHz, hop 512: the recipe's training input
}
VARIANTS = ("jax_fp32", "jax_bf16", "torch_eager_fp32", "torch_eager_bf16", "torch_compile_fp32",
            "torch_compile_bf16")


def jax_variant(mels, frames, batch, bf16):
  """Returns a zero-argument function that runs one train step and returns something to wait on."""
  import jax

  from instruments_jax import configs
  from instruments_jax.profile import build_step

  cfg = configs.get_config("baseline")
  with cfg.unlocked():
    cfg.model.weights = "none"
    cfg.audio.mel_bins = mels
    cfg.train.batch_size = batch
    cfg.train.mixed_precision = bf16
  step, state, x, y = build_step(cfg, batch, frames, donate=True)
  holder = {"state": state}

  def run():
    holder["state"], loss = step(holder["state"], x, y)
    return loss

  def wait(out):
    jax.block_until_ready(out)

  return run, wait


def torch_variant(mels, frames, batch, bf16, compiled):
  import torch
  import torch.nn.functional as F
  import torchvision

  device = "cuda" if torch.cuda.is_available() else "cpu"
  torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
  torch.manual_seed(0)
  model = torchvision.models.resnet50(num_classes=4)
  model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)  # the 1-channel stem
  model = model.to(device=device, memory_format=torch.channels_last).train()
  opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0, fused=(device == "cuda"))
  forward = torch.compile(model) if compiled else model
  rng = np.random.default_rng(0)
  x = torch.from_numpy((rng.normal(size=(batch, 1, mels, frames)) * 15.0 - 40.0).astype(np.float32))
  x = x.to(device).contiguous(memory_format=torch.channels_last)
  y = torch.from_numpy(rng.integers(0, 4, size=(batch,))).to(device)
  onehot = F.one_hot(y, 4).float()

  def run():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
      logits = forward(x)
    loss = F.binary_cross_entropy_with_logits(logits.float(), onehot)
    loss.backward()
    opt.step()
    return loss

  def wait(out):
    if device == "cuda":
      torch.cuda.synchronize()
    else:
      out.item()

  return run, wait


def device_name():
  import jax

  d = jax.devices()[0]
  name = f"jax {d.platform}:{d.device_kind}"
  try:
    import torch

    name += f"; torch {torch.__version__} " + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else
                                              f"cpu ({torch.get_num_threads()} threads)")
  except Exception:  # noqa: BLE001
    pass
  return name


def bench_shape(shape_name, variants, steps, rounds, warmup):
  mels, frames, batch = SHAPES[shape_name]
  runs, skipped, compile_s = {}, {}, {}
  for v in variants:
    t0 = time.perf_counter()
    try:
      if v.startswith("jax_"):
        run, wait = jax_variant(mels, frames, batch, bf16=v.endswith("bf16"))
      else:
        run, wait = torch_variant(mels, frames, batch, bf16=v.endswith("bf16"), compiled="compile" in v)
      for _ in range(warmup):  # the first call compiles (jit, torch.compile)
        wait(run())
    except ImportError as e:
      skipped[v] = f"{type(e).__name__}: {e} (install the bench extra: pip install -e '.[bench]')"
      print(f"[{shape_name}] {v}: skipped, {skipped[v]}", flush=True)
      continue
    except Exception as e:  # noqa: BLE001  (e.g. torch.compile without a C++ compiler)
      skipped[v] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
      print(f"[{shape_name}] {v}: skipped, {skipped[v]}", flush=True)
      continue
    compile_s[v] = time.perf_counter() - t0
    runs[v] = (run, wait)
    print(f"[{shape_name}] {v}: built and warmed up in {compile_s[v]:.1f} s", flush=True)

  times = {v: [] for v in runs}
  for r in range(rounds):
    for v, (run, wait) in runs.items():
      t0 = time.perf_counter()
      out = None
      for _ in range(steps):
        out = run()
      wait(out)
      times[v].append((time.perf_counter() - t0) / steps)
    print(f"[{shape_name}] round {r + 1}/{rounds}: " +
          "  ".join(f"{v} {batch / times[v][-1]:.2f}" for v in runs) + "  samples/s", flush=True)
  runs.clear()
  gc.collect()
  return {"shape": shape_name, "input": (batch, mels, frames), "steps": steps, "rounds": rounds,
          "samples_per_s": {v: batch / statistics.median(t) for v, t in times.items()},
          "step_s": {v: statistics.median(t) for v, t in times.items()},
          "warmup_s": compile_s, "skipped": skipped}


def report(res):
  b, mels, frames = res["input"]
  lines = [f"shape {res['shape']}: batch {b} x {mels} mels x {frames} frames; median of {res['rounds']} interleaved "
           f"rounds of {res['steps']} step(s)", "",
           "| variant | samples/s | step (ms) | build + warm-up (s) |", "|---|---|---|---|"]
  for v, s in res["samples_per_s"].items():
    lines.append(f"| {v} | {s:.2f} | {1e3 * res['step_s'][v]:.1f} | {res['warmup_s'][v]:.1f} |")
  for v, why in res["skipped"].items():
    lines.append(f"| {v} | skipped: {why} | | |")
  sps = res["samples_per_s"]
  ratios = []
  for prec in ("fp32", "bf16"):
    j = sps.get(f"jax_{prec}")
    for kind in ("eager", "compile"):
      t = sps.get(f"torch_{kind}_{prec}")
      if j and t:
        ratios.append(f"JAX/torch {kind} ({prec}): {j / t:.2f}x")
  best_j = max((s for v, s in sps.items() if v.startswith("jax")), default=None)
  best_t = max((s for v, s in sps.items() if v.startswith("torch")), default=None)
  if best_j and best_t:
    ratios.append(f"best JAX / best torch: {best_j / best_t:.2f}x")
  lines += [""] + ratios
  return "\n".join(lines)


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--shapes", default="small,baseline", help="comma-separated: " + ", ".join(SHAPES))
  p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
  p.add_argument("--steps", type=int, default=1, help="steps per turn (one wait per turn)")
  p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the figure is the median (>= 5)")
  p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant before timing")
  a = p.parse_args()
  print(device_name(), flush=True)
  for shape in a.shapes.split(","):
    res = bench_shape(shape.strip(), [v.strip() for v in a.variants.split(",") if v.strip()], a.steps, a.rounds,
                      a.warmup)
    print("\n" + report(res) + "\n", flush=True)


if __name__ == "__main__":
  main()
