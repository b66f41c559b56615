#!/usr/bin/env bash
# Downloads into .whl/ every wheel that experiments/gpu_check.sh installs on a GPU machine that
# has jax + CUDA but no network: our dependencies and theirs, for CPython 3.11 manylinux x86_64
# (PY_VERSIONS="3.11 3.12" for more), at the versions installed in this machine's venv (so the
# GPU run uses the code we tested), without jax, jaxlib, CUDA wheels or torch (the GPU image
# brings its own jax; PyTorch is the optional `bench` extra).
#
#   bash experiments/fetch_wheels.sh            # uses .venv/bin/python, or $PYTHON
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEST=.whl
mkdir -p "$DEST"
DEPS=(keras grain librosa soundfile soxr optax orbax-checkpoint ml_collections absl-py matplotlib scikit-learn
      h5py pretty_midi midirenderer flatbuffers)
# Pin what this venv has (minus jax, CUDA and torch), so the GPU machine runs the same versions.
constraints=$(mktemp)
"$PY" -m pip freeze --exclude-editable | grep -v -i -E '^(jax|jaxlib|jax-cuda|jax_cuda|nvidia-|torch|torchvision|triton|cuda-)' \
  | grep -E '==' > "$constraints" || true
for v in ${PY_VERSIONS:-3.11}; do
  echo "== CPython $v =="
  "$PY" -m pip download --dest "$DEST" --only-binary=:all: --python-version "$v" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform linux_x86_64 --platform any \
    -c "$constraints" "${DEPS[@]}"
done
rm -f "$constraints"
# The GPU image's own jax stays: never install jax or jaxlib from here.
rm -f "$DEST"/jax-*.whl "$DEST"/jaxlib-*.whl "$DEST"/jax_cuda*.whl "$DEST"/nvidia_*.whl
echo "$(ls "$DEST"/*.whl | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST"
