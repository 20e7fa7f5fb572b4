#!/usr/bin/env bash
# Trains the 'demo' checkpoint shipped as dynmm_edge/assets/demo_model/model.pt and evaluates it on held-out
# synthetic test sets (world 2, seed 4242, never used in training). Results and timings: docs/TRAINING.md.
# Exactly the commands that produced the shipped checkpoint (seed 0, torch threads 2, CPU).
#
# A gate-only retrofit of the previous demo model (PREV: its trunk, trained by the stage I/II commands
# recorded in its checkpoint's train meta and in this script's git history, is kept): a fresh cue gate
# (brightness, noise, depth holes, depth/RGB edge disagreement) learns, on FRESH world-2 frames, each
# frame's argmin over paths of (share of wrong pixels + mu x depth cost), mu set by --budget (0.25:
# chosen with validation sets of seed 99, never the seed-4242 test sets; docs/TRAINING.md).
set -euo pipefail
OUT=${OUT:-/tmp/demo_run5}
GATE_OUT=${GATE_OUT:-/tmp/demo_gate_run5}
REGION_OUT=${REGION_OUT:-/tmp/demo_region_run3}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
# the previous demo model (the last commit before this one was shipped): its trunk is kept
PREV=${PREV:-$OUT/prev_demo.pt}
[ -f "$PREV" ] || git show 9feea0b:dynmm_edge/assets/demo_model/model.pt > "$PREV"

time dynmm-edge train --init-from "$PREV" --gate-cues \
  --source 'synthetic://?frames=800&hard_fraction=0.3&seed=7&world=2' \
  --epochs-stage1 0 --epochs-stage2 0 --epochs-gate 20 \
  --gate-objective argmin --gate-frame-loss pixel_error --budget 0.25 --gate-balance 1.0 --gate-lr 1e-2 \
  --seed 0 --threads 2 --no-progress -o "$GATE_OUT"

# region stage (docs/REGIONS.md): tile depth stages + a region copy of the trunk fine-tuned under sparse depth,
# then a cue region gate trained on the cached per-tile gains (price: the gain 35 % of training tiles
# exceed), on world-2 frames from PREV. It trains only region.* and the gate stage above only gate.*; both
# read PREV's frozen dense weights, so the region head is grafted onto the cue-gate checkpoint
# (graft_region refuses if any other tensor differs).
time dynmm-edge train --stage region --init-from "$PREV" \
  --source 'synthetic://?frames=720&hard_fraction=0.3&seed=11&world=2' --region-epochs 2 \
  --region-keep 0.35 --region-gate cues --region-gate-epochs 20 \
  --seed 0 --threads 2 --no-progress -o "$REGION_OUT"
python -c "from dynmm_edge.train.region import graft_region; graft_region('$GATE_OUT/final.pt', '$REGION_OUT/final.pt', '$OUT/demo_full.pt')"

python -c "from dynmm_edge.train.loop import pack_checkpoint; pack_checkpoint('$OUT/demo_full.pt', '$OUT/demo.pt')"
# the shipped model folder: branch ONNX (incl. region branches) + manifest + this checkpoint (model.pt)
dynmm-edge export "$OUT/demo.pt" -o dynmm_edge/assets/demo_model --force
for hf in 0.3 0.1 0.6; do
  name=demo_eval; [ "$hf" = 0.3 ] || name=demo_eval_hf${hf/./}
  dynmm-edge eval dynmm_edge/assets/demo_model/model.pt \
    --source "synthetic://?frames=300&hard_fraction=$hf&seed=4242&world=2" \
    --json docs/results/$name.json --png docs/results/${name/eval/sweep}.png --sweep=-2,-1,0,1,2 --threads 1
done
dynmm-edge eval dynmm_edge/assets/demo_model/model.pt \
  --source 'synthetic://?frames=200&hard_fraction=0.3&seed=4242&world=1' \
  --json docs/results/demo_eval_world1.json --png docs/results/demo_sweep_world1.png --threads 1
# world 1 wants more depth per tile than world 2: the region gate's threshold 0.3 there (docs/REGIONS.md)
dynmm-edge eval dynmm_edge/assets/demo_model/model.pt \
  --source 'synthetic://?frames=200&hard_fraction=0.3&seed=4242&world=1' --region-policy gate:0.3 \
  --json docs/results/demo_eval_world1_region03.json --threads 1
