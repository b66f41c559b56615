r"""Scores runs on the test and unseen clips rendered by another sample library (FluidR3 or FreePats, issue 15).

    python experiments/library_eval.py --out=/tmp/fluid_splits [--engine=fluid|freepats] runs/quick runs/es5/NAME ...

The benchmark's test and unseen splits are soundfont, physical and spectral clips. This writes
the same clips (the same notes, programs and kits; seen rooms for test, unseen rooms and
microphones for unseen, 3 in 4 through a chain) rendered by the `--engine` library to `--out` in
the Kaggle layout, once, and evaluates each run on them with `python -m instruments_jax.evaluate
--data=OUT`. A run that never trained on that library hears a sample library it has not met, the
situation of the issue's held-out sets. Rows: accuracy / macro F1 / ROC-AUC / guitar recall /
piano recall.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from instruments_jax.data import libraries, synth


def write(out: str, engine: str = "fluid") -> None:
  """Writes test and unseen rendered by `engine` (their BENCHMARK chains) unless `out` holds them."""
  mix = synth.Mix((engine,), synth.BENCHMARK.chain_prob)
  synth.split_mix = lambda split, train_mix=None: mix  # this process only; the workers get the mix passed
  for split in ("test", "unseen"):
    if not os.path.exists(os.path.join(out, synth.KAGGLE_DIRS[split][0])):
      print(synth.write_split(out, split), flush=True)


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("runs", nargs="+")
  p.add_argument("--out", required=True, help="where the library-rendered splits are (written if absent)")
  p.add_argument("--engine", default="fluid", choices=libraries.ENGINES, help="the library that plays them")
  p.add_argument("--python", default=sys.executable)
  a = p.parse_args(argv)
  write(a.out, a.engine)
  print(f"| run | {a.engine} test | {a.engine} unseen |\n|---|---|---|")
  for run in a.runs:
    cols = []
    for split in ("test", "unseen"):
      dest = os.path.join(a.out, "eval", os.path.normpath(run).strip(os.sep).replace(os.sep, "__"), split)
      if not os.path.exists(os.path.join(dest, f"eval_{split}.json")):
        subprocess.run([a.python, "-m", "instruments_jax.evaluate", f"--workdir={run}", f"--data={a.out}",
                        f"--split={split}", f"--out={dest}", "--report=none"], check=True, stdout=subprocess.DEVNULL)
      m = json.load(open(os.path.join(dest, f"eval_{split}.json")))
      pc = m["per_class"]
      cols.append(f"{m['accuracy']:.4f} / {m['macro_f1']:.4f} / {m['roc_auc']:.4f} / "
                  f"{pc['guitar']['recall']:.2f} / {pc['piano']['recall']:.2f}")
    print(f"| {run} | {' | '.join(cols)} |", flush=True)


if __name__ == "__main__":
  main()
