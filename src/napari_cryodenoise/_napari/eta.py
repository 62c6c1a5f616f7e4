"""Progress with a time-left estimate, from ``(done, total)`` updates (no Qt).

Whole-image jobs report progress once per tile (a 2048 x 2048 image on a CPU
is only a few 1024-pixel tiles), so :meth:`Eta.fraction` also interpolates
inside the running tile from the average time per tile: the widget can move
its progress line smoothly between reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def format_seconds(seconds: float) -> str:
    """``"8 s"``, ``"2 min 5 s"`` or ``"1 h 3 min"`` (rounded up to a whole second)."""
    s = max(0, int(-(-seconds // 1)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"


class Eta:
    """Track ``done`` of ``total`` steps and estimate the time left.

    The rate is measured from the start of the run (or the last
    :meth:`restart`), so the estimate appears after the first finished step.
    A smaller ``done`` or another ``total`` starts a new run.

    Parameters
    ----------
    clock : callable
        Returns seconds (monotonic); injectable for tests.

    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.reset()

    def reset(self, total: int = 0, done: int = 0) -> None:
        """Start a new run of ``total`` steps, ``done`` of them already finished."""
        self.total = int(total)
        self.done = int(done)
        self.restart()

    def restart(self) -> None:
        """Measure the rate from now on (e.g. work resumed after a pause), keeping the counts."""
        self._t0 = self.clock()
        self._base = (self._t0, self.done)  # the rate is measured from here
        self._last = self._t0  # time of the last finished step

    def update(self, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` steps are finished."""
        done, total = int(done), int(total)
        if total != self.total or done < self.done:
            self.reset(total)
        if done > self.done:
            self._last = self.clock()
            self.done = done

    @property
    def per_step(self) -> float | None:
        """Average seconds per step since the (re)start, or None before a step finished."""
        t_base, d_base = self._base
        steps = self.done - d_base
        if steps <= 0:
            return None
        return max(1e-6, (self._last - t_base) / steps)

    def fraction(self, now: float | None = None) -> float:
        """Fraction finished, interpolated inside the running step (never reaches the next)."""
        if self.total <= 0:
            return 0.0
        if self.done >= self.total:
            return 1.0
        partial = 0.0
        step = self.per_step
        if step is not None:
            now = self.clock() if now is None else now
            partial = min(0.95, max(0.0, (now - self._last) / step))
        return min(1.0, (self.done + partial) / self.total)

    def remaining(self, now: float | None = None, steps: int | None = None) -> float | None:
        """Seconds left for ``steps`` more steps (default: the rest), or None while unknown."""
        step = self.per_step
        if step is None or self.total <= 0:
            return None
        steps = self.total - self.done if steps is None else int(steps)
        if steps <= 0:
            return 0.0
        now = self.clock() if now is None else now
        return max(0.0, steps * step - (now - self._last))

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the run started."""
        return (self.clock() if now is None else now) - self._t0

    def text(self, unit: str = "tiles", now: float | None = None, steps: int | None = None) -> str:
        """``"3/16 tiles (22%), ~41 s left"`` (``"..., 5 s so far"`` before the first step).

        ``steps``: how many steps are still planned, when not all the rest is.
        """
        now = self.clock() if now is None else now
        if self.total <= 0:
            return f"starting, {format_seconds(self.elapsed(now))} so far"
        percent = int(100 * self.fraction(now))
        head = f"{self.done}/{self.total} {unit} ({percent}%)"
        if self.done >= self.total or steps == 0:
            return head
        left = self.remaining(now, steps)
        if left is None:
            return f"{head}, {format_seconds(self.elapsed(now))} so far"
        return f"{head}, ~{format_seconds(left)} left"
