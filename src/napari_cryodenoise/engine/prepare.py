"""Input checks and preprocessing: Fourier binning and the hard low-pass (step 1)."""

from __future__ import annotations

import numpy as np

from ..errors import ImageTooSmallError, InputError
from .filters import bin_shape, fourier_lowpass, fourier_resize
from .stats import image_stats

__all__ = ["as_array", "check_ndim", "prepare_image"]


def as_array(image: object) -> np.ndarray:
    """The image as a numpy array of a real pixel type (memory maps stay maps).

    Raises
    ------
    InputError
        For complex or non-numeric pixels; :class:`ImageTooSmallError` when empty.

    """
    arr = image if isinstance(image, np.ndarray) else np.asarray(image)
    if arr.dtype.kind == "c":
        raise InputError("complex images are not supported")
    if arr.dtype.kind not in "fiub":
        raise InputError(f"unsupported pixel type {arr.dtype}")
    if arr.size == 0 or 0 in arr.shape:
        raise ImageTooSmallError(f"empty image of shape {arr.shape}")
    return arr


def check_ndim(arr: np.ndarray, ndim: int, what: str) -> np.ndarray:
    """``arr`` with a leading length-1 axis dropped; an InputError unless it is ``ndim``-D."""
    if arr.ndim == ndim + 1 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != ndim:
        hint = " (use denoise_stack for a stack of 2D images)" if arr.ndim == 3 else ""
        raise InputError(
            f"{what}: a {arr.ndim}D array of shape {arr.shape} does not suit {ndim}D models{hint}"
        )
    return arr


def prepare_image(
    image: np.ndarray, *, bin_factor: float = 1, lowpass: float | None = None
) -> np.ndarray:
    """Apply Fourier binning and the hard low-pass (steps 1 of the contract).

    Returns the input itself (no copy, memory maps stay maps) when neither is asked.
    """
    arr = as_array(image)
    resample = bin_factor is not None and float(bin_factor) != 1.0
    filtering = lowpass is not None and lowpass > 1
    if (resample or filtering) and arr.dtype.kind == "f":
        image_stats(arr)  # raises a clear InputError on NaN/inf before the FFTs
    if resample:
        arr = fourier_resize(arr, bin_shape(arr.shape, float(bin_factor)))
    if filtering:
        arr = fourier_lowpass(arr, float(lowpass))
    return arr
