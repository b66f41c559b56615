r"""Compares two run directories step by step: every batch loss and every evaluation.

    python experiments/compare_runs.py RUN_A RUN_B

Prints how many batch losses are equal (bitwise), their largest difference, and each
evaluation (split, loss, accuracy, ROC-AUC) side by side; exits 1 when anything differs.
Used to show that a refactor changes no number (RESULTS.md, issue 10).
"""

import json
import sys


def _load(run):
  rows = [json.loads(line) for line in open(f"{run}/metrics.jsonl") if line.strip()]
  losses = sum((r["batch_losses"] for r in rows if "batch_losses" in r), [])
  evals = [(r["step"], r["split"], r["loss"], r["accuracy"], r["roc_auc"]) for r in rows if "split" in r]
  return losses, evals


def main(a, b):
  (la, ea), (lb, eb) = _load(a), _load(b)
  equal = sum(x == y for x, y in zip(la, lb))
  worst = max((abs(x - y) for x, y in zip(la, lb)), default=0.0)
  print(f"batch losses: {len(la)} vs {len(lb)}, {equal} bitwise equal, largest difference {worst:g}")
  print(f"{'step':>5} {'split':<10} {'loss A':>10} {'loss B':>10} {'acc A':>7} {'acc B':>7} {'AUC A':>7} {'AUC B':>7}")
  for x, y in zip(ea, eb):
    print(f"{x[0]:>5} {x[1]:<10} {x[2]:>10.6f} {y[2]:>10.6f} {x[3]:>7.4f} {y[3]:>7.4f} {x[4]:>7.4f} {y[4]:>7.4f}")
  same = la == lb and ea == eb
  print("identical" if same else "DIFFERENT")
  return 0 if same else 1


if __name__ == "__main__":
  sys.exit(main(*sys.argv[1:3]))
