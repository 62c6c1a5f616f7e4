"""Compare denoising methods with quality metrics (the core of ``cryodenoise evaluate``).

* :mod:`.methods`: :class:`Method` and :func:`parse_method` (``raw``, ``gaussian:SIGMA``,
  ``lowpass:FACTOR``, models and ensembles);
* :mod:`.run`: :func:`evaluate`, which runs the methods and scores them against ground
  truth, even/odd halves or particle picks;
* :mod:`.report`: the table, CSV, plot and FRC notes.
"""

from __future__ import annotations

from .methods import Method, parse_method, parse_methods
from .report import (
    COLUMNS,
    format_table,
    frc_notes,
    require_matplotlib,
    summarize,
    write_csv,
    write_plot,
)
from .run import FRCCurve, PickOptions, Row, evaluate, picks_for_image, read_single

__all__ = [
    "COLUMNS",
    "FRCCurve",
    "Method",
    "PickOptions",
    "Row",
    "evaluate",
    "format_table",
    "frc_notes",
    "parse_method",
    "parse_methods",
    "picks_for_image",
    "read_single",
    "require_matplotlib",
    "summarize",
    "write_csv",
    "write_plot",
]
