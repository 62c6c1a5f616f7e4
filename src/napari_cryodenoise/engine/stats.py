"""Whole-image statistics for normalisation (numpy only; memory maps stay maps)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ImageTooSmallError, InputError

__all__ = ["image_stats", "normalise_stats"]


def image_stats(image: np.ndarray, *, block_bytes: int = 32 << 20) -> tuple[float, float]:
    """Mean and standard deviation in float64, streamed in blocks (memory maps stay maps).

    Parameters
    ----------
    image : numpy.ndarray
        Any real array.
    block_bytes : int
        Rows are summed in blocks of about this many float64 bytes.

    Returns
    -------
    (float, float)
        Mean and (population) standard deviation.

    Raises
    ------
    InputError
        If the image is empty or holds NaN or infinite values.

    """
    arr = np.asarray(image) if not isinstance(image, np.ndarray) else image
    if arr.size == 0:
        raise ImageTooSmallError(f"empty image of shape {arr.shape}")
    flat_rows = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(1, -1)
    row_bytes = max(1, flat_rows.shape[1] * 8)
    step = max(1, block_bytes // row_bytes)
    total = 0.0
    n = arr.size
    floating = arr.dtype.kind in "fc"
    for i in range(0, flat_rows.shape[0], step):
        block = flat_rows[i : i + step]
        s = float(np.sum(block, dtype=np.float64))
        if floating and not math.isfinite(s):
            bad = int(np.count_nonzero(~np.isfinite(block)))
            if bad:
                raise InputError(
                    f"image contains {bad}+ NaN or infinite pixel(s) (first in rows {i}..); "
                    "fix or mask the input before denoising"
                )
            raise InputError("image values overflow float64 sums; rescale the input")
        total += s
    mean = total / n
    sq = 0.0
    for i in range(0, flat_rows.shape[0], step):
        # a copy: a float64 input (a read-only map, or the caller's array) is never changed
        block = np.array(flat_rows[i : i + step], dtype=np.float64)
        block -= mean
        sq += float(np.dot(block.ravel(), block.ravel()))
    std = math.sqrt(sq / n)
    return mean, std


def normalise_stats(stats: tuple[float, float]) -> tuple[float, float]:
    """``(mean, std)`` checked for use as the normalisation (a zero std becomes 1).

    Raises
    ------
    InputError
        If either value is not finite.

    """
    mean, std = float(stats[0]), float(stats[1])
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise InputError("image statistics are not finite")
    if std <= 0:
        std = 1.0  # constant image: avoid 0/0, the output is then model(0) + mean
    return mean, std
