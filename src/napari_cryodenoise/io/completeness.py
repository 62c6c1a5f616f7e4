"""Whether an output file is whole: the check behind resuming and ``--skip-existing``.

Outputs are renamed into place only once fully written (:mod:`.atomic`), so this
guards against files from elsewhere (an interrupted copy, another tool), cheaply,
without reading the pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError

__all__ = ["output_is_complete"]

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def output_is_complete(path: str | os.PathLike) -> bool:
    """Return True if ``path`` is an output file whose data is all there.

    Outputs are renamed into place only once fully written, so this guards
    against files from elsewhere (an interrupted copy, another tool), cheaply,
    without reading the pixels: an MRC file needs a valid header and at least as
    many bytes as it describes; a TIFF file every strip/tile inside the file; a
    PNG file its end chunk.
    """
    path = Path(path)
    try:
        if not path.is_file():
            return False
        suffix = path.suffix.lower()
        if suffix in (".tif", ".tiff"):
            return _tiff_complete(path)
        if suffix == ".png":
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - len(_PNG_END)))
                return fh.read() == _PNG_END
        return _mrc_complete(path)
    except (InputError, OSError, ValueError):
        return False


def _mrc_complete(path: Path) -> bool:
    import numpy as np

    from .mrc import SUPPORTED_MODES, read_mrc_header

    with open(path, "rb") as fh:
        raw = fh.read(1024)
    if len(raw) < 1024:
        return False
    size = path.stat().st_size
    # first a size check from the raw words (fast, even for junk), then a full header check
    for order in "<>":
        nx, ny, nz, mode = (int(v) for v in np.frombuffer(raw, f"{order}i4", count=4))
        ext = int(np.frombuffer(raw, f"{order}i4", count=1, offset=92)[0])
        if min(nx, ny, nz) > 0 and mode in SUPPORTED_MODES and ext >= 0:
            itemsize = np.dtype(SUPPORTED_MODES[mode]).itemsize
            if size < 1024 + ext + nx * ny * nz * itemsize:
                return False
            read_mrc_header(path)  # raises InputError if it is not a valid MRC header
            return True
    return False


def _tiff_complete(path: Path) -> bool:
    import tifffile

    size = path.stat().st_size
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.pages:
                return False
            for page in tif.pages:
                ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)]
                if not ends or max(ends) > size:
                    return False
    except Exception:  # noqa: BLE001 - tifffile raises many kinds for broken files
        return False
    return True
