#!/usr/bin/env bash
# Starts the recipe's full-size baseline (128 mels x 60 s, batch 8, bf16 mixed precision) on this CPU
# without ImageNet weights, lets it train for $1 seconds (default 600), then stops it and prints
# the logged samples/s and the peak resident memory. It does not wait for the run to finish.
set -u
cd "$(dirname "$0")/.."
secs=${1:-600}
dir=runs/baseline_cpu_start
rm -rf "$dir"
/usr/bin/time -v -o /tmp/baseline_time.txt timeout -k 60 -s INT "$secs" \
  python -m instruments_jax.train --config=baseline --config.model.weights=none \
  --config.train.log_every_steps=1 --workdir="$dir" 2>&1 | grep -E "train.py|Error|error" | tail -20
python - "$dir" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if "train_loss" in l]
print(f"steps logged: {len(rows)}")
for r in rows:
    print(f"step {r['step']}: {r['samples_per_s']:.3f} samples/s, loss {r['train_loss']:.4f}")
if len(rows) > 1:
    steady = [r["samples_per_s"] for r in rows[1:]]
    print(f"steady-state (steps 2..{rows[-1]['step']}): {sum(steady) / len(steady):.3f} samples/s")
PY
grep -E "Maximum resident|Elapsed" /tmp/baseline_time.txt
