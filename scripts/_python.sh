# Sourced by the set-up, test and demo scripts: choose the Python interpreter in $PY.
#
# - Inside an active virtual environment or conda environment, use its python.
# - Otherwise create (once) and reuse a project environment in .venv/, so that a
#   stock Debian/Ubuntu python3, which is "externally managed" (PEP 668) and refuses
#   pip installs, is never installed into.
# PYTHON=/path/to/python3 chooses the interpreter that creates .venv/.
if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
  PY="$VIRTUAL_ENV/bin/python"
elif [ -n "${CONDA_PREFIX:-}" ] && [ -x "$CONDA_PREFIX/bin/python" ]; then
  PY="$CONDA_PREFIX/bin/python"
else
  PY="$PWD/.venv/bin/python"
fi
