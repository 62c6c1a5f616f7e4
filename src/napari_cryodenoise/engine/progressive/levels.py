"""Display levels of a live plane: 2x block-mean pyramids and a cheap resampling.

No Qt, no torch. The pyramid rule and the block means are the engine's one home for them,
:mod:`napari_cryodenoise.engine.pyramid` (also the reader's), so raw and denoised layers
look alike zoomed out (block averages, no aliasing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..pyramid import block_mean, display_levels, pyramid_depth

__all__ = ["display_levels", "halve", "pyramid_depth", "resample_nearest"]


def halve(image: np.ndarray) -> np.ndarray:
    """Means of 2x2 blocks (odd edges cropped), float32."""
    return block_mean(image, 2)


def resample_nearest(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``image`` brought to ``shape`` by nearest-neighbour indexing (cheap), float32."""
    h, w = (int(n) for n in shape)
    if tuple(image.shape) == (h, w):
        return np.asarray(image, dtype=np.float32)
    rows = np.minimum((np.arange(h) * image.shape[0]) // h, image.shape[0] - 1)
    cols = np.minimum((np.arange(w) * image.shape[1]) // w, image.shape[1] - 1)
    return np.asarray(image, dtype=np.float32)[np.ix_(rows, cols)]
