"""Whether a whole file is a 2D micrograph, from its header only (no Qt, no torch).

``cryodenoise watch`` denoises micrographs. A movie (``.mrcs``, an MRC or a multi-page
TIFF of frames), a stack or a volume landing in the watched folder (EPU's raw
``_fractions.tiff`` beside the sums, a folder of movies given by mistake) is skipped, not
denoised frame by frame into a "micrograph" of the output STAR list.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["not_a_micrograph", "planes_of"]


def not_a_micrograph(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a micrograph (``"is an EER movie"``, ``"holds 40 frames ..."``).

    None for a 2D image, and for a file whose header cannot tell (the denoiser reports it).
    EER files are movies by definition and are not opened.
    """
    from ..io import EER_SUFFIXES, image_suffix

    if image_suffix(Path(path)) in EER_SUFFIXES:
        return "is an EER movie"
    planes = planes_of(path)
    if planes is not None and planes > 1:
        return f"holds {planes} frames (a movie or stack)"
    return None


def planes_of(path: str | os.PathLike) -> int | None:
    """How many 2D planes (frames, slices) ``path`` holds; None when its header cannot tell.

    Reads the MRC header, or the TIFF's page structure (no pixel data). An unreadable file
    gives None: the denoiser reports it.
    """
    from ..io import MRC_SUFFIXES, image_suffix
    from ..io.tiff import TIFF_SUFFIXES

    path = Path(path)
    suffix = image_suffix(path)
    try:
        if suffix in MRC_SUFFIXES:
            from ..io.mrc import read_mrc_header

            header, _ = read_mrc_header(path)
            return int(header.nz)
        if suffix in TIFF_SUFFIXES:
            import tifffile

            from ..io.tiff import _quiet_tifffile

            with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                sizes = zip(str(series.axes), series.shape, strict=False)
                return math.prod(int(n) for a, n in sizes if a not in "YXS")
    except Exception:  # noqa: BLE001 - the denoiser says what is wrong with the file
        return None
    return None
