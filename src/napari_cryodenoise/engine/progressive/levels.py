"""Display levels of a live plane: 2x block-mean pyramids and a cheap resampling.

No Qt, no torch. The same 2x rule as the reader's display pyramid, so raw and
denoised layers look alike zoomed out (block averages, no aliasing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pyramid_depth(shape: Sequence[int], max_side: int = 2048, min_side: int = 1024) -> int:
    """Extra 2x levels for a plane larger than ``max_side``, down to ``min_side`` or less.

    The same rule as the reader's display pyramid, so raw and denoised layers
    look alike zoomed out (block averages, no aliasing).
    """
    h, w = (int(n) for n in shape[-2:])
    if max(h, w) <= max_side:
        return 0
    depth = 0
    while max(h, w) > min_side:
        h, w, depth = h // 2, w // 2, depth + 1
    return depth


def display_levels(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``[image, 2x, 4x, ...]`` block means (``levels`` extra), float32.

    A worker computes these for a preview so the main thread only swaps arrays.
    """
    out = [np.asarray(image, dtype=np.float32)]
    for _ in range(int(levels)):
        out.append(halve(out[-1]))
    return out


def halve(image: np.ndarray) -> np.ndarray:
    """Means of 2x2 blocks (odd edges cropped), float32."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    return image[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3), dtype=np.float32)


def resample_nearest(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``image`` brought to ``shape`` by nearest-neighbour indexing (cheap), float32."""
    h, w = (int(n) for n in shape)
    if tuple(image.shape) == (h, w):
        return np.asarray(image, dtype=np.float32)
    rows = np.minimum((np.arange(h) * image.shape[0]) // h, image.shape[0] - 1)
    cols = np.minimum((np.arange(w) * image.shape[1]) // w, image.shape[1] - 1)
    return np.asarray(image, dtype=np.float32)[np.ix_(rows, cols)]
