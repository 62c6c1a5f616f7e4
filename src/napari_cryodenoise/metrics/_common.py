"""Shared input checks and helpers of the metrics package (private)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InputError

Fit = Literal["affine", "match", "none"]
Criterion = float | Literal["half-bit", "one-bit", "3sigma"]

#: Elements per block when scanning large arrays (keeps temporaries ~128 MB).
_CHUNK = 1 << 24


def _as_array(x: ArrayLike, name: str, *, min_ndim: int = 1) -> np.ndarray:
    """View ``x`` as a real numeric array (no copy for arrays and memmaps) and check it."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    if arr.ndim < min_ndim:
        raise InputError(
            f"{name}: expected at least {min_ndim} dimension(s), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise InputError(f"{name}: the array is empty (shape {arr.shape})")
    _check_finite(arr, name)
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind != "f":
        return
    rows = max(1, _CHUNK // max(1, arr.size // arr.shape[0])) if arr.ndim > 1 else _CHUNK
    bad = 0
    for start in range(0, arr.shape[0], rows):  # blockwise: no image-sized temporaries
        bad += int(np.count_nonzero(~np.isfinite(arr[start : start + rows])))
    if bad:
        raise InputError(
            f"{name} contains {bad} NaN or infinite value(s); metrics need finite pixels "
            "(crop, mask or fill them first)"
        )


def _same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise InputError(
            f"{name_a} and {name_b} must have the same shape, got {a.shape} and {b.shape}"
        )


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)
