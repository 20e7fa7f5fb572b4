#!/usr/bin/env bash
# Set up the development environment (torch CPU, onnx, onnxruntime, pyrealsense2, opencv) and run the tests:
# the default set (pyproject deselects `slow`), then the `slow` tests explicitly. Extra args go to both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
.venv/bin/python -m pytest -q "$@"
rc=0
.venv/bin/python -m pytest -q -m slow "$@" || rc=$?
[ "$rc" -eq 5 ] && rc=0  # 5: no slow test among the selected paths
exit "$rc"
