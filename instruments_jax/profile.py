r"""Profiles the jitted train step: `python -m instruments_jax.profile --config=NAME`.

    python -m instruments_jax.profile --config=quick
    python -m instruments_jax.profile --config=baseline --config.model.weights=none --steps=5 \
        --trace_dir=/tmp/trace --hlo_dir=/tmp/hlo --json=/tmp/profile.json
    python -m instruments_jax.profile --config=quick --config.train.mixed_precision=true   # bf16
    python -m instruments_jax.profile --config=quick --donate=false --sync=step            # ablations

It builds the model, optimizer and step exactly as `train` does (`step.setup`), feeds random log-mel batches of the config's
training input shape and reports:

- compile time (trace + lower, and XLA compile, measured separately);
- steady-state step time: `--rounds` rounds of `--steps` steps each after
  `--warmup` steps; inside a round the steps are dispatched back to back and the
  host waits once, at the round's end; the step time is the median over rounds
  of round time / steps (with `--sync=step` the host also reads the loss after
  every step, which is what a per-step metric sync costs);
- samples/s; FLOPs per step from the compiled executable's cost analysis;
  achieved FLOP/s; MFU against the peak dense FLOP/s of the accelerator (table
  below; on a CPU, achieved FLOP/s only);
- memory from the compiled memory analysis (arguments, outputs, aliased by
  donation, temporaries) and the device's peak bytes in use (`memory_stats`,
  n/a on CPU, where the process' peak resident memory is given instead).

It writes a `jax.profiler` trace of `--trace_steps` steps into `--trace_dir`
(`plugins/profile/<run>/*.xplane.pb` for TensorBoard's profile plugin or XProf,
and `perfetto_trace.json.gz` for ui.perfetto.dev), StableHLO and optimized HLO
text into `--hlo_dir`, prints a table and writes the same figures as JSON.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time

import instruments_jax  # noqa: F401  (selects the JAX backend)
import jax
import numpy as np
from absl import flags

from instruments_jax import cli, step
from instruments_jax.data import features, sources

_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per round.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Timed rounds; the step time is the median over rounds.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps after compilation.")
_TRACE_STEPS = flags.DEFINE_integer("trace_steps", 2, "Steps recorded in the profiler trace (0: no trace).")
_TRACE_DIR = flags.DEFINE_string("trace_dir", "/tmp/instruments_jax_profile/trace", "Where the jax.profiler trace goes.")
_HLO_DIR = flags.DEFINE_string("hlo_dir", "/tmp/instruments_jax_profile/hlo", "Where StableHLO / HLO text goes.")
_JSON = flags.DEFINE_string("json", None, "Write the figures as JSON to this file.")
_DONATE = flags.DEFINE_bool("donate", True, "Donate the train state to the step (as train does).")
_SYNC = flags.DEFINE_enum("sync", "none", ["none", "step"],
                          "none: one host sync per round (as train does between log intervals); "
                          "step: also read the loss on the host after every step.")
_BATCH = flags.DEFINE_integer("batch", 0, "Override train.batch_size (0: the config's).")
_FRAMES = flags.DEFINE_integer("frames", 0, "Override the number of input frames (0: the training chunk's).")

# Peak dense (no 2:4 sparsity) FLOP/s per accelerator: bf16 on tensor cores, fp32 on the
# FMA units (no tensor cores), and tf32 on tensor cores (what XLA uses for fp32 matmuls and
# convolutions by default on Ampere and later). NVIDIA quotes tensor-core figures with
# sparsity; the dense figure is half. Sources (looked up, not guessed):
# - H100 SXM5 / H200 (same GH100 compute at 1.83 GHz): 989.4 bf16, 66.9 fp32, 494.7 tf32 TFLOP/s,
#   https://glennklockwood.com/garden/processors/h100 ; H100 PCIe 1513 bf16 sparse -> 756,
#   51 fp32, 756 tf32 sparse -> 378, https://archive-lib.hpctech.co.jp/gpuproduct/nvidia-h100.html
#   H200 dense BF16 ~989: https://itkb.uw.cz/2026/06/nvidia-h200-vs-b300-precisions-cores.html
# - A100 (SXM4, 40 and 80 GB): 312 bf16, 19.5 fp32, 156 tf32,
#   https://glennklockwood.com/garden/processors/A100 and NVIDIA's Hopper blog table
#   quoted at https://forums.developer.nvidia.com/t/theoretical-tflops-for-fp16-bf16-and-tf32-for-tensor-and-non-tensor/218102
# - V100 SXM2: 15.7 fp32 (https://cvw.cac.cornell.edu/gpu-architecture/gpu-example-tesla-v100/tesla),
#   125 fp16 tensor (https://developer.nvidia.com/programming-tensor-cores-cuda-9-0); Volta has no
#   bf16 tensor cores, so there is no bf16 peak to compare against (None).
# - L4: 30.3 fp32 (https://fpsbench.com/compare/gpu/nvidia-l4-vs-nvidia-tesla-m40), bf16 tensor
#   242 sparse -> 121 dense, tf32 120 sparse -> 60 dense (NVIDIA's L4 figures, as quoted at
#   https://grokipedia.com/page/NVIDIA_L4_vs_L40S and https://store.sourcecode.com/en-us/bg-bucket-compare/125/9820).
_T = 1e12
PEAK_FLOPS = {  # name: (substrings of jax's device_kind, {dtype: FLOP/s})
    "H200": (("h200",), {"bf16": 989.4 * _T, "fp32": 66.9 * _T, "tf32": 494.7 * _T}),
    "H100 PCIe": (("h100 pcie", "h100-pcie"), {"bf16": 756.0 * _T, "fp32": 51.0 * _T, "tf32": 378.0 * _T}),
    "H100 SXM": (("h100",), {"bf16": 989.4 * _T, "fp32": 66.9 * _T, "tf32": 494.7 * _T}),
    "A100": (("a100",), {"bf16": 312.0 * _T, "fp32": 19.5 * _T, "tf32": 156.0 * _T}),
    "V100": (("v100",), {"bf16": None, "fp32": 15.7 * _T, "tf32": None}),
    "L4": (("l4",), {"bf16": 121.0 * _T, "fp32": 30.3 * _T, "tf32": 60.0 * _T}),
}


def peak_flops(device_kind: str) -> tuple[str | None, dict]:
  """Returns (table name, {dtype: peak FLOP/s}) for a jax device_kind, or (None, {}) if unknown."""
  kind = device_kind.lower()
  for name, (keys, peaks) in PEAK_FLOPS.items():  # ordered: H200 and H100 PCIe before H100
    if any(k in kind for k in keys):
      if name != "L4" or kind.replace("nvidia", "").strip() == "l4":  # "L4" must not match "L40S"
        return name, peaks
  return None, {}


def _flops(cost) -> float | None:
  """FLOPs from a cost analysis (a dict, or a list of dicts in older jax), or None."""
  if cost is None:
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  if not cost:
    return None
  value = cost.get("flops")
  return float(value) if value is not None and value > 0 else None


def _memory(compiled) -> dict:
  """Bytes from the compiled executable's memory analysis; None where the backend has none."""
  try:
    m = compiled.memory_analysis()
  except Exception:  # noqa: BLE001  (NotImplementedError or a runtime error on some backends)
    m = None
  fields = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes", "temp_size_in_bytes",
            "generated_code_size_in_bytes", "peak_memory_in_bytes")
  out = {}
  for f in fields:
    v = getattr(m, f, None) if m is not None else None
    out[f.replace("_size_in_bytes", "_bytes").replace("_in_bytes", "_bytes")] = int(v) if v is not None else None
  return out


def _device_peak_bytes(device) -> int | None:
  try:
    stats = device.memory_stats()
  except Exception:  # noqa: BLE001
    stats = None
  if not stats:
    return None
  v = stats.get("peak_bytes_in_use")
  return int(v) if v is not None else None


def _host_peak_rss_bytes() -> int:
  return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: kilobytes


def build_step(cfg, batch: int, frames: int | None = None, donate: bool = True, seed: int = 0):
  """Returns (jitted train step, state, x, y) of `cfg` from `step.setup`, with random inputs of the training shape.

  Inputs are log-mel batches [B, mels, frames, 1], or waveforms [B, samples] when the config
  computes the log-mel inside the step (`audio.features_on_device`).
  """
  mels, t, _ = features.input_shape(cfg.audio, cfg.audio.training_chunk_seconds)
  t = frames or t
  s = step.setup(cfg, total_steps=1000, seed=seed, donate=donate, evaluates=False)
  rng = np.random.default_rng(seed)
  if cfg.audio.features_on_device:
    # waveforms whose centered STFT has `t` frames
    x = step.shard((rng.normal(size=(batch, (t - 1) * cfg.audio.hop_size)) * 0.1).astype(np.float32), s.mesh)
  else:
    # log-mel in dB: roughly what the front end produces (top_db 80 below a per-chunk maximum)
    x = step.shard((rng.normal(size=(batch, mels, t, 1)) * 15.0 - 40.0).astype(np.float32), s.mesh)
  y = step.shard(rng.integers(0, len(sources.class_names(cfg)), size=(batch,)).astype(np.int32), s.mesh)
  return s.train_step, s.state, x, y


def profile(cfg, steps: int = 10, rounds: int = 3, warmup: int = 2, trace_steps: int = 2,
            trace_dir: str | None = None, hlo_dir: str | None = None, donate: bool = True,
            sync: str = "none", batch: int = 0, frames: int = 0) -> dict:
  """Compiles, times and traces the train step of `cfg`; returns the figures as a dict."""
  b = batch or cfg.train.batch_size
  device = jax.devices()[0]
  step_fn, state, x, y = build_step(cfg, b, frames or None, donate)

  t0 = time.perf_counter()
  lowered = step_fn.lower(state, x, y)
  t1 = time.perf_counter()
  compiled = lowered.compile()
  t2 = time.perf_counter()

  flops = _flops(compiled.cost_analysis())
  flops_source = "compiled"
  if flops is None:  # some backends cost only the unoptimized module
    flops, flops_source = _flops(lowered.cost_analysis()), "lowered"
  memory = _memory(compiled)

  if hlo_dir:
    os.makedirs(hlo_dir, exist_ok=True)
    with open(os.path.join(hlo_dir, "train_step.stablehlo.mlir"), "w") as f:
      f.write(lowered.as_text())
    text = compiled.as_text()
    if text:
      with open(os.path.join(hlo_dir, "train_step.optimized.hlo.txt"), "w") as f:
        f.write(text)

  loss = None
  for _ in range(warmup):
    state, loss = compiled(state, x, y)
  if loss is not None:
    loss.block_until_ready()

  per_step = []
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(steps):
      state, loss = compiled(state, x, y)
      if sync == "step":
        float(loss)  # a host read of the loss: what a per-step metric sync costs
    jax.block_until_ready((state, loss))  # the one wait of the round
    per_step.append((time.perf_counter() - start) / steps)
  step_time = statistics.median(per_step)

  trace_files = {}
  if trace_steps and trace_dir:
    os.makedirs(trace_dir, exist_ok=True)
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      for i in range(trace_steps):
        with jax.profiler.StepTraceAnnotation("train", step_num=i):
          state, loss = compiled(state, x, y)
      jax.block_until_ready((state, loss))
    for root, _, files in os.walk(trace_dir):
      for name in files:
        if name.endswith(".xplane.pb"):
          trace_files["xplane"] = os.path.join(root, name)
        elif name == "perfetto_trace.json.gz":
          trace_files["perfetto"] = os.path.join(root, name)

  dtype = "bf16" if cfg.train.mixed_precision else "fp32"
  table_name, peaks = peak_flops(device.device_kind)
  achieved = flops / step_time if flops else None
  peak = peaks.get(dtype)
  result = {
      "config": cfg.name,
      "device": f"{device.platform}:{device.device_kind}",
      "device_count": jax.device_count(),
      "jax_version": jax.__version__,
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "input_shape": list(x.shape),
      "batch": b,
      "precision": dtype,
      "donate": donate,
      "sync": sync,
      "steps_per_round": steps,
      "rounds": rounds,
      "warmup_steps": warmup,
      "lower_seconds": t1 - t0,
      "compile_seconds": t2 - t1,
      "step_seconds_median": step_time,
      "step_seconds_rounds": per_step,
      "samples_per_second": b / step_time,
      "flops_per_step": flops,
      "flops_source": flops_source,
      "achieved_flops_per_second": achieved,
      "peak_table_entry": table_name,
      "peak_flops_per_second": peak,
      "mfu": achieved / peak if achieved and peak else None,
      "mfu_vs_tf32": (achieved / peaks["tf32"] if dtype == "fp32" and achieved and peaks.get("tf32") else None),
      "memory": {**memory, "device_peak_bytes_in_use": _device_peak_bytes(device),
                 "host_peak_rss_bytes": _host_peak_rss_bytes()},
      "final_loss": float(loss) if loss is not None else None,
      "trace_dir": trace_dir if trace_steps else None,
      "trace_files": trace_files,
      "hlo_dir": hlo_dir,
  }
  return result


def _fmt_bytes(v):
  if v is None:
    return "n/a"
  return f"{v / 2**20:,.1f} MiB"


def _fmt_flops(v, unit=""):
  if v is None:
    return "n/a"
  for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
    if v >= scale:
      return f"{v / scale:.3f} {prefix}FLOP{unit}"
  return f"{v:.0f} FLOP{unit}"


def format_table(r: dict) -> str:
  """Returns the figures of `profile` as an aligned two-column table."""
  m = r["memory"]
  mfu = "n/a (CPU: achieved FLOP/s only)" if r["device"].startswith("cpu") else (
      f"{100 * r['mfu']:.1f}% of {r['peak_table_entry']} {r['precision']} peak" if r["mfu"] is not None
      else f"n/a (no {r['precision']} peak for {r['device']})")
  if r["mfu_vs_tf32"] is not None:
    mfu += f"; {100 * r['mfu_vs_tf32']:.1f}% of its tf32 peak"
  rows = [
      ("config", f"{r['config']}  input {tuple(r['input_shape'])}  {r['precision']}  donate={r['donate']}  "
                 f"sync={r['sync']}"),
      ("device", f"{r['device']} x{r['device_count']}  (jax {r['jax_version']})"),
      ("compile time", f"{r['lower_seconds'] + r['compile_seconds']:.2f} s  "
                       f"(trace+lower {r['lower_seconds']:.2f} s, XLA compile {r['compile_seconds']:.2f} s)"),
      ("step time", f"{1e3 * r['step_seconds_median']:.2f} ms  (median of {r['rounds']} rounds x "
                    f"{r['steps_per_round']} steps, one host sync per round)"),
      ("samples/s", f"{r['samples_per_second']:.2f}"),
      ("FLOPs / step", f"{_fmt_flops(r['flops_per_step'])}  ({r['flops_source']} cost analysis)"),
      ("achieved", _fmt_flops(r["achieved_flops_per_second"], "/s")),
      ("MFU", mfu),
      ("memory: arguments", _fmt_bytes(m["argument_bytes"])),
      ("memory: outputs", _fmt_bytes(m["output_bytes"])),
      ("memory: aliased (donated)", _fmt_bytes(m["alias_bytes"])),
      ("memory: temporaries", _fmt_bytes(m["temp_bytes"])),
      ("memory: compiled peak", _fmt_bytes(m["peak_memory_bytes"])),
      ("memory: device peak in use", _fmt_bytes(m["device_peak_bytes_in_use"])
       + ("" if m["device_peak_bytes_in_use"] is not None else "  (no memory_stats on this backend)")),
      ("memory: host peak RSS", _fmt_bytes(m["host_peak_rss_bytes"])),
      ("trace", r["trace_dir"] or "none"),
      ("HLO", r["hlo_dir"] or "none"),
  ]
  width = max(len(k) for k, _ in rows)
  return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv):
  del argv
  cfg = cli.config_or_exit(device_count=jax.device_count())
  with cli.clean_errors():
    if cfg.data.classes == "auto" and cfg.data.path != "synth":  # the head's width: the classes of the data
      cfg.data.classes = ",".join(sources.resolve_classes(cfg.data))
    r = profile(cfg, steps=_STEPS.value, rounds=_ROUNDS.value, warmup=_WARMUP.value, trace_steps=_TRACE_STEPS.value,
                trace_dir=_TRACE_DIR.value, hlo_dir=_HLO_DIR.value, donate=_DONATE.value, sync=_SYNC.value,
                batch=_BATCH.value, frames=_FRAMES.value)
  print(format_table(r), flush=True)
  if _JSON.value:
    os.makedirs(os.path.dirname(os.path.abspath(_JSON.value)), exist_ok=True)
    with open(_JSON.value, "w") as f:
      json.dump(r, f, indent=2)
    print(f"wrote {_JSON.value}")


if __name__ == "__main__":
  cli.run(main)
