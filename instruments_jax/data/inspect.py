r"""Checks a dataset before training: `python -m instruments_jax.data.inspect PATH [--headers_only]`.

For a Kaggle-layout (Metadata_Train.csv / Metadata_Test.csv) or class-folder
dataset, prints clip counts per class and split, duration and sample-rate
statistics (the recipe's "audio stats"), and every bad file with its reason.
Every file is decoded in full (what training's cache fill does); with
--headers_only only headers are read and float files scanned for NaN/inf.
Exits 0 when every file is good, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys

import numpy as np

from instruments_jax.data import audio, sources
from instruments_jax.data.audio import DataError


def inspect(path: str, decode: bool = True) -> tuple[dict, list[tuple[str, str, str]]]:
  """Returns ({split: Dataset}, [(split, file, reason)] of every bad file)."""
  splits, bad, ignored = {}, [], []
  classes = None  # the training split's, as data.classes=auto reads them; other splits are checked against them
  for split in ("train", "test"):
    ds = sources.open_dataset(path, split, skip_bad_files=True, classes=classes)
    if ds is None:
      continue
    classes = classes or ds.classes
    bad += [(split, name, why) for name, why in ds.skipped]
    ignored += [(split, name) for name in ds.ignored]
    if decode:
      good = []
      for c in ds.clips:
        try:
          audio.load_window(c.path, 0.0, c.duration, c.sample_rate)
          good.append(c)
        except DataError as e:
          bad.append((split, c.name, str(e)))
      ds = sources.Dataset(ds.name, good, ds.skipped, ds.ignored, classes=ds.classes, multi_label=ds.multi_label)
    splits[split] = ds
  if not splits:
    raise DataError(f"{path!r} holds no dataset: neither Metadata_*.csv nor class folders")
  for split, name in ignored:
    print(f"note: [{split}] {name}: ignored, not an audio file by its extension", file=sys.stderr)
  return splits, bad


def report(splits: dict, bad: list) -> str:
  lines = []
  first = next(iter(splits.values()))
  classes = first.classes
  width = max(len(c) for c in classes + ("total",))
  support = {split: ds.support() for split, ds in splits.items()}
  lines.append(f"{'class':<{width}}  " + "  ".join(f"{s:>13}" for s in splits))
  for k, name in enumerate(classes):
    lines.append(f"{name:<{width}}  " + "  ".join(f"{n[k]:>7} {100 * n[k] / max(len(splits[s]), 1):>4.0f}%"
                                                   for s, n in support.items()))
  lines.append(f"{'total':<{width}}  " + "  ".join(f"{len(ds):>13}" for ds in splits.values()))
  n = support[next(iter(splits))]
  lines.append(f"{len(classes)} classes{' (multi-label: a clip counts once per label)' if first.multi_label else ''}"
               f"; the largest has {n.max() / max(n.min(), 1):.1f}x the clips of the smallest"
               + ("; consider --config.data.sampling=balanced" if n.max() > 3 * max(n.min(), 1) else ""))
  for split, ds in splits.items():
    if not len(ds):
      continue
    d = np.array([c.duration for c in ds.clips])
    lines.append(f"\n{split}: {len(ds)} clips, {d.sum() / 3600:.2f} h of audio")
    lines.append(f"  duration s: min {d.min():.2f}  p5 {np.percentile(d, 5):.2f}  median {np.median(d):.2f}  "
                 f"mean {d.mean():.2f}  p95 {np.percentile(d, 95):.2f}  max {d.max():.2f}")
    rates = collections.Counter(c.sample_rate for c in ds.clips)
    chans = collections.Counter(c.channels for c in ds.clips)
    lines.append("  sample rate: " + ", ".join(f"{r} Hz x {n}" for r, n in sorted(rates.items())))
    lines.append("  channels: " + ", ".join(f"{c} x {n}" for c, n in sorted(chans.items())))
  lines.append(f"\nbad files: {len(bad)}")
  lines += [f"  [{split}] {name}: {why}" for split, name, why in bad]
  return "\n".join(lines)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m instruments_jax.data.inspect", description=__doc__.split("\n")[0])
  p.add_argument("path", help="dataset folder: Kaggle layout or one folder per class")
  p.add_argument("--headers_only", action="store_true", help="read headers only (fast); decoding errors go unseen")
  args = p.parse_args(argv)
  logging.disable(logging.WARNING)  # the loaders' warnings repeat what the report lists
  try:
    splits, bad = inspect(args.path, decode=not args.headers_only)
  except DataError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(report(splits, bad))
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
