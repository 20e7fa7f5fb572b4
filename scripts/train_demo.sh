#!/usr/bin/env bash
# Trains the 'demo' checkpoint shipped as dynmm_edge/assets/demo_model/model.pt and evaluates it on a held-out
# synthetic test set (seed 4242, never used in training). Results and timings: docs/TRAINING.md.
# Exactly the commands that produced the shipped checkpoint (seed 0, torch threads 2, CPU).
set -euo pipefail
OUT=${OUT:-/tmp/demo_run3}
GATE_OUT=${GATE_OUT:-/tmp/demo_gate_run3}
REGION_OUT=${REGION_OUT:-/tmp/demo_region_run1}
cd "$(dirname "$0")/.."

# 1) stage I (random depth prefix per sample) + stage II (gate joint, straight-through, resource
#    loss) + a first gate-only stage on the training frames (kept as run; its gate is replaced in 2)
time dynmm-edge train --preset demo \
  --source 'synthetic://?frames=1500&hard_fraction=0.3&seed=0' \
  --val-source 'synthetic://?frames=128&hard_fraction=0.3&seed=1000' \
  --epochs-stage1 7 --epochs-stage2 1 --epochs-gate 5 \
  --budget 0.4 --resource-lambda 1.0 --stage1-end-prob 0.6 --gate-frame-loss pixel_mean \
  --batch-size 16 --lr 3e-3 --gate-lr 1e-2 --optimizer adamw \
  --seed 0 --threads 2 --no-progress -o "$OUT"

# 2) gate-only fine-tune (trunk frozen) on FRESH frames (seed 7): per-path losses on frames the
#    trunk has not memorised, class-mean frame loss (follows mIoU), budget 0.55 of full depth MACs
time dynmm-edge train --init-from "$OUT/final.pt" \
  --source 'synthetic://?frames=800&hard_fraction=0.3&seed=7' \
  --val-source 'synthetic://?frames=128&hard_fraction=0.3&seed=1000' \
  --epochs-stage1 0 --epochs-stage2 0 --epochs-gate 8 \
  --budget 0.55 --resource-lambda 1.0 --gate-frame-loss class_mean \
  --seed 0 --threads 2 --no-progress -o "$GATE_OUT"

# 3) ship: float16 weights (3.3 MB, loads as float32), then evaluate on the held-out test set
python -c "from dynmm_edge.train.loop import pack_checkpoint; pack_checkpoint('$GATE_OUT/final.pt', '$OUT/demo.pt')"
# the shipped model folder: branch ONNX + manifest + this checkpoint (model.pt) for the PyTorch backend
dynmm-edge export "$OUT/demo.pt" -o dynmm_edge/assets/demo_model --force
dynmm-edge eval dynmm_edge/assets/demo_model/model.pt \
  --source 'synthetic://?frames=400&hard_fraction=0.3&seed=4242' \
  --json docs/results/demo_eval.json --png docs/results/demo_sweep.png --sweep=-3,-2,-1,0,1,2,3 --threads 2

# 4) region stage (docs/REGIONS.md): region gate + tile depth stages + region trunk on the shipped
#    checkpoint (dense weights untouched), then ship it with its region branches and evaluate region mode
time dynmm-edge train --stage region --init-from "$OUT/demo.pt" \
  --source 'synthetic://?frames=720&hard_fraction=0.3&seed=11' --region-epochs 2 \
  --seed 0 --threads 2 --no-progress -o "$REGION_OUT"
python -c "from dynmm_edge.train.loop import pack_checkpoint; pack_checkpoint('$REGION_OUT/final.pt', '$OUT/demo_region.pt')"
dynmm-edge export "$OUT/demo_region.pt" -o dynmm_edge/assets/demo_model --force
dynmm-edge eval dynmm_edge/assets/demo_model/model.pt \
  --source 'synthetic://?frames=64&hard_fraction=0.3&seed=4242' --json docs/results/demo_region_eval.json --threads 2
