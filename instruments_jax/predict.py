r"""Labels audio files: `python -m instruments_jax.predict --workdir=RUN PATH... [--output=FILE.csv|FILE.json]`.

Files and folders (searched recursively for audio) in; per file the top label,
every class whose probability reaches `prediction.probability_threshold` (the
run's, or --probability_threshold), and every class probability out, as a table
on stdout and in the output file. Long files are cut into the run's fixed
inference chunks (the recipe: 60 s chunks, at most 600 s) whose predictions are
averaged. Files that cannot be read are
listed with their reason and never stop the rest; the exit code is 1 when any
file failed.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time

import numpy as np

from instruments_jax import cli, metrics
from instruments_jax.data import audio, pipeline
from instruments_jax.data.audio import DataError
from instruments_jax.data.sources import AUDIO_EXTENSIONS, MAC_METADATA_DIR, Clip, Dataset


def find_files(paths: list[str]) -> list[str]:
  """Returns the files named and the audio files under the folders named, in order (macOS metadata left out)."""
  out = []
  for p in paths:
    if os.path.isdir(p):
      for dirpath, dirnames, files in sorted(os.walk(p)):
        dirnames[:] = [n for n in dirnames if n != MAC_METADATA_DIR]
        out += [os.path.join(dirpath, f) for f in sorted(files)
                if f.lower().endswith(AUDIO_EXTENSIONS) and not f.startswith("._")]
    else:
      out.append(p)
  return out


def predict_files(clf, files: list[str], batch_size: int | None = None,
                  threshold: float | None = None) -> tuple[list[dict], list[tuple[str, str]]]:
  """Returns (one row per readable file, [(file, reason)] for the others).

  A row holds the top label, `labels` (every class at or above the threshold, default
  `prediction.probability_threshold`; none when the clip sounds like no class) and each probability.
  """
  cfg = clf.config
  threshold = cfg.prediction.probability_threshold if threshold is None else threshold
  if batch_size:
    cfg = cfg.copy_and_resolve_references()
    cfg.prediction.batch_size = batch_size
  clips, bad = [], []
  for f in files:
    try:
      if not os.path.isfile(f):
        raise DataError(f"cannot read {f!r}: no such file")
      duration, sr, ch = audio.info(f)
      clips.append(Clip(f, (), duration, sr, ch, f))
    except DataError as e:
      bad.append((f, str(e)))
  rows = []
  if clips:
    ds = Dataset("predict", clips, classes=clf.classes)
    probs, failures = metrics.predict_clips(clf.chunk_predictor(), ds, np.arange(len(clips)), cfg,
                                            tolerate_errors=True)
    plan = pipeline.eval_plan(ds, np.arange(len(clips)), cfg.prediction, tuple(cfg.data.length_buckets))
    chunks = np.bincount([entry[0] for entry in plan], minlength=len(clips))
    for i, (clip, p) in enumerate(zip(clips, probs)):
      if i in failures:
        bad.append((clip.name, failures[i]))
        continue
      rows.append({"file": clip.name, "label": clf.classes[int(p.argmax())],
                   "labels": [c for c, v in zip(clf.classes, p) if v >= threshold],
                   "duration_s": round(clip.duration, 3), "chunks": int(chunks[i]),
                   **{c: float(v) for c, v in zip(clf.classes, p)}})
  return rows, bad


def write_output(path: str, rows: list[dict], bad: list[tuple[str, str]], classes) -> None:
  """Writes the rows and the unreadable files as JSON, or as CSV with a probability column per class."""
  if path.lower().endswith(".json"):
    with open(path, "w") as f:
      json.dump({"predictions": rows, "failed": [{"file": f_, "reason": r} for f_, r in bad]}, f, indent=2)
    return
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["file", "label", "labels", "duration_s", "chunks", *classes, "error"])
    for r in rows:
      w.writerow([r["file"], r["label"], ";".join(r["labels"]), r["duration_s"], r["chunks"],
                  *(f"{r[c]:.6f}" for c in classes), ""])
    for f_, reason in bad:
      w.writerow([f_, "", "", "", "", *([""] * len(classes)), reason])


def write_report(clf, rows: list[dict], bad: list[tuple[str, str]], path: str) -> None:
  """Writes the listening report (instruments_jax/report.py) of the labelled files, the least confident first."""
  from instruments_jax import report

  rows = sorted(rows, key=lambda r: max(r[c] for c in clf.classes))
  shown = rows[:report.MAX_ROWS]
  ds = Dataset("predict", [Clip(r["file"], (), r["duration_s"], 0, 1, r["file"]) for r in shown], classes=clf.classes)
  probs = np.array([[r[c] for c in clf.classes] for r in shown])
  note = (f"{len(shown)} of {len(rows)} file(s), the least confident first" if len(shown) < len(rows)
          else f"{len(rows)} file(s)") + (f"; {len(bad)} could not be read: " + ", ".join(f for f, _ in bad)
                                          if bad else "")
  report.write(path, f"predictions of run {clf.config.name} (step {clf.step})", "",
               report.clip_rows(clf, ds, np.arange(len(shown)), probs), clf.classes, note=note)


def main(argv=None):
  import argparse

  p = argparse.ArgumentParser(prog="python -m instruments_jax.predict", description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="a training run directory")
  p.add_argument("paths", nargs="+", help="audio files and folders")
  p.add_argument("--output", default=None, help="write the table to FILE.csv or FILE.json")
  p.add_argument("--report", default=None, help="write the listening report to FILE.html: each file's log-mel, "
                                                "audio, probabilities and saliency map, in a browser")
  p.add_argument("--batch_size", type=int, default=None, help="chunks per forward pass (default: the run's)")
  p.add_argument("--probability_threshold", type=float, default=None,
                 help="list every class at or above this probability (default: the run's "
                      "prediction.probability_threshold)")
  a = p.parse_args(argv)
  if a.probability_threshold is not None and not 0 <= a.probability_threshold <= 1:
    print(f"error: --probability_threshold={a.probability_threshold}: choose a value in [0, 1]", file=sys.stderr)
    return cli.CONFIG_ERROR_STATUS
  if a.batch_size is not None and a.batch_size < 1:
    print(f"error: --batch_size={a.batch_size}: choose a positive number of chunks", file=sys.stderr)
    return cli.CONFIG_ERROR_STATUS
  from instruments_jax.classifier import load_classifier

  files = find_files(a.paths)
  if not files:
    print(f"error: nothing to label: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {', '.join(a.paths)}",
          file=sys.stderr)
    return 1
  with cli.clean_errors():
    clf = load_classifier(a.workdir)
  t0 = time.time()
  rows, bad = predict_files(clf, files, a.batch_size, a.probability_threshold)
  dt = time.time() - t0
  width = max([len(r["file"]) for r in rows] + [4])
  classes = clf.classes
  lw, cw = max(len(c) for c in classes + ("label",)), [max(len(c), 6) for c in classes]
  print(f"{'file':<{width}}  {'label':<{lw}} " + " ".join(f"{c:>{w}}" for c, w in zip(classes, cw))
        + "  above threshold")
  for r in rows:
    print(f"{r['file']:<{width}}  {r['label']:<{lw}} " + " ".join(f"{r[c]:>{w}.3f}" for c, w in zip(classes, cw))
          + "  " + (", ".join(r["labels"]) or "none"))
  if bad:
    print(f"\n{len(bad)} file(s) could not be read:")
    for f, reason in bad:
      print(f"  {f}: {reason}")
  print(f"\n{len(rows)} file(s) labelled in {dt:.1f}s ({len(rows) / max(dt, 1e-9):.2f} clips/s)", file=sys.stderr)
  if a.output:
    write_output(a.output, rows, bad, clf.classes)
  if a.report and rows:
    with cli.clean_errors():
      write_report(clf, rows, bad, a.report)
    print(f"report: {a.report} (open it in a browser)", file=sys.stderr)
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
