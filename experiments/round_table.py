r"""Tables a round of `engine_select.py` runs on the three hold-outs, seeds 0-3, and applies stop 28's rule.

    python experiments/round_table.py --runs=DIR --candidates=+panns,+ls0.1
        [--reference=physical:0.8833,fluid:0.8033,freepats:0.8842]

DIR holds one folder per hold-out (physical, fluid, freepats), each the `--runs` of one
`engine_select.py --validation_engine=<it> --validation_fold=-1` call. The reference is
`quick`'s recipe (BASE; on the FreePats hold-out the mix without FreePats), a candidate
the reference's name with a suffix. Prints, per hold-out, each side's four seeds and their mean
on every held-out clip (accuracy / macro F1 / ROC-AUC / guitar recall / piano recall), the tests
the runs printed, and the rule's verdict: a candidate is a gain if the mean over the three
hold-outs' four-seed means rises by more than 1.3 points and no hold-out's mean falls by more
than 1.3. A run not yet finished shows as "-" and leaves its side's mean out. `--reference`
gives the reference's four-seed means as recorded (RESULTS.md) when its runs are on another
machine; a hold-out it names is judged against that number, and its reference row is left out.
"""

from __future__ import annotations

import argparse
import json
import os

from engine_select import _row  # experiments/ is this script's folder

BASE = "engines+chains+cnn8-5ep+first10+drop0.3"
HOLD_OUTS = ("physical", "fluid", "freepats")
SEEDS = ("", "-seed1", "-seed2", "-seed3")
GUARD = 0.013  # points of accuracy, as a fraction


def _name(hold_out, suffix, seed):
  mix = "" if hold_out == "freepats" else "+freepats"  # the FreePats hold-out trains on the mix without it
  return f"{BASE}{mix}{suffix}{seed}"


def _load(runs, hold_out, name, split):
  path = os.path.join(runs, hold_out, name, f"eval_{split}.json")
  return json.load(open(path)) if os.path.exists(path) else None


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--runs", required=True)
  p.add_argument("--candidates", required=True, help="comma-separated suffixes of the reference's name")
  p.add_argument("--reference", default="", help="recorded reference means, e.g. physical:0.8833,fluid:0.8033")
  a = p.parse_args(argv)
  sides = ["", *a.candidates.split(",")]
  means = {}
  for item in filter(None, a.reference.split(",")):
    hold_out, _, value = item.partition(":")
    if hold_out not in HOLD_OUTS or not value:
      p.error(f"--reference: {item!r} is not HOLD_OUT:MEAN with HOLD_OUT one of {', '.join(HOLD_OUTS)}")
    means[hold_out, ""] = float(value)
  print("| hold-out | side | seed 0 | seed 1 | seed 2 | seed 3 | mean | tests |\n|---|---|---|---|---|---|---|---|")
  for hold_out in HOLD_OUTS:
    for side in sides:
      if side == "" and (hold_out, "") in means:
        print(f"| {hold_out} | reference (recorded) | - | - | - | - | **{means[hold_out, '']:.4f}** | - |")
        continue
      val = [_load(a.runs, hold_out, _name(hold_out, side, s), "validation") for s in SEEDS]
      test = [_load(a.runs, hold_out, _name(hold_out, side, s), "test") for s in SEEDS]
      if all(v is not None for v in val):
        means[hold_out, side] = sum(v["accuracy"] for v in val) / len(val)
      mean = f"**{means[hold_out, side]:.4f}**" if (hold_out, side) in means else "-"
      cells = [_row(v) if v else "-" for v in val]
      tests = " ".join(f"{t['accuracy']:.4f}" if t else "-" for t in test)
      print(f"| {hold_out} | {side or 'reference'} | {' | '.join(cells)} | {mean} | {tests} |")
  print("\ncells: accuracy / macro F1 / ROC-AUC / guitar recall / piano recall, every held-out clip\n")
  for side in sides[1:]:
    if not all((h, s) in means for h in HOLD_OUTS for s in ("", side)):
      print(f"{side}: not every run has finished")
      continue
    deltas = {h: means[h, side] - means[h, ""] for h in HOLD_OUTS}
    overall = sum(deltas.values()) / len(deltas)
    falls = [h for h, d in deltas.items() if d < -GUARD]
    verdict = "gain: keep" if overall > GUARD and not falls else "not a gain: quick stays"
    shown = ", ".join(f"{h} {100 * d:+.2f}" for h, d in deltas.items())
    print(f"{side}: {shown}; mean of the three {100 * overall:+.2f} points; "
          f"falls beyond {100 * GUARD:.1f}: {', '.join(falls) or 'none'} -> {verdict}")


if __name__ == "__main__":
  main()
