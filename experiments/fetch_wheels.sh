#!/usr/bin/env bash
# Downloads into .whl/ exactly the wheels the GPU image lacks, for its CPython 3.12 (x86_64),
# at the versions this machine's venv runs (so the GPU run uses the code we tested), prints
# their total size and fails above 40 MiB (the device copy carries 64 MiB in all).
#
# The image (Python 3.12.3) already has jax 0.11.2 (CUDA 13), numpy, optax, orbax, absl,
# matplotlib, scikit-learn, scipy, h5py, flatbuffers, numba, torch 2.11 and torchvision 0.26;
# measured there, these 19 distributions of our dependency tree are missing; `six` is added as a
# 20th (11 kB): pretty_midi imports it, and the image has it only through python-dateutil < 3,
# which a dry run here showed is not a given. Issue 15 added two run-time dependencies the image
# lacks: tensorboardX (board.py; it needs numpy, packaging and protobuf, all there) and
# pyroomacoustics (data/chains.py, the recording chains' room IRs; numpy, scipy and Cython, all
# there): 22 in all. Each is fetched alone (--no-deps): pip's resolver would pull jax and the
# rest again.
#
#   bash experiments/fetch_wheels.sh            # uses .venv/bin/python for the versions, or $PYTHON
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEST=.whl
LIMIT_MIB=${LIMIT_MIB:-40}
MISSING=(keras namex optree grain array_record portpicker ml_collections librosa decorator pooch platformdirs
         soundfile cffi pycparser soxr pretty_midi mido importlib_resources midirenderer six
         tensorboardX pyroomacoustics)
rm -rf "$DEST" && mkdir -p "$DEST"
pins=()
for name in "${MISSING[@]}"; do
  version=$("$PY" -m pip show "$name" 2>/dev/null | awk '/^Version:/{print $2}')
  [ -n "$version" ] || { echo "error: $name is not installed in $PY's environment; run make venv first" >&2; exit 1; }
  pins+=("$name==$version")
done
"$PY" -m pip download -q --dest "$DEST" --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --abi cp312 --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any "${pins[@]}"
count=$(ls "$DEST"/*.whl | wc -l)
bytes=$(cat "$DEST"/*.whl | wc -c)
mib=$(( (bytes + 1048575) / 1048576 ))
ls -l "$DEST"/*.whl | awk '{printf "%10d  %s\n", $5, $9}'
echo "$count wheels, $bytes bytes ($mib MiB) in $DEST (limit $LIMIT_MIB MiB)"
[ "$count" -eq "${#MISSING[@]}" ] || { echo "error: expected ${#MISSING[@]} wheels, got $count" >&2; exit 1; }
[ "$mib" -le "$LIMIT_MIB" ] || { echo "error: $mib MiB is over the $LIMIT_MIB MiB limit" >&2; exit 1; }
