"""One state per micrograph of a watch, from which the status line counts what is pending.

The queue, the redo queue, the executor's items in flight, those stopped with the watch
and the scanner's settling files are separate lists; a file can be in two of them at
once (in flight, then among the stopped; queued and redone; taken, then changed and
settling again). Counting each list on its own counted such a file twice (a stopped Dask
watch of 8 files said "pending 7" after 2 were done). :class:`FileStates` keeps the one
current state of each input file instead, so a file is counted once whatever it is in.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Literal

__all__ = ["FileStates", "State"]

#: ``queued`` (also for a redo), ``running`` (submitted), ``stopped`` (in flight when the
#: watch stopped: left for the next run), ``done`` or ``failed``.
State = Literal["queued", "running", "stopped", "done", "failed"]
#: The states still to do.
WAITING: tuple[State, ...] = ("queued", "running", "stopped")


def _key(path: str | os.PathLike) -> str:
    return os.path.normpath(os.fspath(path))


class FileStates:
    """The current state of every input the watch has queued, keyed by its path."""

    def __init__(self) -> None:
        self._states: dict[str, State] = {}

    def set(self, inp: str | os.PathLike, state: State) -> None:
        """``inp`` is ``state`` now (whatever it was before)."""
        self._states[_key(inp)] = state

    def get(self, inp: str | os.PathLike) -> State | None:
        """The state of ``inp`` (None: never queued)."""
        return self._states.get(_key(inp))

    def stop(self) -> None:
        """The watch stops: what is running is left for the next run."""
        for key, state in self._states.items():
            if state == "running":
                self._states[key] = "stopped"

    def count(self, *states: State) -> int:
        """Inputs in any of ``states``."""
        return sum(1 for s in self._states.values() if s in states)

    @property
    def pending(self) -> int:
        """Inputs still to do: queued, running or stopped, each once."""
        return self.count(*WAITING)

    def settling(self, paths: Iterable[str | os.PathLike]) -> int:
        """Of the scanner's not-yet-ready ``paths``, those not already counted as pending."""
        return sum(1 for p in set(map(_key, paths)) if self._states.get(p) not in WAITING)
