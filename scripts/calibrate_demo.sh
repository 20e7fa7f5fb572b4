#!/usr/bin/env bash
# Must-show for INT8 calibration: export the trained demo model, calibrate its depth segments to
# INT8 on synthetic frames, and evaluate on a HELD-OUT synthetic set (another world seed than
# training and calibration). Writes docs/results/calibration_report.{json,md}.
# Usage: scripts/calibrate_demo.sh [CHECKPOINT] (default dynmm_edge/assets/demo_model/model.pt)
# Env: METHOD (minmax|entropy|percentile, default percentile), CAL_FRAMES (128), EVAL_FRAMES (160), WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT="${1:-dynmm_edge/assets/demo_model/model.pt}"
METHOD="${METHOD:-percentile}"
CAL_FRAMES="${CAL_FRAMES:-128}"
EVAL_FRAMES="${EVAL_FRAMES:-160}"
WORK="${WORK:-$(mktemp -d /tmp/dynmm-calib-demo.XXXXXX)}"
OUT="${OUT:-docs/results/calibration_report.json}"
if [[ ! -f "$CKPT" ]]; then
  echo "checkpoint $CKPT not found (train it first: see docs/TRAINING or dynmm-edge train)" >&2
  exit 2
fi
echo "work folder: $WORK" >&2
dynmm-edge export "$CKPT" -o "$WORK/model" --force
# calibration: 128 of 384 scanned frames, spread over depth ranges and FP32 gate paths
dynmm-edge calibrate "$WORK/model" \
  --source "synthetic://?frames=384&seed=77&motion=walk" --frames "$CAL_FRAMES" --pool 384 \
  --method "$METHOD" --branches depth \
  --eval-source "synthetic://?frames=${EVAL_FRAMES}&seed=2026&motion=walk" --eval-frames "$EVAL_FRAMES" \
  --json "$OUT"
echo "wrote $OUT and ${OUT%.json}.md" >&2
