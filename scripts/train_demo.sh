#!/usr/bin/env bash
# Trains the 'demo' checkpoint shipped as dynmm_edge/assets/demo.pt and evaluates it on a held-out
# synthetic test set (different seed). Exact command, seed and results: docs/TRAINING.md.
# Budget: <= 30 min on 2 CPU cores (torch threads = 2).
set -euo pipefail
OUT=${OUT:-/tmp/demo_run}
SEED=${SEED:-0}
cd "$(dirname "$0")/.."
time dynmm-edge train --preset demo \
  --data 'synthetic://?frames=1500&hard_fraction=0.3&seed=0' \
  --val-data 'synthetic://?frames=128&hard_fraction=0.3&seed=1000' \
  --epochs-stage1 7 --epochs-stage2 1 --epochs-gate 5 \
  --budget 0.4 --resource-lambda 1.0 --stage1-end-prob 0.6 \
  --batch-size 16 --lr 3e-3 --gate-lr 1e-2 --optimizer adamw \
  --seed "$SEED" --threads 2 --no-progress --out "$OUT"
cp "$OUT/final.pt" dynmm_edge/assets/demo.pt
dynmm-edge eval dynmm_edge/assets/demo.pt \
  --data 'synthetic://?frames=400&hard_fraction=0.3&seed=4242' \
  --json docs/results/demo_eval.json --png docs/results/demo_sweep.png --sweep=-3,-2,-1,0,1,2,3 --threads 2
