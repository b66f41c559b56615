"""`python -m instruments_jax.profile`: every figure, a readable trace, HLO text, JSON."""

import glob
import gzip
import json
import os
import re
import subprocess
import sys

import pytest

from instruments_jax.profile import peak_flops


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
  out = tmp_path_factory.mktemp("profile")
  # The recipe's ResNet50 (smoke trains cnn8): the figures below are checked against its known size.
  cmd = [sys.executable, "-m", "instruments_jax.profile", "--config=smoke", "--config.model.backbone=resnet50",
         "--steps=2", "--rounds=2", "--warmup=1",
         f"--trace_dir={out / 'trace'}", f"--hlo_dir={out / 'hlo'}", f"--json={out / 'profile.json'}"]
  env = {**os.environ, "KERAS_BACKEND": "jax"}
  done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=os.path.dirname(os.path.dirname(__file__)))
  assert done.returncode == 0, done.stderr[-3000:]
  return out, done.stdout, json.loads((out / "profile.json").read_text())


@pytest.mark.slow
def test_json_has_every_figure(profiled):
  _, _, r = profiled
  assert r["config"] == "smoke" and r["input_shape"] == [4, 32, 65, 1] and r["precision"] == "fp32"
  assert r["lower_seconds"] > 0 and r["compile_seconds"] > 0
  assert r["step_seconds_median"] > 0 and len(r["step_seconds_rounds"]) == 2
  assert r["samples_per_second"] == pytest.approx(4 / r["step_seconds_median"])
  assert r["flops_per_step"] > 1e9  # ResNet50 fwd+bwd on 4 x 32 x 65: about 4 GFLOP
  assert r["achieved_flops_per_second"] == pytest.approx(r["flops_per_step"] / r["step_seconds_median"])
  assert r["device"].startswith("cpu") and r["mfu"] is None  # CPU: achieved FLOP/s only
  m = r["memory"]
  for key in ("argument_bytes", "output_bytes", "alias_bytes", "temp_bytes"):
    assert m[key] is not None and m[key] >= 0, key
  assert m["argument_bytes"] > 25e6 * 4  # the ResNet50 parameters (and Adam's moments) in float32
  assert m["alias_bytes"] > 0  # the donated state
  assert "device_peak_bytes_in_use" in m and m["host_peak_rss_bytes"] > 0
  assert r["final_loss"] is not None and r["final_loss"] == r["final_loss"]  # finite, not NaN


@pytest.mark.slow
def test_prints_the_table(profiled):
  _, stdout, r = profiled
  for label in ("compile time", "step time", "samples/s", "FLOPs / step", "achieved", "MFU", "memory: arguments",
                "memory: outputs", "memory: temporaries", "memory: device peak in use"):
    assert label in stdout, label
  lines = {}
  for line in stdout.splitlines():
    for label in ("step time", "samples/s", "FLOPs / step"):
      if line.startswith(label + " "):
        lines[label] = line
  assert set(lines) == {"step time", "samples/s", "FLOPs / step"}, stdout

  ms = re.fullmatch(r"step time\s+(\d+\.\d\d) ms\s+\(.*\)", lines["step time"])
  assert ms, lines["step time"]
  assert abs(float(ms.group(1)) - 1e3 * r["step_seconds_median"]) <= 0.005 + 1e-9, (ms.group(1), r)

  rate = re.fullmatch(r"samples/s\s+(\d+\.\d\d)", lines["samples/s"])
  assert rate, lines["samples/s"]
  assert abs(float(rate.group(1)) - 4 / r["step_seconds_median"]) <= 0.005 + 1e-9, (rate.group(1), r)  # batch 4

  flops = re.fullmatch(r"FLOPs / step\s+(\d+\.\d{3}) ([PTGM]?)FLOP\s+\(.*\)", lines["FLOPs / step"])
  assert flops, lines["FLOPs / step"]
  scale = {"P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "": 1.0}[flops.group(2)]
  assert 1 <= float(flops.group(1)) < 1000  # the prefix chosen so that 1 <= mantissa < 1000
  assert abs(float(flops.group(1)) * scale - r["flops_per_step"]) <= 0.0005 * scale * (1 + 1e-9), (flops.group(0), r)


@pytest.mark.slow
def test_trace_and_hlo_are_written(profiled):
  out, _, _ = profiled
  xplanes = glob.glob(str(out / "trace" / "plugins" / "profile" / "*" / "*.xplane.pb"))
  assert xplanes and os.path.getsize(xplanes[0]) > 0
  from jax.profiler import ProfileData  # the reader XProf's converters build on

  planes = ProfileData.from_file(xplanes[0]).planes
  assert sum(1 for p in planes for line in p.lines for _ in line.events) > 0
  perfetto = glob.glob(str(out / "trace" / "plugins" / "profile" / "*" / "perfetto_trace.json.gz"))
  assert perfetto and json.load(gzip.open(perfetto[0]))["traceEvents"]
  hlo = out / "hlo"
  assert "stablehlo" in (hlo / "train_step.stablehlo.mlir").read_text()
  assert "ENTRY" in (hlo / "train_step.optimized.hlo.txt").read_text()


def test_peak_table_matches_device_kinds():
  assert peak_flops("NVIDIA H100 80GB HBM3")[0] == "H100 SXM"
  assert peak_flops("NVIDIA H100 PCIe")[0] == "H100 PCIe"
  assert peak_flops("NVIDIA H200")[0] == "H200"
  assert peak_flops("NVIDIA A100-SXM4-80GB")[0] == "A100"
  assert peak_flops("Tesla V100-SXM2-16GB") == ("V100", {"bf16": None, "fp32": 15.7e12, "tf32": None})
  assert peak_flops("NVIDIA L4")[0] == "L4"
  assert peak_flops("NVIDIA L40S") == (None, {})
  assert peak_flops("cpu") == (None, {})
  name, peaks = peak_flops("NVIDIA H100 80GB HBM3")
  assert peaks["bf16"] > peaks["tf32"] > peaks["fp32"]
