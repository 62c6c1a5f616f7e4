#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh Debian/Ubuntu machine (as root, or with sudo):
# system libraries for Qt/OpenGL under a virtual screen, a Python environment (the active
# venv/conda environment, else a project .venv/ made from the stock python3), torch (CPU
# build unless a build is already installed) and napari-cryodenoise with its extras.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
source scripts/_python.sh
BASE=${PYTHON:-python3}
if command -v apt-get >/dev/null; then
  pkgs="xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
        libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0 libdbus-1-3 libfontconfig1"
  # a stock Debian/Ubuntu python3 needs the venv module (with ensurepip) from its own package
  if [ ! -x "$PY" ] && ! "$BASE" -c "import ensurepip, venv" 2>/dev/null; then
    pkgs="$pkgs python3-venv"
  fi
  missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "installing system packages:$missing" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi
if [ ! -x "$PY" ]; then
  "$BASE" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "error: napari-cryodenoise needs Python >= 3.11; $BASE is $("$BASE" -V 2>&1)." \
         "Set PYTHON=/path/to/python3.11+ and rerun." >&2
    exit 1
  }
  echo "creating the project environment .venv/ with $("$BASE" -V 2>&1)" >&2
  rm -rf .venv
  "$BASE" -m venv .venv
  "$PY" -m pip install -q --upgrade pip
fi
# torch first, pinned, so that pip never replaces it with a CUDA build
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0"
"$PY" -m pip install -q -e ".[${EXTRAS:-testing}]"
