#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, GUI tests included, under Xvfb,
# in the same interpreter that scripts/setup.sh installed into.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/_python.sh
export QT_API=${QT_API:-pyqt6}
xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" -m pytest -ra -q "$@"
