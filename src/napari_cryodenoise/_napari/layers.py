"""Turning core images into napari layer data and back (no Qt needed)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.pyramid import MAX_SIDE, block_mean
from ..engine.pyramid import display_pyramid as _display_pyramid
from ..io import ImageInfo

#: Key under which this plugin keeps its facts in ``layer.metadata``.
METADATA_KEY = "cryodenoise"
#: Key of ``[min, max]`` of the data (sampled) in a read layer's facts.
DATA_RANGE_KEY = "data_range"


def robust_contrast_limits(
    data: np.ndarray, low: float = 0.5, high: float = 99.5, max_samples: int = 1_000_000
) -> tuple[float, float]:
    """Percentile contrast limits from a strided subsample (cheap on memmaps).

    Parameters
    ----------
    data : numpy.ndarray
        Image, stack or volume.
    low, high : float
        Percentiles.
    max_samples : int
        Upper bound on the number of pixels read.

    Returns
    -------
    tuple of float
        ``(low_value, high_value)``, never equal.

    """
    arr = np.asarray(data)
    step = max(1, int(np.ceil((arr.size / max_samples) ** (1.0 / arr.ndim))))
    sample = np.asarray(arr[(slice(None, None, step),) * arr.ndim], dtype=np.float32)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def sampled_range(data: np.ndarray, max_samples: int = 1_000_000) -> list[float]:
    """``[min, max]`` of a strided subsample (cheap on memmaps; what a contrast slider needs)."""
    arr = np.asarray(data)
    step = max(1, int(np.ceil((arr.size / max_samples) ** (1.0 / max(1, arr.ndim)))))
    sample = np.asarray(arr[(slice(None, None, step),) * arr.ndim], dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return [0.0, 1.0]
    lo, hi = float(sample.min()), float(sample.max())
    return [lo, hi if hi > lo else lo + 1.0]


def apply_data_range(layer: Any) -> bool:
    """Let ``layer``'s contrast slider span its data (napari fixes it to the initial limits).

    Uses the range the reader recorded in the layer's metadata; returns True
    if the slider range was widened.
    """
    facts = (getattr(layer, "metadata", None) or {}).get(METADATA_KEY)
    span = facts.get(DATA_RANGE_KEY) if isinstance(facts, dict) else None
    if not span or not hasattr(layer, "contrast_limits_range"):
        return False
    lo, hi = layer.contrast_limits_range
    new = [min(float(lo), float(span[0])), max(float(hi), float(span[1]))]
    if new == [float(lo), float(hi)]:
        return False
    layer.contrast_limits_range = new
    return True


def bin_mean(image: np.ndarray, factor: int = 2) -> np.ndarray:
    """Average ``factor x factor`` blocks of a 2D image (edges cropped), as float32."""
    return block_mean(image, factor)


def display_pyramid(image: np.ndarray, max_side: int = MAX_SIDE) -> list[np.ndarray] | np.ndarray:
    """A multiscale pyramid of block averages for 2D images larger than ``max_side``.

    The engine's one rule (:func:`napari_cryodenoise.engine.pyramid.display_pyramid`):
    shown zoomed out, a single-scale micrograph is sampled with nearest interpolation and
    aliases into noise; block averages show what the eye would see. Level 0 is the
    untouched (memory-mapped) data, the coarsest level at most 1024 px.
    """
    return _display_pyramid(image, max_side)


def layer_kwargs(data: np.ndarray, info: ImageInfo, **extra: Any) -> dict[str, Any]:
    """Image layer keyword arguments carrying scale, units, axis names and header facts.

    Stacks and movies get an unscaled first axis (frame or slice index);
    volumes get the z voxel size.
    """
    vz, vy, vx = info.voxel_size
    if data.ndim == 2:
        scale, units, labels = (vy, vx), ("angstrom", "angstrom"), ("y", "x")
        translate = info.origin[1:]
    else:
        first = "z" if info.kind == "volume" else ("frame" if info.kind == "movie" else "slice")
        scale = (vz if info.kind == "volume" else 1.0, vy, vx)
        units = ("angstrom" if info.kind == "volume" else "pixel", "angstrom", "angstrom")
        labels = (first, "y", "x")
        translate = info.origin if info.kind == "volume" else (0.0, *info.origin[1:])
    kwargs: dict[str, Any] = {
        "name": info.name,
        "scale": scale,
        "translate": translate,
        "units": units,
        "axis_labels": labels,
        "contrast_limits": robust_contrast_limits(data),
        "metadata": {METADATA_KEY: {**info.as_metadata(), DATA_RANGE_KEY: sampled_range(data)}},
    }
    kwargs.update(extra)
    return kwargs


def replace_layer(layers: Any, old: Any, new: Any) -> None:
    """Put ``new`` (just added, on top) in ``old``'s place in ``layers`` and remove ``old``.

    A no-op when ``old`` is None or gone. Taking the old one's place keeps raw | denoised
    in their grid cells however the user ordered the layers or added their own.
    """
    if old is None or old is new or old not in layers:
        return
    index = list(layers).index(old)
    layers.remove(old)
    layers.move(list(layers).index(new), index)
