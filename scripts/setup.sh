#!/usr/bin/env bash
# Fresh-machine setup: system libraries, a virtual environment in .venv, the package with an extra.
# usage: scripts/setup.sh EXTRA      (EXTRA: demo | dev | ...; see pyproject.toml)
set -euo pipefail
extra="${1:-demo}"
cd "$(dirname "$0")/.."

# pyrealsense2 needs libusb-1.0-0; opencv-python needs libGL and glib (names differ across Debian releases)
if command -v apt-get >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  missing=()
  for lib in libusb-1.0.so.0 libGL.so.1 libgthread-2.0.so.0; do
    ldconfig -p 2>/dev/null | grep -q "$lib" || missing+=("$lib")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing system libraries for: ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 libgl1 \
      || $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 libgl1
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libglib2.0-0 \
      || $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libglib2.0-0t64
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[${extra}]"
