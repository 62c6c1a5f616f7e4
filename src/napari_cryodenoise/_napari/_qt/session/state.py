"""The one evented state the Session browser's panels observe (no Qt objects)."""

from __future__ import annotations

from dataclasses import dataclass

from psygnal import evented

from ...session import Session

__all__ = ["SessionState"]


@evented
@dataclass(eq=False)
class SessionState:
    """What the Session panels share (every field emits ``events.<name>`` when it changes).

    Attributes
    ----------
    session : Session or None
        The open session.
    index : int
        The micrograph shown (-1: none).
    count : int
        Micrographs in the session (grows as new ones arrive).
    marks : int
        Bumped whenever a mark changes (the counts follow it).
    facts : str
        The facts line of the micrograph shown.
    status : str
        The one-line status (loading, tiles in view, saved, errors).

    """

    session: Session | None = None
    index: int = -1
    count: int = 0
    marks: int = 0
    facts: str = ""
    status: str = ""
