"""The Measure widget's score table: fits the dock's width, never scrolls sideways.

Number columns get their content width (or a proportional share when the
dock is too narrow for all of them); the layer-name column takes the rest and
elides long names in the middle (the full name is in the tooltip). Headers are
short; their tooltips say what each column is.
"""

from __future__ import annotations

import math
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QFont
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from ..measure import SnrResult

__all__ = ["COLUMNS", "HEADERS", "ScoreTable"]

#: Column names (tab-separated copies use these).
COLUMNS = ("Layer", "SNR (dB)", "Gain (dB)", "Pairs", "Noise σ", "Noise/std", "PSNR (dB)", "SSIM")
#: Short, two-line header labels, so that the table fits a narrow dock.
HEADERS = ("Layer", "SNR\ndB", "Gain\ndB", "Pairs", "Noise\nσ", "σ/\nstd", "PSNR\ndB", "SSIM")
HEADER_TIPS = (
    "Image layer ('(ref)': the reference the gain is measured against)",
    "Region SNR in dB (Topaz-Denoise definition)",
    "SNR gain over the reference layer, in dB",
    "Signal/background region pairs measured",
    "Estimated white-noise standard deviation",
    "Noise σ relative to the image's standard deviation",
    "PSNR against the ground-truth layer, in dB (after an affine fit)",
    "Structural similarity to the ground-truth layer",
)
#: Columns hidden while no row has a value in them (noise, PSNR, SSIM).
OPTIONAL = {4: "noise_sigma", 5: "noise_rel", 6: "psnr_db", 7: "ssim"}
PAIRS = 3
HEADER_PAD = 8
LAYER_MIN = 64
NUMBER_MIN = 28


def _fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return ""
    if not math.isfinite(value):
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _sigfig(value: float | None) -> str:
    return "" if value is None else ("—" if not math.isfinite(value) else f"{value:.3g}")


class ScoreTable(QTableWidget):
    """Read-only SNR table whose columns always fit the visible width."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(HEADERS)
        for c, tip in enumerate(HEADER_TIPS):
            self.horizontalHeaderItem(c).setToolTip(tip)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setWordWrap(False)
        font = self.font()  # a point smaller than the form: room for more columns
        if font.pointSizeF() > 8:
            font.setPointSizeF(font.pointSizeF() - 1)
            self.setFont(font)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(NUMBER_MIN)
        header.setTextElideMode(Qt.TextElideMode.ElideRight)
        # the table never asks the dock to be wider than it is
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        for c in OPTIONAL:
            self.setColumnHidden(c, True)
        self._fit_minimum_width()
        self.fit_height()

    # ------------------------------------------------------------------------- contents

    def show_result(self, result: SnrResult) -> None:
        """Fill one row per measured layer (the reference in bold)."""
        rows = result.rows
        self.setRowCount(len(rows))
        bold = QFont()
        bold.setBold(True)
        for r, row in enumerate(rows):
            is_ref = row.name == result.reference
            values = [
                row.name + (" (ref)" if is_ref else ""),
                _fmt(row.snr_db),
                _fmt(result.gain_db(row), signed=True),
                str(row.pairs),
                _sigfig(row.noise_sigma),
                _fmt(row.noise_rel, 2),
                _fmt(row.psnr_db, 1),
                _fmt(row.ssim, 3),
            ]
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if is_ref:
                    item.setFont(bold)
                item.setToolTip(row.name + (f": {row.note}" if row.note else ""))
                self.setItem(r, c, item)
        for c, attr in OPTIONAL.items():
            self.setColumnHidden(c, all(getattr(r, attr) is None for r in rows))
        # every layer measured on all pairs (the status line says how many): no Pairs column
        self.setColumnHidden(PAIRS, all(r.pairs == result.pairs for r in rows))
        self._fit_minimum_width()
        self.fit_height()
        self.fit_columns()

    def text(self) -> str:
        """The table as tab-separated text (full column names first).

        The visible columns, and Pairs always (hidden on screen when uniform).
        """
        cols = [c for c in range(self.columnCount()) if c == PAIRS or not self.isColumnHidden(c)]
        lines = ["\t".join(COLUMNS[c] for c in cols)]
        for r in range(self.rowCount()):
            lines.append(
                "\t".join((self.item(r, c).text() if self.item(r, c) else "") for c in cols)
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------------- geometry

    def fit_height(self) -> None:
        """Show 2 to 8 rows without a vertical scroll bar where possible."""
        rows = min(max(self.rowCount(), 2), 8)
        height = self.horizontalHeader().sizeHint().height()
        height += rows * self.verticalHeader().defaultSectionSize()
        self.setFixedHeight(height + 2 * self.frameWidth() + 2)

    def _fit_minimum_width(self) -> None:
        """Room for the layer column and every visible number column at their minimum."""
        numbers = sum(1 for c in range(1, self.columnCount()) if not self.isColumnHidden(c))
        scroll = self.verticalScrollBar().sizeHint().width()
        self.setMinimumWidth(LAYER_MIN + NUMBER_MIN * numbers + 2 * self.frameWidth() + scroll)

    def _wanted(self, column: int) -> tuple[int, int]:
        """Width for the column's cells, and for its header label too."""
        cells = max(self.sizeHintForColumn(column), NUMBER_MIN)
        # the theme's header padding is not in the section size hint
        label = self.horizontalHeader().sectionSizeHint(column) + HEADER_PAD
        return cells, max(cells, label)

    def column_widths(self, available: int) -> dict[int, int]:
        """Widths of the visible columns that add up to ``available`` pixels.

        Number columns get room for their header and cells, and the layer
        column the rest, down to :data:`LAYER_MIN` (long names are elided).
        When that is not enough the headers give way first (elided; their
        tooltips say what they are), and only then the numbers, in proportion.
        """
        visible = [c for c in range(self.columnCount()) if not self.isColumnHidden(c)]
        wanted = {c: self._wanted(c) for c in visible if c}
        layer_min = min(self._wanted(0)[1], LAYER_MIN) if 0 in visible else 0
        room = max(available - layer_min, NUMBER_MIN * len(wanted))
        full = sum(w for _, w in wanted.values())
        cells = sum(w for w, _ in wanted.values())
        if full <= room:
            numbers = {c: w for c, (_, w) in wanted.items()}
        elif cells <= room:  # headers elided, numbers whole
            spare = room - cells
            numbers = {c: n + (w - n) * spare // (full - cells) for c, (n, w) in wanted.items()}
        else:
            numbers = {c: max(NUMBER_MIN, n * room // cells) for c, (n, _) in wanted.items()}
        widths = dict(numbers)
        if 0 in visible:
            widths[0] = max(available - sum(numbers.values()), 1)
        return widths

    def fit_columns(self) -> None:
        """Size the columns to the viewport's width (no horizontal scrolling)."""
        available = self.viewport().width()
        if available <= 1:
            return
        for c, width in self.column_widths(available).items():
            if self.columnWidth(c) != width:
                self.setColumnWidth(c, width)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        """Refit the columns whenever the dock changes width."""
        super().resizeEvent(event)
        self.fit_columns()

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        """Fit once the table has its real width."""
        super().showEvent(event)
        self.fit_columns()
