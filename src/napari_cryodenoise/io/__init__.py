"""Reading and writing cryo-EM image files (MRC, TIFF) and RELION STAR lists."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .eer import DEFAULT_EER_GROUPING, EER_SUFFIXES, EerMovie
from .image_info import ImageInfo, ImageKind
from .mrc import (
    MRC_SUFFIXES,
    SUPPORTED_MODES,
    concatenate_mrc,
    is_mrc_file,
    read_mrc,
    write_mrc,
)
from .star import read_star_micrographs, read_star_tables, write_star_micrographs
from .tiff import TIFF_SUFFIXES, read_tiff

IMAGE_SUFFIXES = MRC_SUFFIXES + TIFF_SUFFIXES

__all__ = [
    "DEFAULT_EER_GROUPING",
    "EER_SUFFIXES",
    "EerMovie",
    "IMAGE_SUFFIXES",
    "ImageInfo",
    "ImageKind",
    "SUPPORTED_MODES",
    "concatenate_mrc",
    "is_mrc_file",
    "read_image",
    "read_mrc",
    "read_star_micrographs",
    "read_star_tables",
    "read_tiff",
    "write_mrc",
    "write_star_micrographs",
]


def read_image(path: str | os.PathLike, *, mmap: bool = True) -> tuple[np.ndarray, ImageInfo]:
    """Read an MRC or TIFF image, stack, movie or volume.

    Parameters
    ----------
    path : str or PathLike
        ``.mrc``, ``.mrcs``, ``.st``, ``.rec``, ``.map``, ``.ali``, ``.tif`` or ``.tiff``.
    mmap : bool
        Memory-map the data when the format allows (default).

    Returns
    -------
    data : numpy.ndarray
        Pixels in the stored dtype, ``(y, x)`` or ``(z, y, x)``.
    info : ImageInfo
        Header facts (voxel size in Angstrom, origin, mode, kind, ...).

    Raises
    ------
    InputError
        If the file is missing, of an unknown type, truncated or unreadable.

    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return read_tiff(path, mmap=mmap)
    if suffix in MRC_SUFFIXES or is_mrc_file(path):
        return read_mrc(path, mmap=mmap)
    raise InputError(
        f"{path}: unknown image type {suffix!r}; expected one of {', '.join(IMAGE_SUFFIXES)}"
    )
