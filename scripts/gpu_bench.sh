#!/usr/bin/env bash
# One short call on a lent NVIDIA GPU (PyTorch with CUDA and nvidia-ml-py present, no TensorRT):
# static vs dynamic with the PyTorch backend in FP16 with CUDA graphs, NVML energy, JSON into $OUT.
# usage (repo root on the GPU machine): OUT=/path scripts/gpu_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_results}
FRAMES=${FRAMES:-300}
mkdir -p "$OUT"
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || python3 -m pip install -q --no-deps -e .
export PYTHONUNBUFFERED=1 DYNMM_EDGE_CACHE="$OUT/cache"
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv | tee "$OUT/gpu.csv"
SRC="synthetic://?frames=${FRAMES}&hard_fraction=0.3&seed=99"
common=(--backend torch --device cuda --precision fp16 --cuda-graphs --power nvml --warmup 20 --block 20)
# 1) the shipped demo model at its native 256x192 (trained gate)
dynmm-edge bench demo --source "$SRC" "${common[@]}" --json "$OUT/demo_torch_cuda_fp16.json" --no-plot
# 2) the same paced like a 30 FPS camera, so energy per frame includes idle gaps
dynmm-edge bench demo --source "$SRC" "${common[@]}" --fps 30 --json "$OUT/demo_torch_cuda_fp16_30fps.json" --no-plot
# 3) ESANet R34-NBt1D at 640x480 (random weights: timing of full depth vs RGB-only, gate untrained)
dynmm-edge bench esanet-r34-nbt1d-nyuv2 --source "synthetic://?frames=200&width=640&height=480&seed=99" \
  "${common[@]}" --json "$OUT/r34_torch_cuda_fp16.json" --no-plot
# 4) region break-even curves with the eager PyTorch model on CUDA (FP16): demo and R34-NBt1D 640x480
python3 scripts/region_torch_curve.py --device cuda --fp16 --json "$OUT/region_torch_cuda_demo.json"
python3 scripts/region_torch_curve.py --device cuda --fp16 --r34 --frames 5 --json "$OUT/region_torch_cuda_r34.json"
ls -la "$OUT"
