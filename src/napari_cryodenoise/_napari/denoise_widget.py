"""Old import path of the Denoise dock widget, kept for scripts.

The widget lives in :mod:`napari_cryodenoise._napari._qt.denoise`.
"""

from ._qt.denoise import DenoiseWidget

__all__ = ["DenoiseWidget"]
