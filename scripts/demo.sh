#!/usr/bin/env bash
# Set up (idempotent) and open napari with napari-cryodenoise and a synthetic micrograph.
# Pass MRC/TIFF files to open them instead; --screenshot PNG renders under Xvfb and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=qt,plot,distributed,eer bash scripts/setup.sh
source scripts/_python.sh
export QT_API=${QT_API:-pyqt6}
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [[ " $* " != *" --screenshot "* ]]; then
  echo "no screen: rendering under Xvfb to cryodenoise-demo.png instead of opening a window" >&2
  set -- "$@" --screenshot cryodenoise-demo.png
fi
if [[ " $* " == *" --screenshot "* ]]; then
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" scripts/demo.py "$@"
fi
exec "$PY" scripts/demo.py "$@"
