"""The one-line live status of a watch: done, pending, rate, last file, errors, model.

:class:`WatchStatus` is the plain record the watch updates; :class:`StatusLine` shows it
on a stream: on a terminal the line is rewritten in place (at most a few times a second),
otherwise (a log file, SLURM output) a plain line is printed every ``interval`` seconds
and whenever the counts change after a quiet spell, so logs stay short.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["StatusLine", "WatchStatus"]


@dataclass
class WatchStatus:
    """Counts and facts shown on the status line."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    queued: int = 0
    settling: int = 0
    running: int = 0
    last: str = ""
    last_model: str = ""
    model: str = ""
    training: str = ""
    finish_times: deque = field(default_factory=lambda: deque(maxlen=41))

    def finished_one(self, when: float | None = None) -> None:
        """Note a micrograph denoised now (for the rate)."""
        self.finish_times.append(time.monotonic() if when is None else when)

    @property
    def rate(self) -> float | None:
        """Micrographs per minute: the median over the last intervals between outputs."""
        times = list(self.finish_times)
        if len(times) < 2:
            return None
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        median = statistics.median(gaps)
        return 60.0 / median if median > 0 else None

    @property
    def pending(self) -> int:
        """Files waiting: settling, queued, being denoised."""
        return self.queued + self.settling + self.running

    def text(self) -> str:
        """The status line."""
        rate = self.rate
        parts = [
            f"done {self.done}" + (f" (+{self.skipped} earlier)" if self.skipped else ""),
            f"pending {self.pending}",
            f"{rate:.1f}/min" if rate is not None else "-/min",
            f"errors {self.failed}",
        ]
        if self.model:
            parts.append(f"model {self.model}")
        if self.training:
            parts.append(self.training)
        if self.last:
            parts.append(
                f"last {self.last}" + (f" [{self.last_model}]" if self.last_model else "")
            )
        return "watch: " + ", ".join(parts)


class StatusLine:
    """Show a :class:`WatchStatus` on ``stream`` (stderr by default)."""

    def __init__(
        self, stream: TextIO | None = None, *, interval: float = 30.0, tty: bool | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.interval = interval
        self._last_time = -float("inf")
        self._last_text = ""
        self._shown = False

    def show(self, status: WatchStatus, *, force: bool = False) -> None:
        """Show the line if it is due (terminal: changed; log: every ``interval`` s)."""
        text = status.text()
        now = time.monotonic()
        if self.tty:
            if text == self._last_text and not force:
                return
            if now - self._last_time < 0.2 and not force:
                return
            width = 159
            self.stream.write("\r" + text[:width].ljust(min(width, len(self._last_text))))
            self.stream.flush()
            self._shown = True
        else:
            if not force and (text == self._last_text or now - self._last_time < self.interval):
                return
            self.stream.write(text + "\n")
            self.stream.flush()
        self._last_text, self._last_time = text, now

    def message(self, text: str) -> None:
        """Print a line of its own (an error, a note), keeping the status line below it."""
        if self.tty and self._shown:
            self.stream.write("\r" + " " * min(159, len(self._last_text)) + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()
        if self.tty and self._shown:
            self.stream.write(self._last_text[:159])
            self.stream.flush()

    def close(self, status: WatchStatus) -> None:
        """Show the final line (and end the terminal line)."""
        if self.tty or status.text() != self._last_text:
            self.show(status, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
