r"""Input pipeline throughput against a naive librosa loop, and against the train step.

    python experiments/bench_pipeline.py [--clips=200] [--workers=2] [--step_steps=3]

On the embedded dataset written to disk (Kaggle layout: wav files at 22.05, 44.1
and 48 kHz, mono and stereo), with the baseline's features (44.1 kHz, 128 mels,
n_fft 2048, hop 512), in one run:
1. naive: for each file `librosa.load(sr=44100)` + `librosa.feature.melspectrogram`
   + `power_to_db`, one process;
2. pipeline, cold cache: decode + resample + log-mel of every whole file into a
   fresh feature cache (data.num_workers threads), then every file's evaluation
   chunks as batches (the baseline's 60 s chunks, 600 s cap: all of each file);
3. pipeline, warm cache: the same batches again, now cut from the cache (in
   process, the default with a cache, median of 5 passes: a pass is ~0.1 s and
   moves with the allocator's page faults; and once in grain worker processes);
4. training batches (60 s chunks, batch 8) from the warm cache, against the
   jitted train step at the baseline input (128 x 5168, batch 8, bf16) on this
   machine's default device.
Rates are clips/s and audio-seconds/s (seconds of the files' own audio). The
results go to experiments/RESULTS.md between the bench_pipeline markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sys
import tempfile
import time

import numpy as np


def naive(ds, sr, a):
  import librosa

  for c in ds.clips:
    y, _ = librosa.load(c.path, sr=sr, mono=True)
    m = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=a.stft_window_size, hop_length=a.hop_size,
                                       n_mels=a.mel_bins, fmin=a.fmin, fmax=a.fmax)
    librosa.power_to_db(m, top_db=a.top_db)


def eval_pass(ds, cfg, fc, workers):
  from instruments_jax.data import pipeline

  n = 0
  for batch in pipeline.eval_batches(ds, np.arange(len(ds)), cfg, num_workers=workers, cache=fc)[1]:
    n += int((batch["clip"] >= 0).sum())
  return n


def timed(fn):
  t = time.perf_counter()
  out = fn()
  return time.perf_counter() - t, out


def step_rate(cfg, steps):
  """Samples/s of the jitted train step at the config's training input, median of `steps` after one warm-up."""
  import jax

  from instruments_jax import step
  from instruments_jax.data import features

  shape = features.input_shape(cfg.audio, cfg.audio.training_chunk_seconds)
  s = step.setup(cfg, total_steps=1000, evaluates=False)  # the model, optimizer and jitted step `train` uses
  state, train_step = s.state, s.train_step
  b = cfg.train.batch_size
  x = np.random.default_rng(0).normal(-40, 15, (b,) + shape).astype(np.float32)
  y = np.arange(b, dtype=np.int32) % 4
  t0 = time.perf_counter()
  state, loss = train_step(state, x, y)
  jax.block_until_ready(loss)
  first = time.perf_counter() - t0
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    state, loss = train_step(state, x, y)
    jax.block_until_ready(loss)
    times.append(time.perf_counter() - t)
  return b / float(np.median(times)), first


def synth_rates(cfg, n, workers, cache_dir):
  """Fills a cache of `n` embedded train clips (rendered whole, in `workers` processes), then times training
  batches of 60 s chunks from it; returns RESULTS lines with per-core rates."""
  from instruments_jax.data import cache, pipeline, sources

  ds = sources.synth_dataset(0, "train")
  idx = np.arange(n)
  audio_s = sum(ds.clips[i].duration for i in idx)
  serial_n = max(8, n // 4)  # one worker fills in this process: the rate one core gets
  shutil.rmtree(cache_dir + "_serial", ignore_errors=True)
  t_serial, _ = timed(lambda: cache.FeatureCache(cache_dir + "_serial", cfg.audio).fill(ds, idx[:serial_n], 1))
  serial_rate = serial_n / t_serial
  shutil.rmtree(cache_dir, ignore_errors=True)
  fc = cache.FeatureCache(cache_dir, cfg.audio)
  t_fill, bad = timed(lambda: fc.fill(ds, idx, workers))
  assert not bad, bad
  fill_rate = n / t_fill
  print(f"synth cache fill, 1 worker (in process): {serial_rate:.1f} clips/s; {workers} processes: {n} clips, "
        f"{audio_s:.0f} s of audio in {t_fill:.1f} s: {fill_rate:.1f} clips/s ({fill_rate / serial_rate:.2f}x one "
        f"worker), {audio_s / t_fill:.0f} audio-s/s, {fill_rate / workers:.1f} clips/s per core", flush=True)
  passes = []
  for _ in range(3):
    t, count = timed(lambda: sum(len(b["y"]) for b in pipeline.train_batches(ds, idx, cfg, 0, 1, fc)))
    passes.append(count / t)
  rate = float(np.median(passes))
  cores = os.cpu_count()
  print(f"training batches from the warm synth cache (60 s chunks, batch {cfg.train.batch_size}, in process): "
        f"{rate:.0f} clips/s on {cores} cores = {rate / cores:.0f} clips/s per core", flush=True)
  return [f"- Embedded set cached as rendered (`data.cache_dir` set; {n} train clips, {audio_s:.0f} s of audio): "
          f"fill in {workers} worker processes {fill_rate:.1f} clips/s ({fill_rate / workers:.1f} per core, "
          f"{audio_s / t_fill:.0f} audio-s/s; {fill_rate / serial_rate:.2f}x one worker's {serial_rate:.1f} clips/s, "
          f"start-up included); training batches of 60 s chunks from the warm cache "
          f"{rate:.0f} clips/s on {cores} cores ({rate / cores:.0f} per core; median of 3 passes)."]


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--clips", type=int, default=200, help="embedded train clips written to disk")
  p.add_argument("--workers", type=int, default=2, help="pipeline worker processes (grain)")
  p.add_argument("--step_steps", type=int, default=3, help="timed train steps; 0 skips the step")
  p.add_argument("--synth_clips", type=int, default=0,
                 help="also cache this many embedded clips as rendered (fill in worker processes) and time "
                      "training batches from that warm cache; 0 skips it")
  p.add_argument("--dir", default=None, help="where to write the dataset and cache (default: a temp folder)")
  p.add_argument("--results", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"))
  args = p.parse_args()

  from instruments_jax.configs import get_config
  from instruments_jax.data import cache, pipeline, sources, synth

  cfg = get_config("baseline")
  cfg.model.weights = "none"
  cfg.data.num_workers = args.workers
  a = cfg.audio
  work = args.dir or tempfile.mkdtemp(prefix="bench_pipeline_")
  data_dir = os.path.join(work, "data")
  if not os.path.exists(os.path.join(data_dir, "Metadata_Train.csv")):
    synth.write_split(data_dir, "train", seed=0, limit=args.clips)
  ds = sources.open_dataset(data_dir, "train")
  audio_s = sum(c.duration for c in ds.clips)
  print(f"{len(ds)} clips, {audio_s:.0f} s of audio, {os.cpu_count()} CPUs, workers={args.workers}", flush=True)

  rows = []

  def row(name, seconds, clips, audio):
    rows.append((name, seconds, clips / seconds, audio / seconds))
    print(f"{name:<44} {seconds:8.1f} s {clips / seconds:9.1f} clips/s {audio / seconds:10.0f} audio-s/s", flush=True)

  cache_dir = os.path.join(work, "cache")
  shutil.rmtree(cache_dir, ignore_errors=True)
  fc = cache.FeatureCache(cache_dir, a)
  t_naive, _ = timed(lambda: naive(ds, a.sample_rate, a))
  row("naive librosa loop (1 process)", t_naive, len(ds), audio_s)

  def cold():
    bad = fc.fill(ds, np.arange(len(ds)), args.workers)
    assert not bad, bad
    return eval_pass(ds, cfg, fc, None)

  t_cold, n = timed(cold)
  assert n == len(pipeline.eval_plan(ds, np.arange(len(ds)), cfg.prediction))
  row(f"pipeline, cold cache ({args.workers} fill threads)", t_cold, len(ds), audio_s)
  t_warm0 = float(np.median([timed(lambda: eval_pass(ds, cfg, fc, None))[0] for _ in range(5)]))
  row("pipeline, warm cache (in process, the default; median of 5)", t_warm0, len(ds), audio_s)
  t_warm, _ = timed(lambda: eval_pass(ds, cfg, fc, args.workers))
  row(f"pipeline, warm cache ({args.workers} grain worker processes, start-up included)", t_warm, len(ds), audio_s)

  steps = max(1, len(ds) // cfg.train.batch_size)
  idx = np.arange(len(ds))
  t_train, _ = timed(lambda: sum(1 for _ in pipeline.train_batches(ds, idx, cfg, 0, 1, fc)))
  train_rate = steps * cfg.train.batch_size / t_train
  print(f"training batches (60 s chunks, batch 8, warm cache): {train_rate:.1f} samples/s", flush=True)

  synth_lines = []
  if args.synth_clips:
    synth_lines = synth_rates(cfg, args.synth_clips, args.workers, os.path.join(work, "synth_cache"))

  step = first = None
  if args.step_steps:
    step, first = step_rate(cfg, args.step_steps)
    import jax

    device = jax.devices()[0].device_kind
    print(f"train step at (128, 5168, 1) x 8, bf16, on {device}: {step:.3f} samples/s (first step {first:.0f} s)")

  cold_x, warm_x = t_naive / t_cold, t_naive / t_warm0
  print(f"\ncold cache / naive: {cold_x:.1f}x   warm cache / naive: {warm_x:.1f}x", flush=True)
  if step:
    print(f"training pipeline / train step: {train_rate / step:.1f}x "
          f"({'the step waits for data' if train_rate < step else 'the pipeline keeps ahead of the step'})")

  cmd = "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
  lines = [
      "<!-- bench_pipeline -->",
      "## Input pipeline vs naive librosa loop (issue 3)",
      "",
      f"`{cmd}` on {platform.machine()} with {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}: "
      f"{len(ds)} embedded train clips written to disk ({audio_s:.0f} s of audio; 22.05 / 44.1 / 48 kHz, mono "
      f"and stereo wav), baseline features (44.1 kHz, 128 mels, n_fft 2048, hop 512).",
      "",
      "| path | wall s | clips/s | audio-s/s |",
      "|---|---:|---:|---:|",
      *[f"| {n} | {s:.1f} | {c:.1f} | {au:.0f} |" for n, s, c, au in rows],
      "",
      f"- **cold cache / naive: {cold_x:.1f}x** (target 6x); **warm cache / naive: {warm_x:.1f}x** (target 50x).",
      f"- Training batches from the warm cache (60 s chunks, batch 8): {train_rate:.1f} samples/s.",
      *synth_lines,
  ]
  if step:
    lines.append(f"- Train step at the baseline input (128 x 5168, batch 8, bf16) on this {device}: {step:.3f} "
                 f"samples/s (first step with compile {first:.0f} s): the pipeline runs "
                 f"{train_rate / step:.0f}x the step's rate.")
  lines.append("<!-- /bench_pipeline -->")
  text = open(args.results).read() if os.path.exists(args.results) else "# Results\n"
  block = "\n".join(lines)
  pattern = re.compile(r"<!-- bench_pipeline -->.*?<!-- /bench_pipeline -->", re.S)
  text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
  with open(args.results, "w") as f:
    f.write(text)
  print(f"wrote {args.results}")


if __name__ == "__main__":
  main()
