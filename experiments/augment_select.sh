#!/usr/bin/env bash
# Choosing augmentation without the unseen split: validation = one GM program per class held
# out of training (harpsichord, overdrive guitar, fiddle, brush kit); same data, seed, epochs.
#   bash experiments/augment_select.sh [RUNS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-runs/augment_select}
PY=${PY:-.venv/bin/python}
mkdir -p "$R"
declare -A variants=(
  [none]="--config=quick"
  [strong]="--config=strong"
  [timbre]="--config=quick --config.augmentation.pitch_prob=0.5 --config.augmentation.eq_prob=0.5 --config.augmentation.gain_db=6 --config.augmentation.freq_masks=2 --config.augmentation.time_masks=2"
)
for name in none strong timbre; do
  rm -rf "$R/$name"
  start=$(date +%s)
  # shellcheck disable=SC2086
  "$PY" -m instruments_jax.train ${variants[$name]} --config.data.validation_strategy=programs --workdir="$R/$name" > "$R/$name.log" 2>&1
  echo "$name wall_s $(( $(date +%s) - start )) :: ${variants[$name]}"
  grep -E "^ *(validation|test):" "$R/$name.log" | sed 's/^/  /'
done
# Only after choosing on validation: the same three runs on the unseen-programs split, once.
for name in none strong timbre; do
  echo "$name unseen: $("$PY" -m instruments_jax.evaluate --workdir="$R/$name" --data=synth --split=unseen 2>&1 | grep -E "accuracy" | head -1)"
done
