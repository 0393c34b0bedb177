#!/usr/bin/env bash
# Every CUDA check in one go (bench/gpu.py): TV-L1 pairs/s and EPE, ResNet-50 training and
# loader samples/s, the tiny DAG on the GPU. About 5 minutes on one H200.
#   bench/gpu.sh [OUT_DIR]            # default docs/gpu
#   bench/gpu.sh /tmp/gpu --device cpu --quick   # the same code path on CPU, small
# On a machine without the project's Python packages, wheels in .whl/ are installed
# to /tmp/site first (pip install --no-index: works offline).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/gpu}
shift || true
if [ -d .whl ] && ! python3 -c "import snakemake" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -3
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$out"
{ nvidia-smi 2>/dev/null || echo "no nvidia-smi"; } > "$out/nvidia-smi.txt"
python3 bench/gpu.py --out "$out" "$@"
