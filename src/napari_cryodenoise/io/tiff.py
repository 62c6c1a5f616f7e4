"""Read TIFF images and frame stacks (movies, tomogram slices) without copying them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from .image_info import ImageInfo, ImageKind

TIFF_SUFFIXES = (".tif", ".tiff")

_CM_PER_UNIT = {2: 2.54, 3: 1.0}  # TIFF ResolutionUnit: 2 inch, 3 centimetre


def _pixel_size_angstrom(tif: tifffile.TiffFile) -> float:
    """Pixel size from ImageJ metadata or resolution tags; 0.0 when unknown."""
    ij = tif.imagej_metadata or {}
    unit = str(ij.get("unit", "")).lower()
    page = tif.pages.first
    tag = page.tags.get("XResolution")
    if tag is None:
        return 0.0
    num, den = tag.value
    if num <= 0 or den <= 0:
        return 0.0
    per_unit = den / num  # size of a pixel in the resolution unit
    if unit in ("angstrom", "a", "\u00c5"):
        return per_unit
    if unit in ("nm", "nanometer", "nanometre"):
        return per_unit * 10.0
    if unit in ("micron", "um", "\u00b5m", "microns"):
        return per_unit * 1e4
    res_unit = int(page.tags["ResolutionUnit"].value) if "ResolutionUnit" in page.tags else 0
    if res_unit in _CM_PER_UNIT and not ij:
        return per_unit * _CM_PER_UNIT[res_unit] * 1e8
    return 0.0


def read_tiff(path: str | os.PathLike, *, mmap: bool = True) -> tuple[np.ndarray, ImageInfo]:
    """Read a TIFF image or a multi-page stack.

    Parameters
    ----------
    path : str or PathLike
        A 2D TIFF, or a multi-page TIFF of frames (movie) or slices.
    mmap : bool
        Memory-map uncompressed files when possible.

    Returns
    -------
    data : numpy.ndarray
        ``(y, x)`` or ``(z, y, x)`` in the stored dtype.
    info : ImageInfo
        Kind is ``"stack"`` for multi-page files (frames or slices).

    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with tifffile.TiffFile(path) as tif:
            pixel = _pixel_size_angstrom(tif)
            data = None
            if mmap:
                try:
                    data = tifffile.memmap(path, mode="r")
                except (ValueError, OSError, tifffile.TiffFileError):
                    data = None
            if data is None:
                data = tif.asarray()
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise InputError(f"{path}: not a readable TIFF file ({err})") from err
    data = np.squeeze(data)
    if data.ndim not in (2, 3):
        raise InputError(
            f"{path}: expected a 2D image or a stack of images, got shape {data.shape}"
        )
    if data.dtype.kind == "c" or data.dtype == bool:
        raise InputError(f"{path}: unsupported TIFF pixel type {data.dtype}")
    kind: ImageKind = "image" if data.ndim == 2 else "stack"
    info = ImageInfo.build(
        path=path,
        kind=kind,
        shape=data.shape,
        raw_voxel_size=(pixel, pixel, pixel),
        mode=None,
        dtype=str(data.dtype),
    )
    return data, info
