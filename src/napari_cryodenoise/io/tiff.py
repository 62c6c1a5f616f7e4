"""Read TIFF images, frame stacks (movies, tomogram slices) and volumes without copying them.

A multi-page TIFF is a stack of 2D images, unless its metadata say it is a volume: an
ImageJ hyperstack with ``slices`` and a ``spacing`` (with its ``unit``), or an OME-TIFF
with a ``Z`` axis and ``PhysicalSizeZ``. Colour (RGB/RGBA) files are converted to grey
with a warning; 4D files, complex pixels and files that are not TIFF are refused with one
line naming the file and the problem.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from .image_info import ImageInfo, ImageKind
from .sniff import check_regular_file, file_format

TIFF_SUFFIXES = (".tif", ".tiff")

_CM_PER_UNIT = {2: 2.54, 3: 1.0}  # TIFF ResolutionUnit: 2 inch, 3 centimetre

#: Length units (lower case) in Angstrom.
_ANGSTROM_PER_UNIT = {
    "angstrom": 1.0,
    "a": 1.0,
    "\u00e5": 1.0,
    "\u212b": 1.0,
    "nm": 10.0,
    "nanometer": 10.0,
    "nanometre": 10.0,
    "micron": 1e4,
    "microns": 1e4,
    "um": 1e4,
    "\u00b5m": 1e4,
    "\u03bcm": 1e4,
    "micrometer": 1e4,
    "micrometre": 1e4,
    "mm": 1e7,
}

#: Rec. 601 luma weights for converting RGB to grey.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's log messages about damaged files: our error says it in one line."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _unit_angstrom(unit: object) -> float | None:
    return _ANGSTROM_PER_UNIT.get(str(unit).strip().lower())


def _positive(value: float) -> float:
    return round(value, 6) if math.isfinite(value) and value > 0 else 0.0


def _ome_sizes(tif: tifffile.TiffFile) -> tuple[float, float] | None:
    """``(z, x)`` pixel sizes in Angstrom from OME-XML (0.0 when absent), or None."""
    if not tif.is_ome or not tif.ome_metadata:
        return None
    try:
        root = ET.fromstring(tif.ome_metadata)
    except ET.ParseError:
        return None
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return None
    sizes = []
    for axis in ("Z", "X"):
        value = pixels.get(f"PhysicalSize{axis}")
        factor = _unit_angstrom(pixels.get(f"PhysicalSize{axis}Unit", "\u00b5m"))
        try:
            sizes.append(_positive(float(value) * factor) if value and factor else 0.0)
        except ValueError:
            sizes.append(0.0)
    return sizes[0], sizes[1]


def _pixel_sizes_angstrom(tif: tifffile.TiffFile) -> tuple[float, float]:
    """``(z spacing, pixel size)`` in Angstrom from OME, ImageJ or resolution tags (0: none)."""
    ome = _ome_sizes(tif)
    if ome is not None and ome[1] > 0:
        return ome
    ij = tif.imagej_metadata or {}
    factor = _unit_angstrom(ij.get("unit", ""))
    z = 0.0
    if factor is not None and "spacing" in ij:
        try:
            z = _positive(float(ij["spacing"]) * factor)
        except (TypeError, ValueError):
            z = 0.0
    page = tif.pages.first
    tag = page.tags.get("XResolution")
    if tag is None:
        return z, 0.0
    num, den = tag.value
    if num <= 0 or den <= 0:
        return z, 0.0
    per_unit = den / num  # size of a pixel in the resolution unit
    if factor is not None:
        return z, _positive(per_unit * factor)
    res_unit = int(page.tags["ResolutionUnit"].value) if "ResolutionUnit" in page.tags else 0
    if res_unit in _CM_PER_UNIT and not ij:
        return z, _positive(per_unit * _CM_PER_UNIT[res_unit] * 1e8)
    return z, 0.0


def _refuse_other_formats(path: Path, size: int) -> None:
    """One clear line for an empty file or a file that is not a TIFF at all."""
    if size == 0:
        raise InputError(f"{path}: file is empty")
    fmt = file_format(path)
    if fmt == "tiff":
        return
    if fmt in ("gzip", "bzip2", "xz", "zstd", "zip"):
        raise InputError(f"{path}: is a {fmt}-compressed file, not TIFF; decompress it first")
    if fmt is not None:
        raise InputError(
            f"{path}: is a {fmt.upper()} file, not TIFF; convert it to TIFF or MRC to open it"
        )
    from .mrc import is_mrc_file

    if is_mrc_file(path):
        raise InputError(f"{path}: is an MRC file, not TIFF; rename it {path.stem}.mrc")
    raise InputError(f"{path}: not a TIFF file (it does not start with a TIFF signature)")


def _check_complete(path: Path, series: tifffile.TiffPageSeries, size: int) -> None:
    """Refuse a TIFF whose image data run past the end of the file."""
    end = 0
    if series.dataoffset is not None:  # contiguous (uncompressed) data
        end = int(series.dataoffset) + int(series.nbytes)
    else:
        for page in series.pages:
            if page is None:
                continue
            pairs = zip(page.dataoffsets, page.databytecounts, strict=False)
            end = max([end, *(int(o) + int(c) for o, c in pairs)])
    if end > size:
        raise InputError(
            f"{path}: file is truncated: its image data end at byte {end} but the file has "
            f"only {size} bytes. Was the transfer interrupted?"
        )


def _to_grey(path: Path, data: np.ndarray, axes: str, photometric: int) -> tuple[np.ndarray, str]:
    """Collapse the samples axis ``S`` of a colour TIFF to one grey channel, with a warning."""
    s = axes.index("S")
    samples = data.shape[s]
    data = np.moveaxis(np.asarray(data), s, -1)
    axes = axes.replace("S", "")
    if photometric == tifffile.PHOTOMETRIC.PALETTE:
        raise InputError(f"{path}: is a palette (indexed colour) TIFF; save it as greyscale")
    if photometric == tifffile.PHOTOMETRIC.RGB and samples >= 3:
        grey = np.tensordot(data[..., :3].astype(np.float32), _LUMA, axes=([-1], [0]))
        what = "RGBA" if samples == 4 else "RGB"
        warnings.warn(
            f"{path.name}: a colour ({what}) TIFF; converted to grey (luminance). Cryo-EM "
            "data are normally greyscale: check that this is the file you meant.",
            UserWarning,
            stacklevel=3,
        )
        return grey.astype(np.float32), axes
    warnings.warn(
        f"{path.name}: a TIFF with {samples} samples per pixel; using the first one.",
        UserWarning,
        stacklevel=3,
    )
    return np.ascontiguousarray(data[..., 0]), axes


def read_tiff(path: str | os.PathLike, *, mmap: bool = True) -> tuple[np.ndarray, ImageInfo]:
    """Read a TIFF image, a multi-page stack or a volume.

    Parameters
    ----------
    path : str or PathLike
        A 2D TIFF, or a multi-page TIFF of frames (movie), slices or a volume.
    mmap : bool
        Memory-map uncompressed greyscale files when possible.

    Returns
    -------
    data : numpy.ndarray
        ``(y, x)`` or ``(z, y, x)`` in the stored dtype (float32 for converted colour).
    info : ImageInfo
        Kind is ``"volume"`` when the metadata give a z spacing (ImageJ ``spacing``,
        OME ``PhysicalSizeZ``), else ``"stack"`` for multi-page files.

    Raises
    ------
    InputError
        One line naming the file: missing, not a regular file, not a TIFF, truncated,
        more than 3D, complex or 1-bit pixels.

    """
    path = Path(path)
    size = check_regular_file(path)
    _refuse_other_formats(path, size)
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise InputError(f"{path}: the TIFF file contains no images (damaged?)")
            series = tif.series[0]
            axes, shape = str(series.axes), tuple(int(n) for n in series.shape)
            _check_complete(path, series, size)
            z_spacing, pixel = _pixel_sizes_angstrom(tif)
            photometric = int(tif.pages.first.photometric)
            data = None
            if mmap and "S" not in axes:
                try:
                    data = tifffile.memmap(path, mode="r")
                except (ValueError, OSError, tifffile.TiffFileError):
                    data = None
            if data is None:
                data = tif.asarray()
    except InputError:
        raise
    except (tifffile.TiffFileError, ValueError, OSError, IndexError, KeyError) as err:
        raise InputError(
            f"{path}: not a readable TIFF file (damaged or truncated?): {err}"
        ) from None
    if data.shape != shape and data.size == math.prod(shape):
        data = data.reshape(shape)
    if len(axes) != data.ndim:  # unexpected layout: fall back to plain squeezing
        data = np.squeeze(data)
        axes = "Q" * (data.ndim - 2) + "YX"
    # drop length-1 axes except the image plane
    keep = [i for i, (a, n) in enumerate(zip(axes, data.shape, strict=True)) if n > 1 or a in "YX"]
    if len(keep) != data.ndim:
        data = data.reshape(tuple(data.shape[i] for i in keep))
        axes = "".join(axes[i] for i in keep)
    if "S" in axes:
        data, axes = _to_grey(path, data, axes, photometric)
    if data.dtype.kind == "c":
        raise InputError(
            f"{path}: complex pixels ({data.dtype}) are not supported; save the real part or "
            "the amplitude as float32"
        )
    if data.dtype == bool:
        raise InputError(f"{path}: 1-bit (black and white) TIFF images are not supported")
    if data.ndim not in (2, 3):
        raise InputError(
            f"{path}: is a {data.ndim}D TIFF (axes {axes}, shape {data.shape}); only 2D images "
            "and 3D stacks or volumes are read: save one channel or time point"
        )
    volume = data.ndim == 3 and axes[0] == "Z" and z_spacing > 0
    kind: ImageKind = "image" if data.ndim == 2 else ("volume" if volume else "stack")
    info = ImageInfo.build(
        path=path,
        kind=kind,
        shape=data.shape,
        raw_voxel_size=(z_spacing if volume else pixel, pixel, pixel),
        mode=None,
        dtype=str(data.dtype),
    )
    return data, info
