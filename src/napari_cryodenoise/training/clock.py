"""Time keeping of a training session: elapsed time, the time budget, speed and ETA.

Plain Python (no torch): the rules that decide when a time-budgeted run stops and
what the progress display shows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Estimate", "TrainClock", "format_duration"]

#: Steps whose median duration gives the current speed.
RECENT = 20


@dataclass(frozen=True)
class Estimate:
    """Progress after a step: planned total, seconds left, average and current speed."""

    total: int
    eta: float
    steps_per_second: float
    recent_rate: float


class TrainClock:
    """Step durations and the budget of one session.

    Parameters
    ----------
    target_steps : int, optional
        Total step count to reach.
    budget_s : float, optional
        Seconds this session may take.

    """

    def __init__(self, target_steps: int | None, budget_s: float | None) -> None:
        self.target_steps = target_steps
        self.budget_s = budget_s
        self.step_times: list[float] = []
        self.val_seconds = 0.0
        self._start: float | None = None
        self.start_step = 0

    def start(self, step: int) -> None:
        """The loop begins at ``step`` (a resumed run's earlier steps are not timed)."""
        self._start = time.perf_counter()
        self.start_step = step

    def elapsed(self) -> float:
        """Seconds since :meth:`start` (0 before)."""
        return 0.0 if self._start is None else time.perf_counter() - self._start

    def fraction(self, step: int, elapsed: float) -> float:
        """Share of the run done: by steps when there is a step target, else by time."""
        if self.target_steps is not None:
            return step / self.target_steps
        return elapsed / self.budget_s

    def reserve(self, validating: bool) -> float:
        """Seconds the next step plus a final validation will take."""
        step = float(np.median(self.step_times[-RECENT:])) if self.step_times else 0.0
        return step + (self.val_seconds if validating else 0.0)

    def past_budget(self, elapsed: float, validating: bool) -> bool:
        """Whether the next step and the final validation would end past the budget."""
        return self.budget_s is not None and elapsed + self.reserve(validating) > self.budget_s

    def reached(self, step: int) -> bool:
        """Whether the step target is reached."""
        return self.target_steps is not None and step >= self.target_steps

    def estimate(self, step: int, elapsed: float) -> Estimate:
        """Planned total steps, ETA and speeds after ``step`` (needs one timed step)."""
        done_here = step - self.start_step
        sps = done_here / max(elapsed, 1e-9) if done_here else 0.0
        recent_rate = 1.0 / max(float(np.median(self.step_times[-RECENT:])), 1e-9)
        if self.target_steps is not None:
            total = self.target_steps
            eta = (self.target_steps - step) / recent_rate
            if self.budget_s is not None:
                eta = min(eta, max(self.budget_s - elapsed, 0.0))
        else:
            eta = max(self.budget_s - elapsed, 0.0)
            total = step + int(eta * recent_rate)
        return Estimate(total, eta, sps, recent_rate)


def format_duration(seconds: float | None) -> str:
    """``"45 s"``, ``"3 min 20 s"``, ``"1 h 05 min"`` (``"?"`` when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"
