"""The Denoise dock widget: small panels over one evented state (see :mod:`.widget`)."""

from .widget import DenoiseWidget

__all__ = ["DenoiseWidget"]
