#!/usr/bin/env bash
# One prepared run for a GPU machine (H100 / H200) that has jax with CUDA but not keras, grain,
# librosa, ..., and no network. Everything it writes goes to $OUT:
#
#   profile_baseline.json / .txt   python -m instruments_jax.profile --config=baseline (bf16, 128 x 5168, batch 8)
#   trace/                         its jax.profiler trace (XProf / TensorBoard, Perfetto)
#   hlo/                           its StableHLO and optimized HLO
#   baseline/                      the full `baseline` run (5 epochs, embedded train split), metrics.jsonl
#   train.log, train_time.txt      its log and /usr/bin/time -v
#   bench_step.txt                 experiments/bench_step.py: our step vs PyTorch eager / torch.compile (bf16)
#   summary.txt                    wall time of every part, the card, versions, exit codes
#
# Wheels: run `bash experiments/fetch_wheels.sh` on a machine with PyPI first; it fills .whl/
# (git-ignored) and this script installs from there with --no-index. jax is never installed
# from .whl: the image's own jax (with CUDA) is used. Budget: 8 minutes on an H100 in all
# (BUDGET); each part has its own timeout: profile 100 s, training TRAIN_LIMIT (SIGTERM makes
# `train` checkpoint and stop at its next step; one cut off inside an evaluation is killed 20 s
# later; either way metrics.jsonl keeps what was logged), and bench_step what is left, one shape
# at a time.
#
#   OUT=/tmp/gpu_out bash experiments/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
BUDGET=${BUDGET:-470}   # seconds for the whole script (8 min = 480)
CONFIG=${CONFIG:-baseline}                 # CONFIG=smoke BENCH_SHAPES=small: a dry run on a CPU
BENCH_SHAPES=${BENCH_SHAPES:-small,baseline}
TRAIN_LIMIT=${TRAIN_LIMIT:-210}            # seconds for the full baseline run
# One compilation cache for the three parts: bench_step's jax_bf16 at the baseline shape is the
# same program as profile's, so it is compiled once.
export JAX_COMPILATION_CACHE_DIR="$OUT/jax_cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=1
PY=${PYTHON:-python3}
T0=$(date +%s)
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
log() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - T0 )); }
left() { echo $(( BUDGET - $(date +%s) + T0 )); }

log "gpu_check $(date -u +%FT%TZ)  commit $(git rev-parse --short HEAD 2>/dev/null || echo n/a)"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee -a "$SUMMARY" || true
log "python: $($PY --version 2>&1)  nproc: $(nproc)"

# 1. install from .whl (no network), keeping the image's jax
t=$(date +%s)
DEPS="keras grain librosa soundfile soxr optax orbax-checkpoint ml_collections absl-py matplotlib scikit-learn h5py
      pretty_midi midirenderer flatbuffers"
if ls .whl/*.whl >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  if ! $PY -m pip install -q --no-index --find-links .whl $DEPS > "$OUT/pip.log" 2>&1; then
    log "pip (resolving against the image's jax) failed, see pip.log; installing the wheels without resolution"
    $PY -m pip install -q --no-index --no-deps .whl/*.whl >> "$OUT/pip.log" 2>&1 || log "pip --no-deps failed too"
  fi
else
  log "no .whl/ folder: run experiments/fetch_wheels.sh where PyPI is reachable; trying with what is installed"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax
$PY -c "import jax, keras, optax, grain; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" \
  2>&1 | tail -1 | tee -a "$SUMMARY"
log "install: $(( $(date +%s) - t )) s"

run_part() {  # name, timeout seconds, command...; logs wall time and exit code, never aborts the script
  local name=$1 limit=$2; shift 2
  local t rc=0
  t=$(date +%s)
  timeout -k 10 "$limit" "$@" || rc=$?
  log "$name: $(( $(date +%s) - t )) s wall, exit $rc$([ $rc = 124 ] && echo ' (timed out)')"
}

# 2. profile of the baseline step: compile time, step time, FLOPs, MFU, memory, trace, HLO
run_part profile 100 bash -c "$PY -m instruments_jax.profile --config=$CONFIG --config.model.weights=none \
  --steps=10 --rounds=3 --json='$OUT/profile_baseline.json' --trace_dir='$OUT/trace' --hlo_dir='$OUT/hlo' \
  > '$OUT/profile_baseline.txt' 2>&1"
grep -E "^(device|compile time|step time|samples/s|FLOPs|achieved|MFU|memory: device)" "$OUT/profile_baseline.txt" \
  | tee -a "$SUMMARY" || true

# 3. the full baseline: 5 epochs on the embedded train split, validation each epoch, test at the end.
# Target: at most 3 minutes on one H100; it gets TRAIN_LIMIT seconds (SIGTERM then saves a checkpoint).
limit=$(( $(left) - 60 < TRAIN_LIMIT ? $(left) - 60 : TRAIN_LIMIT ))
log "$CONFIG train: starting with a limit of $limit s"
if [ "$limit" -gt 30 ]; then
  rm -rf "$OUT/baseline"
  t=$(date +%s)
  rc=0
  timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$OUT/train_time.txt")  # GNU time: peak RSS too
  timeout -s TERM -k 20 "$limit" "${timer[@]}" \
    $PY -m instruments_jax.train --config="$CONFIG" --config.model.weights=none \
    --config.data.num_workers="$(( $(nproc) > 4 ? $(nproc) - 2 : 4 ))" --workdir="$OUT/baseline" \
    > "$OUT/train.log" 2>&1 || rc=$?
  log "$CONFIG train: $(( $(date +%s) - t )) s wall, exit $rc$([ $rc = 124 ] && echo ' (cut off at the limit)')"
  grep -E "epoch [0-9]+/|validation:|test:|done in|SIGTERM" "$OUT/train.log" | tail -8 | tee -a "$SUMMARY" || true
  grep -E "Elapsed|Maximum resident" "$OUT/train_time.txt" 2>/dev/null | tee -a "$SUMMARY" || true
else
  log "$CONFIG train: skipped, no time left"
fi

# 4. our step against PyTorch, one shape at a time so that a timeout loses one shape only (the
# per-round lines are printed as they come). The torch variants are skipped, saying so, where
# torch is not installed. bf16 only: the baseline's precision, and the least compile time.
for shape in ${BENCH_SHAPES//,/ }; do
  limit=$(( $(left) - 5 ))
  [ "$limit" -gt 20 ] || { log "bench_step $shape: skipped, no time left"; continue; }
  run_part "bench_step $shape" "$limit" bash -c "XLA_PYTHON_CLIENT_PREALLOCATE=false $PY experiments/bench_step.py \
    --shapes=$shape --variants=jax_bf16,torch_eager_bf16,torch_compile_bf16 --rounds=5 --steps=3 \
    >> '$OUT/bench_step.txt' 2>&1"
done
grep -E "^(jax|shape|JAX/torch|best|\| )" "$OUT/bench_step.txt" | tee -a "$SUMMARY" || true
log "total: $(elapsed) s"
