"""Progress bars of the command line, on stderr: tqdm on a terminal, quiet lines otherwise.

* :class:`StderrProgress`: a batch's ``progress(done, total)`` over files; on a terminal a
  tqdm bar, otherwise (logs, SLURM output) one plain line at most every ``interval``
  seconds and at the end, so log files stay readable;
* :class:`FileBar`: the tiles of one file; on a terminal a tqdm bar that disappears when
  the file is done, otherwise nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

__all__ = ["FileBar", "StderrProgress"]


def _is_tty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class StderrProgress:
    """A progress bar on stderr, with the ``progress(done, total)`` signature.

    Parameters
    ----------
    label : str
        Text before the bar.
    stream : file, optional
        Defaults to ``sys.stderr``.
    width : int
        Bar width in characters of the plain lines (not on a terminal).
    interval : float
        Minimum seconds between lines when the stream is not a terminal.

    """

    def __init__(
        self,
        label: str = "denoise",
        *,
        stream: TextIO | None = None,
        width: int = 30,
        interval: float = 10.0,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self._start = time.monotonic()
        self._last = -float("inf")
        self._tty = _is_tty(self.stream)
        self._lock = threading.Lock()
        self._bar: Any = None  # the tqdm bar, on a terminal

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` items."""
        with self._lock:
            if self._tty:
                self._draw_tqdm(done, total)
                return
            now = time.monotonic()
            final = done >= total
            if not final and now - self._last < self.interval:
                return
            self._last = now
            frac = done / total if total else 1.0
            filled = int(round(self.width * frac))
            elapsed = now - self._start
            eta = ""
            if 0 < done < total:
                eta = f" eta {elapsed / done * (total - done):.0f} s"
            self.stream.write(
                f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{done}/{total} {elapsed:.0f} s{eta}\n"
            )
            self.stream.flush()

    def _draw_tqdm(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, desc=self.label, file=self.stream, unit="file")
        bar = self._bar
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            self._bar = None

    def message(self, text: str) -> None:
        """Print a line (a retry, a failure) without breaking the bar."""
        with self._lock:
            if self._bar is not None:
                self._bar.write(text, file=self.stream)
                return
            self.stream.write(f"{text}\n")
            self.stream.flush()

    def close(self) -> None:
        """Close the bar (if a run stopped before its end)."""
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


class FileBar:
    """The tiles of one file as a transient tqdm bar on a terminal; nothing otherwise.

    Parameters
    ----------
    label : str
        Text before the bar (``[i/n] name``).
    enabled : bool
        Draw at all (the CLI passes whether stderr is a terminal).

    """

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled = label, enabled
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` tiles."""
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=self.label, file=sys.stderr, leave=False, unit="tile"
            )
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
