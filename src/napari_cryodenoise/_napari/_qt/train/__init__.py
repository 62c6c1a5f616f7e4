"""The Train (Noise2Noise) dock widget: form, preview, runner (see :mod:`.widget`)."""

from .widget import TrainWidget

__all__ = ["TrainWidget"]
