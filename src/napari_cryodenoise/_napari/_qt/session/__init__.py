"""The "Session browser" dock widget (see :mod:`.widget`)."""

from .widget import SessionWidget

__all__ = ["SessionWidget"]
