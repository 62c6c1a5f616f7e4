"""Plots in the docks: matplotlib canvases themed like napari, or text fallbacks.

* :class:`FrcPlot`: FRC / FSC curves (the Measure widget);
* :class:`LossPlot`: training and validation loss against step (the Train widget).

Both share :class:`ThemedPlot` (figure, canvas, napari colours). matplotlib is
optional (the ``plot`` extra); without it :func:`make_frc_plot` and
:func:`make_loss_plot` return labels that list the numbers instead.
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

from ..measure_frc import FrcCurve, format_resolution

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


class ThemedPlot(QWidget):
    """One matplotlib axes in napari's theme colours; subclasses implement :meth:`redraw`.

    Parameters
    ----------
    viewer : napari.Viewer, optional
        Whose theme to follow (napari dark without one).
    parent : QWidget, optional
    height : int
        Minimum canvas height in screen pixels.

    """

    def __init__(
        self, viewer: Any = None, parent: QWidget | None = None, *, height: int = 230
    ) -> None:
        super().__init__(parent)
        self._bg, self._fg = _theme_colors(viewer)
        self.figure = Figure(figsize=(4.0, 2.8), dpi=90, facecolor=self._bg, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(height)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.axes = self.figure.add_subplot(111)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

    def redraw(self) -> None:
        """Draw the plot from scratch."""
        raise NotImplementedError

    def _start(self, xlabel: str, ylabel: str) -> Any:
        """Clear the axes and style them (colours, ticks, labels); returns the axes."""
        ax = self.axes
        ax.clear()
        ax.set_facecolor(self._bg)
        for spine in ax.spines.values():
            spine.set_color(self._fg)
        ax.tick_params(colors=self._fg, labelsize=8)
        ax.set_xlabel(xlabel, color=self._fg, fontsize=8)
        ax.set_ylabel(ylabel, color=self._fg, fontsize=8)
        return ax

    def _legend(self, loc: str = "upper right") -> None:
        legend = self.axes.legend(
            fontsize=7, loc=loc, framealpha=0.6, facecolor=self._bg, edgecolor=self._fg
        )
        for t in legend.get_texts():
            t.set_color(self._fg)

    def line_data(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(x, y)`` of every labelled line except reference lines; for tests."""
        return [
            (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
            for line in self.axes.lines
            if not str(line.get_label()).startswith(("0.143", "½-bit", "_"))
        ]


class FrcPlot(ThemedPlot):
    """FRC curves against spatial frequency, with the 0.143 line and half-bit curve."""

    def __init__(self, viewer: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(viewer, parent)
        self.curves: list[FrcCurve] = []
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
        unit = self.curves[-1].unit if self.curves else "Å"
        kind = "FSC" if self.curves and self.curves[-1].volume else "FRC"
        ax = self._start(f"spatial frequency (1/{unit})", kind)
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
            self._legend()
        ax.set_ylim(-0.2, 1.05)
        self.canvas.draw_idle()


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


# -- training loss ---------------------------------------------------------------------
Points = list[tuple[int, float]]
#: Most points drawn per training curve (longer runs are thinned for a fast redraw).
MAX_LOSS_POINTS = 2000


def smooth(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average with a ``span``-step memory (bias-corrected at the start)."""
    alpha = 2.0 / (max(int(span), 1) + 1.0)
    out = np.empty(len(values), dtype=float)
    acc = weight = 0.0
    for i, v in enumerate(values):
        acc = (1 - alpha) * acc + alpha * float(v)
        weight = (1 - alpha) * weight + alpha
        out[i] = acc / weight
    return out


def _loss_limits(parts: list[np.ndarray]) -> tuple[float, float] | None:
    """Y range covering the smoothed train and validation curves with a margin."""
    values = np.concatenate([p for p in parts if p.size]) if any(p.size for p in parts) else None
    if values is None:
        return None
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    lo, hi = float(values.min()), float(values.max())
    pad = max(0.15 * (hi - lo), 0.01 * abs(hi), 1e-6)
    return lo - pad, hi + pad


class LossPlot(ThemedPlot):
    """Training loss (per step, faint, and smoothed) and validation loss against step.

    The y range follows the smoothed training and the validation curves, so
    single noisy steps do not squash them. Redraw cost grows with the number
    of points; callers throttle (the Train widget redraws at most 4 times a second).
    """

    def __init__(self, viewer: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(viewer, parent, height=200)
        self.train: Points = []
        self.val: Points = []
        self.redraw()

    def set_history(self, train: Points, val: Points) -> None:
        """Replace the curves with ``(step, loss)`` lists and redraw."""
        self.train, self.val = list(train), list(val)
        self.redraw()

    def clear(self) -> None:
        """Remove both curves."""
        self.set_history([], [])

    def redraw(self) -> None:
        """Draw both curves and mark the best validation loss."""
        ax = self._start("step", "loss (normalised)")
        parts = []
        if self.train:
            steps, loss = (np.asarray(v, float) for v in zip(*self.train, strict=True))
            smoothed = smooth(loss, max(8, len(loss) // 10))
            k = max(1, len(loss) // MAX_LOSS_POINTS)  # long runs: draw every k-th step
            ax.plot(steps[::k], loss[::k], color="C0", lw=0.6, alpha=0.35, label="_per step")
            ax.plot(steps[::k], smoothed[::k], color="C0", lw=1.4, label="train (smoothed)")
            parts.append(smoothed)
        if self.val:
            vsteps, vloss = (np.asarray(v, float) for v in zip(*self.val, strict=True))
            ax.plot(vsteps, vloss, color="C1", lw=1.2, marker="o", ms=3, label="validation")
            best = int(np.nanargmin(vloss))
            ax.plot(vsteps[best], vloss[best], "*", color="#f0d040", ms=9, label="_best")
            parts.append(vloss)
        limits = _loss_limits(parts)
        if limits is not None:
            ax.set_ylim(*limits)
            ax.set_xlim(0, max(1.0, max(s for s, _ in self.train + self.val) * 1.02))
            self._legend()
        else:
            ax.text(
                0.5,
                0.5,
                "losses appear here as training runs",
                ha="center",
                va="center",
                color=self._fg,
                fontsize=8,
                alpha=0.7,
                transform=ax.transAxes,
            )
        self.canvas.draw_idle()


class TextLossPlot(QLabel):
    """Fallback without matplotlib: the latest and best losses as text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.train: Points = []
        self.val: Points = []
        self.setWordWrap(True)
        self.redraw()

    def set_history(self, train: Points, val: Points) -> None:
        """Replace the numbers and redraw."""
        self.train, self.val = list(train), list(val)
        self.redraw()

    def clear(self) -> None:
        """Forget both curves."""
        self.set_history([], [])

    def redraw(self) -> None:
        """Show the last training loss and the validation losses."""
        lines = []
        if self.train:
            step, loss = self.train[-1]
            lines.append(f"step {step}: train loss {loss:.4g}")
        if self.val:
            best = min(self.val, key=lambda p: p[1])
            lines.append(f"validation {self.val[-1][1]:.4g} (best {best[1]:.4g} at {best[0]})")
        lines.append(
            "(install matplotlib, e.g. pip install 'napari-cryodenoise[plot]', for a plot)"
        )
        self.setText("\n".join(lines))

    def line_data(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(steps, losses)`` of the training and the validation curve."""
        return [
            (np.asarray([s for s, _ in pts]), np.asarray([v for _, v in pts]))
            for pts in (self.train, self.val)
            if pts
        ]


def make_loss_plot(viewer: Any = None) -> LossPlot | TextLossPlot:
    """Return a matplotlib loss plot when matplotlib is installed, else the text fallback."""
    return LossPlot(viewer) if FigureCanvasQTAgg is not None else TextLossPlot()
