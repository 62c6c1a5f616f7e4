"""FRC / FSC curves in the dock: a matplotlib canvas themed like napari, or a text fallback.

matplotlib is optional (the ``plot`` extra); without it :func:`make_frc_plot`
returns a label listing each curve's resolutions instead of a plot.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qtpy.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

try:
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure
except ImportError:  # optional dependency
    FigureCanvasQTAgg = Figure = None

from .measure import FrcCurve, format_resolution

#: Curves kept on the plot; older ones are dropped first.
MAX_CURVES = 6


def _theme_colors(viewer: Any) -> tuple[str, str]:
    """Background and text colours of the viewer's theme (napari dark as fallback)."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return theme.background.as_hex(), theme.text.as_hex()
    except Exception:  # noqa: BLE001 - any theme trouble: fall back to dark
        return "#262930", "#f0f1f2"


class FrcPlot(QWidget):
    """FRC curves against spatial frequency, with the 0.143 line and half-bit curve."""

    def __init__(self, viewer: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves: list[FrcCurve] = []
        self._bg, self._fg = _theme_colors(viewer)
        self.figure = Figure(figsize=(4.0, 2.8), dpi=90, facecolor=self._bg, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(230)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.axes = self.figure.add_subplot(111)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.redraw()

    def add(self, curve: FrcCurve) -> None:
        """Add a curve (replacing one with the same label) and redraw.

        Curves in other units (Angstrom vs pixels) or of the other kind (FRC vs
        FSC) cannot share the axes: they are removed first.
        """
        self.curves = [
            c
            for c in self.curves
            if c.label != curve.label and (c.unit, c.volume) == (curve.unit, curve.volume)
        ][-(MAX_CURVES - 1) :]
        self.curves.append(curve)
        self.redraw()

    def clear(self) -> None:
        """Remove every curve."""
        self.curves = []
        self.redraw()

    def redraw(self) -> None:
        """Draw all curves, the 0.143 line and the last curve's half-bit threshold."""
        ax = self.axes
        ax.clear()
        ax.set_facecolor(self._bg)
        for spine in ax.spines.values():
            spine.set_color(self._fg)
        ax.tick_params(colors=self._fg, labelsize=8)
        unit = self.curves[-1].unit if self.curves else "Å"
        kind = "FSC" if self.curves and self.curves[-1].volume else "FRC"
        ax.set_xlabel(f"spatial frequency (1/{unit})", color=self._fg, fontsize=8)
        ax.set_ylabel(kind, color=self._fg, fontsize=8)
        ax.axhline(0.143, color="#9a9a9a", lw=0.8, ls="--", label="0.143")
        ax.axhline(0.0, color=self._fg, lw=0.5, alpha=0.5)
        for k, curve in enumerate(self.curves):
            r = curve.result
            color = f"C{k % 10}"
            ok = np.isfinite(r.correlation)
            ok[0] = False
            text = f"{curve.label}: {format_resolution(curve.res_0143, curve.unit)}"
            ax.plot(r.frequency[ok], r.correlation[ok], color=color, lw=1.2, label=text)
            if math.isfinite(curve.res_0143) and curve.res_0143 > 0:
                ax.axvline(1.0 / curve.res_0143, color=color, lw=0.6, ls=":")
        if self.curves:
            last = self.curves[-1].result
            ax.plot(
                last.frequency[1:],
                last.threshold("half-bit")[1:],
                color="#d0a040",
                lw=0.8,
                ls="-.",
                label="½-bit",
            )
            ax.set_xlim(0, float(last.frequency[-1]))
            legend = ax.legend(
                fontsize=7,
                loc="upper right",
                framealpha=0.6,
                facecolor=self._bg,
                edgecolor=self._fg,
            )
            for t in legend.get_texts():
                t.set_color(self._fg)
        ax.set_ylim(-0.2, 1.05)
        self.canvas.draw_idle()

    def line_data(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(x, y)`` of every plotted curve (not the threshold lines); for tests."""
        return [
            (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
            for line in self.axes.lines
            if not str(line.get_label()).startswith(("0.143", "½-bit", "_"))
        ]


class TextFrcPlot(QLabel):
    """Fallback without matplotlib: one line per curve with its resolutions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves: list[FrcCurve] = []
        self.setWordWrap(True)
        self.redraw()

    def add(self, curve: FrcCurve) -> None:
        """Add a curve (replacing one with the same label)."""
        self.curves = [c for c in self.curves if c.label != curve.label][-(MAX_CURVES - 1) :]
        self.curves.append(curve)
        self.redraw()

    def clear(self) -> None:
        """Remove every curve."""
        self.curves = []
        self.redraw()

    def redraw(self) -> None:
        """Show the curves' resolutions and how to get the plot."""
        lines = [
            f"{c.label}: {format_resolution(c.res_0143, c.unit)} at 0.143, "
            f"{format_resolution(c.res_halfbit, c.unit)} at ½-bit"
            for c in self.curves
        ]
        lines.append(
            "(install matplotlib, e.g. pip install 'napari-cryodenoise[plot]', to see the curves)"
        )
        self.setText("\n".join(lines))

    def line_data(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(frequency, correlation)`` of every curve."""
        return [(c.result.frequency, c.result.correlation) for c in self.curves]


def make_frc_plot(viewer: Any = None) -> FrcPlot | TextFrcPlot:
    """Return a matplotlib FRC plot when matplotlib is installed, else the text fallback."""
    return FrcPlot(viewer) if FigureCanvasQTAgg is not None else TextFrcPlot()
