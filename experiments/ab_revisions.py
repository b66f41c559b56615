r"""One benchmark at two revisions of this repository, alternated in one run: what a change did.

    python experiments/ab_revisions.py --before=HEAD~1 --after=HEAD --rounds=2 --grep='samples/s' \
        -- experiments/bench_synth_pipeline.py --batches=30 --steps=3

Each revision is checked out once into a temporary git worktree; the benchmark (a script of the
*current* tree, so both sides run the same measurement) then runs with PYTHONPATH set to that
worktree, so it and the worker processes it starts import that revision's package. Rounds
alternate before / after, so a machine that speeds up or slows down during the run affects both.
Prints the lines of each run's output that match --grep.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--before", default="HEAD~1")
  p.add_argument("--after", default="HEAD")
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--grep", default=".")
  p.add_argument("bench", nargs=argparse.REMAINDER, help="-- script.py [its flags]")
  a = p.parse_args()
  bench = [x for x in a.bench if x != "--"]
  root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                        check=True).stdout.strip()
  with tempfile.TemporaryDirectory() as tmp:
    trees = {}
    for side in ("before", "after"):
      rev = getattr(a, side)
      trees[side] = os.path.join(tmp, side)
      subprocess.run(["git", "-C", root, "worktree", "add", "--detach", "-f", trees[side], rev], check=True,
                     capture_output=True)
      sha = subprocess.run(["git", "-C", trees[side], "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True).stdout.strip()
      print(f"{side}: {rev} ({sha})")
    try:
      for r in range(a.rounds):
        for side, tree in trees.items():
          env = dict(os.environ, PYTHONPATH=tree)
          out = subprocess.run([sys.executable, os.path.join(root, bench[0]), *bench[1:]], env=env, cwd=root,
                               capture_output=True, text=True)
          lines = [l for l in (out.stdout + out.stderr).splitlines() if re.search(a.grep, l)]
          print(f"round {r + 1} {side}: " + " | ".join(lines) + ("" if out.returncode == 0 else
                                                                 f" (exit {out.returncode})"), flush=True)
    finally:
      for tree in trees.values():
        subprocess.run(["git", "-C", root, "worktree", "remove", "--force", tree], capture_output=True)


if __name__ == "__main__":
  main()
