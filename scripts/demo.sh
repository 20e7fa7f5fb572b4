#!/usr/bin/env bash
# Set up (no torch, no GPU, no camera needed) and run the demo; extra arguments go to `dynmm-edge demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
exec .venv/bin/dynmm-edge demo "$@"
