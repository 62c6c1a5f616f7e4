"""Compatibility module: the pixel-size -> bin rule lives in :mod:`napari_cryodenoise.options`."""

from __future__ import annotations

from .options import (
    AUTO,
    AUTO_TARGET,
    MAX_AUTO_BIN,
    auto_bin,
    auto_bin_text,
    bin_to_pixel_size,
    resolve_bin,
)

__all__ = [
    "AUTO",
    "AUTO_TARGET",
    "MAX_AUTO_BIN",
    "auto_bin",
    "auto_bin_text",
    "bin_to_pixel_size",
    "resolve_bin",
]
