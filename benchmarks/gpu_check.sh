#!/usr/bin/env bash
# One-shot GPU proof on a bare CUDA machine, from a copy of the working tree (< 8 min):
# GPU tests, 4096^2 unet denoising at fp32/fp16/bf16 (with the deviation from fp32), the
# live first-view latency and 2 minutes of training (steps/s), printed as one table.
#
# It needs a python3 with a CUDA build of torch (the machine's). What else is missing
# (mrcfile, starfile, tifffile, scipy, pytest, ...) is installed from wheels in .whl/ when
# present (for machines without network: `pip download` them here), else from PyPI, into
# /tmp/gpu_check_site; the package itself runs from src/. Pretrained weights are taken
# from $NAPARI_CRYODENOISE_WEIGHTS, .weights/ (copy ~/.cache/napari-cryodenoise/weights
# there) or the cache; without any, the same architecture with random weights is timed.
# Options go to benchmarks/gpu_check.py (e.g. --cpu-steps-per-s 1.9 for the ratio).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SITE=/tmp/gpu_check_site
need=$("$PY" - <<'PYEOF'
import importlib.util
mods = {"mrcfile": "mrcfile", "starfile": "starfile", "tifffile": "tifffile", "scipy": "scipy",
        "pytest": "pytest", "platformdirs": "platformdirs", "pandas": "pandas",
        "tqdm": "tqdm"}
print(" ".join(pkg for mod, pkg in mods.items() if importlib.util.find_spec(mod) is None))
PYEOF
)
if [ -n "$need" ]; then
  echo "installing: $need" >&2
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl
  else
    "$PY" -m pip install -q --target "$SITE" $need
  fi
  export PYTHONPATH="$SITE:${PYTHONPATH:-}"
fi
if [ -z "${NAPARI_CRYODENOISE_WEIGHTS:-}" ] && ls .weights/*.sav >/dev/null 2>&1; then
  export NAPARI_CRYODENOISE_WEIGHTS="$PWD/.weights"
fi
export NAPARI_CRYODENOISE_OFFLINE=${NAPARI_CRYODENOISE_OFFLINE:-1}
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu_check.py "$@"
