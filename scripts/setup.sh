#!/usr/bin/env bash
# One-time set-up of a fresh Debian/Ubuntu machine (as root, or with sudo available):
# system libraries for Qt/OpenGL under a virtual screen, torch (CPU build unless a GPU build
# is already installed) and napari-cryodenoise with its Qt and test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
if command -v apt-get >/dev/null; then
  pkgs="xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
        libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0 libdbus-1-3 libfontconfig1"
  missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi
PY=${PYTHON:-python3}
# torch first, pinned, so that pip never replaces it with a CUDA build
$PY -c "import torch" 2>/dev/null || $PY -m pip install -q "torch==2.13.0"
$PY -m pip install -q -e ".[${EXTRAS:-testing}]"
