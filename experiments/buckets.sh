#!/usr/bin/env bash
# Length buckets vs the recipe's full padding, same data, same seed, side by side.
#   bash experiments/buckets.sh [RUNS_DIR]
# `quick` with 16 s chunks (where padding matters: 57% of the embedded clips are shorter),
# 10% of the training data, 2 epochs; once padded to 16 s, once with buckets (4, 8, 12) s.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-runs/buckets}
PY=${PY:-.venv/bin/python}
common=(--config=quick --config.audio.training_chunk_seconds=16 --config.prediction.inference_chunk_seconds=16
        --config.prediction.max_inference_chunk_seconds=16 --config.data.data_sample=0.1 --config.train.epochs=2
        --config.prediction.batch_size=32)
# Fill the feature cache first, so neither run's wall time holds the decoding.
"$PY" - <<'PY'
from instruments_jax.configs import get_config
from instruments_jax.data import cache
from instruments_jax.train import load_data
cfg = get_config("quick")
cfg.data.data_sample = 0.1
load_data(cfg, cache.from_config(cfg.data, cfg.audio))
PY
for variant in padded bucketed; do
  extra=()
  [ "$variant" = bucketed ] && extra=(--config.data.length_buckets='(4.0, 8.0, 12.0)')
  rm -rf "$R/$variant"
  start=$(date +%s)
  "$PY" -m instruments_jax.train "${common[@]}" "${extra[@]}" --workdir="$R/$variant" > "$R.$variant.log" 2>&1
  echo "$variant wall_s $(( $(date +%s) - start ))"
  "$PY" - "$R/$variant" <<'PY'
import json, sys, numpy as np
lines = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
rates = [l["samples_per_s"] for l in lines if "samples_per_s" in l][1:]  # the first interval holds the compiles
val = [l for l in lines if l.get("split") == "validation"][-1]
test = [l for l in lines if l.get("split") == "test"][-1]
print(f"  train samples/s (median of logged intervals after the first) {np.median(rates):.2f}; "
      f"validation acc {val['accuracy']:.4f} auc {val['roc_auc']:.4f}; test acc {test['accuracy']:.4f} auc {test['roc_auc']:.4f}")
PY
done
