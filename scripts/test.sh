#!/usr/bin/env bash
# Set up the development environment (torch CPU, onnx, onnxruntime, pyrealsense2, opencv) and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
exec .venv/bin/python -m pytest -q "$@"
