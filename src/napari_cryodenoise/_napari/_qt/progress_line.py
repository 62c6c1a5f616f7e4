"""The widget's one-line status with progress and time left (Qt; the estimate is in :mod:`.eta`).

napari's activity panel is hidden by default and moves once per tile; this
line sits in the Denoise dock itself and, while a job runs, is redrawn twice
a second with a fraction interpolated inside the running tile.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QObject, QTimer

from ..eta import Eta


def fit_label(label: Any) -> None:
    """Let a status label wrap inside the dock instead of widening it.

    A QLabel's preferred width is its text's: a long status would push the
    dock (and the canvas) sideways. With word wrap and an ignored horizontal
    size hint it takes the width the dock already has.
    """
    from qtpy.QtWidgets import QSizePolicy

    native = getattr(label, "native", label)
    native.setWordWrap(True)
    native.setMinimumWidth(0)
    policy = native.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    native.setSizePolicy(policy)


class ProgressLine(QObject):
    """Write ``"<prefix>: 3/16 tiles (22%), ~41 s left"`` into a label while a job runs.

    Parameters
    ----------
    label : magicgui Label (or anything with a ``value``)
        Where the text goes.
    interval_ms : int
        How often the text is redrawn while running.

    """

    def __init__(self, label: Any, interval_ms: int = 500) -> None:
        super().__init__()
        self.label = label
        self.eta = Eta()
        self.prefix = ""
        self.suffix = ""
        self.unit = "tiles"
        self.steps: int | None = None  # steps still planned (None: all the rest)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.redraw)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._timer.isActive()

    def start(self, prefix: str, total: int = 0, unit: str = "tiles", done: int = 0) -> None:
        """Begin a job of ``total`` steps (0: not known yet), ``done`` of them already finished."""
        self.prefix, self.unit, self.suffix, self.steps = prefix, unit, "", None
        self.eta.reset(total, done)
        self._timer.start()
        self.redraw()

    def update(self, done: int, total: int, suffix: str = "", steps: int | None = None) -> None:
        """Record progress (main thread) and redraw; ``steps``: how many are still planned.

        Ignored once stopped: a worker's late progress must not replace what the status
        says now (cancelled, the input removed, failed).
        """
        if not self.running:
            return
        self.eta.update(done, total)
        self.suffix, self.steps = suffix, steps
        self.redraw()

    def restart_clock(self) -> None:
        """Work resumes after a pause: measure the rate from now on."""
        self.eta.restart()

    def redraw(self) -> None:
        """Write the current text into the label."""
        text = self.eta.text(self.unit, steps=self.steps)
        self.label.value = f"{self.prefix}: {text}{self.suffix}" if self.prefix else text

    def stop(self, text: str | None = None) -> None:
        """Stop redrawing; optionally leave ``text`` in the label."""
        self._timer.stop()
        if text is not None:
            self.label.value = text
