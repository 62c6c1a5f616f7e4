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
from .sniff import COMPRESSION_SUFFIXES, check_regular_file, compression_of, image_suffix
from .tiff import TIFF_SUFFIXES, read_tiff

_STAR_NAMES = ("read_star_micrographs", "read_star_tables", "write_star_micrographs")


def __getattr__(name: str):
    """The STAR functions load on first use: they need pandas, which images do not."""
    if name in _STAR_NAMES:
        from . import star, star_writer

        return getattr(star_writer if name.startswith("write") else star, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Image suffixes; MRC files may also carry a compression suffix (``.map.gz``), see
#: :func:`is_image_path` and :func:`image_suffix`.
IMAGE_SUFFIXES = MRC_SUFFIXES + TIFF_SUFFIXES

__all__ = [
    "DEFAULT_EER_GROUPING",
    "EER_SUFFIXES",
    "COMPRESSION_SUFFIXES",
    "EerMovie",
    "IMAGE_SUFFIXES",
    "ImageInfo",
    "ImageKind",
    "SUPPORTED_MODES",
    "concatenate_mrc",
    "image_suffix",
    "is_image_path",
    "is_mrc_file",
    "read_image",
    "read_mrc",
    "read_star_micrographs",
    "read_star_tables",
    "read_tiff",
    "write_mrc",
    "write_star_micrographs",
]


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether the name of ``path`` is one of an image file we read.

    MRC suffixes count with or without a ``.gz``/``.bz2`` compression suffix
    (``emd_1832.map.gz``); TIFF only uncompressed. Nothing is opened.
    """
    suffix = image_suffix(path)
    if suffix in TIFF_SUFFIXES:
        return compression_of(path) is None
    return suffix in MRC_SUFFIXES


def read_image(path: str | os.PathLike, *, mmap: bool = True) -> tuple[np.ndarray, ImageInfo]:
    """Read an MRC or TIFF image, stack, movie or volume.

    Parameters
    ----------
    path : str or PathLike
        ``.mrc``, ``.mrcs``, ``.st``, ``.rec``, ``.map``, ``.ali`` (each also as
        ``.gz``/``.bz2``, decompressed into memory), ``.tif`` or ``.tiff``.
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
        One line naming the file and the problem: missing, a folder or FIFO, of an
        unknown or mislabelled type, truncated, compressed under a plain name, or
        otherwise unreadable.

    """
    path = Path(path)
    if path.is_dir():
        check_regular_file(path)  # "is a folder", not "unknown image type"
    suffix = image_suffix(path)
    if suffix in TIFF_SUFFIXES:
        if compression_of(path):
            raise InputError(
                f"{path}: compressed TIFF files are not read; decompress it first "
                f"(only MRC files may be {'/'.join(COMPRESSION_SUFFIXES)})"
            )
        return read_tiff(path, mmap=mmap)
    if suffix in MRC_SUFFIXES or is_mrc_file(path):
        return read_mrc(path, mmap=mmap)
    if os.path.lexists(path):
        check_regular_file(path)  # a FIFO, device or symlink loop says so
    shown = "".join(Path(path).suffixes[-2:]).lower() if compression_of(path) else suffix
    raise InputError(
        f"{path}: unknown image type {shown!r}; expected one of {', '.join(IMAGE_SUFFIXES)} "
        "(MRC files also as .gz or .bz2)"
    )
