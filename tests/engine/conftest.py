"""Engine tests: the stand-in networks of ``_engine_nets`` import as a top-level module."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
