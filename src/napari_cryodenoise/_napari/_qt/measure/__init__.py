"""The Measure SNR / FRC dock widget: three panels over one evented state (see :mod:`.widget`)."""

from .widget import MeasureWidget

__all__ = ["MeasureWidget"]
