#!/usr/bin/env bash
# One prepared run for a lent GPU machine (H100 / H200, Python 3.12, jax with CUDA, no network).
# It must succeed on the first try inside the device tool's limits: 64 MiB carried in all, 10
# minutes per command, at most 8 flat files returned from $OUT.
#
#   bash experiments/fetch_wheels.sh           # here, with PyPI: .whl/ = the 19 wheels the image lacks
#   OUT=/tmp/gpu_out bash experiments/gpu_check.sh                     # there (carry .whl)
#   OUT=/tmp/dry CONFIG=smoke BENCH=small PYTHON=/tmp/py312/bin/python bash experiments/gpu_check.sh  # dry run
#
# Stages, most valuable first; each writes its result the moment it ends (stages.json and
# summary.txt are rewritten after every stage), so a cut-off keeps whatever finished:
#   1. profile at the baseline shape (step time, FLOPs, MFU, memory)   profile.json, profile.txt
#   2. the full baseline: 5 epochs on the embedded set, wall time      train.log, metrics.jsonl
#   3. bench_step at the baseline shape: our step vs PyTorch           bench_step.txt
#   4. bench_step at the small shape                                  (appended to bench_step.txt)
# plus summary.txt (card, versions, per-stage wall time and exit code), stages.json and
# trace.tgz (the profile's xplane files): 8 files at most, all flat.
#
# Work files (installed packages, run folder, feature and compilation caches, trace, HLO) live in
# $WORK (default /tmp/gpu_work), never under $OUT. Packages install with `pip --target` into
# $WORK/site, so the image's own environment (its jax) is never touched.
#
# The feature cache fills beside the profile: right after the install a background process
# (JAX_PLATFORMS=cpu, so it never touches the GPU) renders every train and test clip into
# $WORK/feature_cache in nproc-4 worker processes, and the train stage waits for it; the profile
# needs one or two cores and the GPU, the fill every other core (measured here: 2.6 clips/s per
# core for `baseline`'s whole clips, chains included: 2 709 clips on 12 workers in about 90 s).
#
# Time budget (BUDGET, default 460 s of the 480 s = 8 minutes we plan for; 20 s margin): install
# ~10 s; profile at most 150 s (the first full-size compile with autotuning is the unknown),
# then its trace summarized (cpu_op_breakdown.py --device=gpu, into profile.txt); training at
# most TRAIN_LIMIT (200 s; target 180 s on one H100, compilation included, the fill's wait too);
# bench_step at the baseline shape; then the lever (LEVER, default a profile at batch 32: is
# the batch-8 step bound by launches and small kernels rather than by FLOPs?), appended to
# profile.txt; the small shape last. Each gets what is left; stages that no longer fit are
# skipped and say so.
#
# Signals: `timeout --foreground` sends SIGTERM to the stage's own process only (not to its
# process group), so `train` checkpoints and exits at its next step while its grain workers
# live on until it shuts them down; without --foreground the workers die first and training
# crashes instead of checkpointing.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
WORK=${WORK:-/tmp/gpu_work}
BUDGET=${BUDGET:-460}
CONFIG=${CONFIG:-baseline}                 # CONFIG=smoke: the dry run on a CPU
BENCH=${BENCH:-baseline,small}             # bench_step shapes, in order
PROFILE_LIMIT=${PROFILE_LIMIT:-150}
TRAIN_LIMIT=${TRAIN_LIMIT:-200}
LEVER=${LEVER:---config.train.batch_size=32}  # the profile flags of the lever stage ("" skips it)
PY=${PYTHON:-python3}
T0=$(date +%s)
rm -rf "$WORK" && mkdir -p "$WORK"
export JAX_COMPILATION_CACHE_DIR="$WORK/jax_cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=1
export KERAS_BACKEND=jax INSTRUMENTS_JAX_CACHE="$WORK/feature_cache"
SUMMARY="$OUT/summary.txt"
STAGES="$OUT/stages.json"
: > "$SUMMARY"
echo "{}" > "$STAGES"
log() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $(( BUDGET - $(date +%s) + T0 )); }
record() {  # stage, seconds, exit code, note: merged into stages.json at once
  "$PY" - "$STAGES" "$1" "$2" "$3" "${4:-}" <<'EOF'
import json, sys
path, stage, seconds, rc, note = sys.argv[1:]
d = json.load(open(path))
d[stage] = {"seconds": int(seconds), "exit": int(rc), "note": note}
json.dump(d, open(path, "w"), indent=1)
EOF
}
stage() {  # name, limit seconds, command...: runs it under `timeout --foreground`, logs and records it
  local name=$1 limit=$2; shift 2
  local t rc=0 note=""
  t=$(date +%s)
  timeout --foreground -s TERM -k 30 "$limit" "$@" || rc=$?
  [ $rc = 124 ] && note="cut off at its $limit s limit"
  log "$name: $(( $(date +%s) - t )) s wall, exit $rc${note:+ ($note)}"
  record "$name" $(( $(date +%s) - t )) $rc "$note"
}
fits() {  # name, seconds wanted: true when the budget still holds them, else logs the skip
  if [ "$(left)" -lt "$2" ]; then log "$1: skipped, $(left) s left of the budget"; record "$1" 0 -1 "skipped"; return 1; fi
}

log "gpu_check $(date -u +%FT%TZ)  commit $(git rev-parse --short HEAD 2>/dev/null || echo n/a)  config $CONFIG"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$SUMMARY"
log "python: $($PY --version 2>&1)  nproc: $(nproc)  budget: $BUDGET s"

# 0. install the carried wheels beside (not into) the image's environment
t=$(date +%s)
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --target "$WORK/site" .whl/*.whl > "$WORK/pip.log" 2>&1 \
    || log "pip install --target failed: $(tail -3 "$WORK/pip.log")"
else
  log "no .whl/: run experiments/fetch_wheels.sh where PyPI is reachable, and carry .whl"
fi
export PYTHONPATH="$PWD:$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
log "$("$PY" -c 'import jax, keras, grain, librosa; print("jax", jax.__version__, jax.devices()[0].device_kind, "x", jax.device_count(), "keras", keras.__version__, "grain", grain.__version__)' 2>&1 | tail -1)"
record install $(( $(date +%s) - t )) 0

# the feature cache fills in the background (CPU only) while the profile has the GPU
cat > "$WORK/prefill.py" <<'EOF'
import sys
from instruments_jax import configs, train
from instruments_jax.data import cache
from absl import logging
if __name__ == "__main__":  # the fill's spawned workers import this file again
  logging.set_verbosity(logging.INFO)
  cfg = configs.get_config(sys.argv[1])
  cfg.data.cache_dir, cfg.data.num_workers = sys.argv[2], int(sys.argv[3])
  train.load_data(cfg, cache.from_config(cfg.data, cfg.audio))
EOF
PREFILL_T=$(date +%s)
JAX_PLATFORMS=cpu "$PY" "$WORK/prefill.py" "$CONFIG" "$WORK/feature_cache" "$(( $(nproc) > 5 ? $(nproc) - 4 : 1 ))" \
  > "$WORK/prefill.log" 2>&1 &
PREFILL=$!

# 1. profile at the config's training shape (baseline: 128 x 5168, batch 8, bf16)
if fits profile 60; then
  stage profile "$(( $(left) < PROFILE_LIMIT ? $(left) : PROFILE_LIMIT ))" \
    "$PY" -m instruments_jax.profile --config="$CONFIG" --config.model.weights=none --steps=10 --rounds=3 \
    --json="$OUT/profile.json" --trace_dir="$WORK/trace" --hlo_dir="$WORK/hlo" > "$OUT/profile.txt" 2>&1
  grep -E "^(device|compile time|step time|samples/s|FLOPs|achieved|MFU|memory: (compiled|device))" "$OUT/profile.txt" \
    | tee -a "$SUMMARY"
  if [ -d "$WORK/trace" ]; then
    (cd "$WORK" && find trace -name "*.xplane.pb" | head -4 | tar czf "$OUT/trace.tgz" -T -)
    device=gpu; case "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("device",""))' "$OUT/profile.json" 2>/dev/null)" in cpu*) device=cpu;; esac
    { echo; echo "## trace summary (experiments/cpu_op_breakdown.py --device=$device)"
      timeout 60 "$PY" experiments/cpu_op_breakdown.py "$WORK/trace" --device=$device --top=15 2>&1 | tail -80; } >> "$OUT/profile.txt"
  fi
fi

# 2. the full run on the embedded set: log-mels cached as rendered (filled in worker processes on
# every core), then 5 epochs from the warm cache, validation each epoch, test at the end.
t=$(date +%s); wait $PREFILL; rc=$?
log "prefill: $(( $(date +%s) - PREFILL_T )) s wall (waited $(( $(date +%s) - t )) s), exit $rc; $(grep -E 'ready in' "$WORK/prefill.log" | tail -1 | sed 's/.*\] //')"
record prefill $(( $(date +%s) - PREFILL_T )) $rc "$(tail -1 "$WORK/prefill.log" | cut -c1-200)"
if fits train 90; then
  workers=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
  stage train "$(( $(left) - 60 < TRAIN_LIMIT ? $(left) - 60 : TRAIN_LIMIT ))" \
    "$PY" -m instruments_jax.train --config="$CONFIG" --config.model.weights=none \
    --config.data.cache_dir="$WORK/feature_cache" --config.data.num_workers="$workers" \
    --workdir="$WORK/run" > "$OUT/train.log" 2>&1
  cp "$WORK/run/metrics.jsonl" "$OUT/metrics.jsonl" 2>/dev/null
  grep -E "feature cache .* ready|epoch [0-9]+/[0-9]+ .*step|validation:|test:|done in|SIGTERM" "$OUT/train.log" \
    | sed -n '1p;$p' | tee -a "$SUMMARY"
  grep -E "validation:|test:|done in" "$OUT/train.log" | tail -3 | tee -a "$SUMMARY"
fi

# 3-4. our step against PyTorch (eager and torch.compile, bf16), one shape at a time
benched=0
for shape in ${BENCH//,/ }; do
  if [ $benched -gt 0 ] && [ -n "$LEVER" ] && fits lever 60; then  # after the first shape
    stage lever "$(( $(left) < 120 ? $(left) : 120 ))" "$PY" -m instruments_jax.profile --config="$CONFIG" \
      --config.model.weights=none $LEVER --steps=10 --rounds=3 --trace_steps=0 --json="$WORK/lever.json" \
      --hlo_dir="$WORK/hlo_lever" > "$WORK/lever.txt" 2>&1
    { echo; echo "## lever: $LEVER"; cat "$WORK/lever.txt"; } >> "$OUT/profile.txt"
    grep -E "^(step time|samples/s|achieved|MFU)" "$WORK/lever.txt" | sed "s/^/lever /" | tee -a "$SUMMARY"
    LEVER=""
  fi
  if fits "bench_$shape" 45; then
    stage "bench_$shape" "$(( $(left) - 5 ))" env XLA_PYTHON_CLIENT_PREALLOCATE=false "$PY" experiments/bench_step.py \
      --shapes="$shape" --variants=jax_bf16,torch_eager_bf16,torch_compile_bf16 --rounds=5 --steps=3 \
      >> "$OUT/bench_step.txt" 2>&1
  fi
  benched=$(( benched + 1 ))
done
grep -E "^(JAX/torch|best|\| )" "$OUT/bench_step.txt" 2>/dev/null | tail -8 | tee -a "$SUMMARY"
log "total: $(( $(date +%s) - T0 )) s of $BUDGET; files in \$OUT: $(ls "$OUT" | wc -l)"
