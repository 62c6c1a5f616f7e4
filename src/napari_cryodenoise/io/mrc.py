"""Read and write MRC files (images, stacks, movies, tilt series and volumes).

Reading memory-maps the data block directly (no copy, no float64), after
validating the header with :mod:`mrcfile` in permissive mode so that FEI/EPU
extended headers and other real-world quirks open. gzip/bzip2-compressed files
(``emd_NNNN.map.gz``) are decompressed into memory instead. Writing goes through
:func:`napari_cryodenoise.io.atomic.atomic_path` (a temporary file next to the target,
flushed to disk and renamed over it), so a crash never leaves a half-written output, and
an input file is never overwritten.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import mrcfile
import mrcfile.utils
import numpy as np

from ..errors import InputError
from .atomic import atomic_path
from .compressed import read_compressed_block
from .image_info import ImageInfo, ImageKind
from .sniff import (
    SUFFIX_OF_FORMAT,
    check_regular_file,
    compression_of,
    file_format,
    image_suffix,
    is_regular_file,
    strip_compression,
)

#: MRC modes we read, with the numpy type each holds.
SUPPORTED_MODES: dict[int, str] = {
    0: "int8",
    1: "int16",
    2: "float32",
    6: "uint16",
    12: "float16",
}

#: File name suffixes and the kind of data they conventionally hold.
_KIND_BY_SUFFIX: dict[str, ImageKind] = {
    ".mrcs": "stack",
    ".st": "stack",
    ".ali": "stack",
    ".rec": "volume",
    ".map": "volume",
}

MRC_SUFFIXES = (".mrc", ".mrcs", ".st", ".rec", ".map", ".ali")

_HEADER_BYTES = 1024

#: A size no real file has (1 PiB): a header describing more is damaged, not truncated.
_ABSURD_BYTES = 2**50


def is_mrc_file(path: str | os.PathLike) -> bool:
    """Return True if ``path`` is a regular file starting with something like an MRC header.

    This is a cheap check (reads 1 kB; a FIFO, device or folder is declined without
    being opened) used to recognise MRC files under unusual suffixes; it does not
    validate the data block and does not look inside compressed files.
    """
    if not is_regular_file(path):
        return False
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_HEADER_BYTES)
    except OSError:
        return False
    if len(raw) < _HEADER_BYTES:
        return False
    # nx, ny, nz and mode are the first four int32 words, in either byte order
    for values in (np.frombuffer(raw, "<i4", count=4), np.frombuffer(raw, ">i4", count=4)):
        nx, ny, nz, mode = (int(v) for v in values)
        if nx > 0 and ny > 0 and nz > 0 and 0 <= mode <= 101:
            return True
    return False


def _kind_for(path: Path, nz: int, ispg: int) -> ImageKind:
    if nz <= 1:
        return "image"
    by_suffix = _KIND_BY_SUFFIX.get(image_suffix(path))
    if by_suffix is not None:
        return by_suffix
    # .mrc: the space group tells a stack of images (0) from a volume (1, 401...)
    return "stack" if ispg == 0 else "volume"


def _compression(path: Path, size: int) -> str | None:
    """The compression of an MRC file ("gzip", "bzip2" or None), refusing other formats.

    Raises a one-line :class:`InputError` for a file that is recognisably something
    else (TIFF, PNG, xz, zip ...) or compressed under a plain name.
    """
    fmt = file_format(path)
    if fmt in ("gzip", "bzip2"):
        suffix = ".gz" if fmt == "gzip" else ".bz2"
        if compression_of(path) is None:
            raise InputError(
                f"{path}: is a {fmt}-compressed file under a plain name; rename it "
                f"{path.name}{suffix} (or decompress it) to open it"
            )
        return fmt
    if fmt in ("xz", "zstd", "zip"):
        raise InputError(
            f"{path}: is compressed with {fmt}; only gzip (.gz) and bzip2 (.bz2) MRC files "
            "are read: decompress it first"
        )
    if fmt is not None:
        hint = SUFFIX_OF_FORMAT.get(fmt, "")
        rename = f"; rename it {strip_compression(path).stem}{hint}" if fmt == "tiff" else ""
        raise InputError(f"{path}: is a {fmt.upper()} file, not MRC{rename}")
    if size == 0:
        raise InputError(f"{path}: file is empty")
    if size < _HEADER_BYTES:
        raise InputError(
            f"{path}: file is only {size} bytes, too short for an MRC header ({_HEADER_BYTES} "
            "bytes); is it truncated?"
        )
    return None


def _raw_extended_size(path: Path) -> int | None:
    """The extended header size word of a plain MRC file, in the stamped byte order."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_HEADER_BYTES)
    except OSError:
        return None
    if len(raw) < _HEADER_BYTES:
        return None
    order = ">" if raw[212] == 0x11 else "<"
    return int(np.frombuffer(raw, f"{order}i4", count=1, offset=92)[0])


def read_mrc_header(path: str | os.PathLike) -> tuple[np.recarray, int]:
    """Read and validate an MRC header.

    Parameters
    ----------
    path : str or PathLike
        The file (plain, or gzip/bzip2-compressed with a ``.gz``/``.bz2`` suffix).

    Returns
    -------
    header : numpy.recarray
        The 1024-byte main header.
    data_offset : int
        Byte offset of the data block (header plus extended header), in the
        decompressed stream for a compressed file.

    Raises
    ------
    InputError
        If the file is missing, not a regular file, not an MRC file (another format,
        a wrong map identifier, invalid dimensions) or of a mode we cannot read.

    """
    path = Path(path)
    size = check_regular_file(path)
    compressed = _compression(path, size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with mrcfile.open(path, mode="r", permissive=True, header_only=True) as mrc:
                header = mrc.header.copy() if mrc.header is not None else None
                ext_bytes = int(mrc.header.nsymbt) if header is not None else 0
        except Exception as err:  # mrcfile raises ValueError, EOFError, ...
            if compressed:
                raise InputError(
                    f"{path}: the {compressed} data are damaged or truncated ({err})"
                ) from None
            ext = _raw_extended_size(path)
            if ext is not None and ext < 0:
                raise InputError(
                    f"{path}: invalid MRC header: extended header size {ext}"
                ) from None
            raise InputError(f"{path}: not a readable MRC file ({err})") from None
    problems = [str(w.message) for w in caught]
    if header is None:
        raise InputError(f"{path}: not a readable MRC file ({'; '.join(problems) or 'no header'})")
    map_id = bytes(header.map)
    nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
    mode = int(header.mode)
    if map_id.strip(b"\x00 ") not in (b"MAP", b""):
        raise InputError(
            f"{path}: not an MRC file: wrong map identifier {map_id!r} at byte 208 "
            "(expected b'MAP ')"
        )
    if map_id.strip(b"\x00 ") == b"" and not (nx > 0 and ny > 0 and nz > 0):
        raise InputError(f"{path}: not an MRC file (no 'MAP' identifier and an invalid size)")
    if nx <= 0 or ny <= 0 or nz <= 0:
        raise InputError(f"{path}: invalid MRC dimensions {nx} x {ny} x {nz}")
    if mode not in SUPPORTED_MODES:
        known = ", ".join(f"{m} ({t})" for m, t in SUPPORTED_MODES.items())
        raise InputError(
            f"{path}: MRC mode {mode} is not supported; supported modes are {known}. "
            "Convert the file to float32 (mode 2), e.g. with IMOD's newstack -mode 2."
        )
    if ext_bytes < 0:
        raise InputError(f"{path}: invalid MRC header: extended header size {ext_bytes}")
    return header, _HEADER_BYTES + ext_bytes


def read_mrc(path: str | os.PathLike, *, mmap: bool = True) -> tuple[np.ndarray, ImageInfo]:
    """Read an MRC file without copying or converting its data.

    Parameters
    ----------
    path : str or PathLike
        An MRC image, stack (``.mrcs``, ``.st``, ``.ali``), movie or volume
        (``.rec``, ``.map``), plain or compressed (``.gz``, ``.bz2``).
    mmap : bool
        If True (default) the data is a read-only memory map; otherwise it is
        read into memory in its stored dtype. Compressed files are always
        decompressed into memory.

    Returns
    -------
    data : numpy.ndarray
        2D ``(y, x)`` for a single image, else 3D ``(z, y, x)``; stored dtype.
    info : ImageInfo
        Voxel size, origin, mode, kind and other header facts.

    Raises
    ------
    InputError
        For a missing, truncated or unreadable file or an unsupported mode.

    """
    path = Path(path)
    header, offset = read_mrc_header(path)
    nx, ny, nz, mode = int(header.nx), int(header.ny), int(header.nz), int(header.mode)
    dtype = mrcfile.utils.data_dtype_from_header(header)
    shape = (nz, ny, nx)
    count = nx * ny * nz  # Python ints: no overflow for absurd headers
    compression = file_format(path) if compression_of(path) else None
    if compression in ("gzip", "bzip2"):
        data = read_compressed_block(path, compression, offset, dtype, shape)
    else:
        expected = offset + count * dtype.itemsize
        actual = path.stat().st_size
        if offset > actual:
            raise InputError(
                f"{path}: the header declares a {offset - _HEADER_BYTES}-byte extended header "
                f"but the file has only {actual} bytes (damaged header or truncated file)"
            )
        if actual < expected and expected > _ABSURD_BYTES:
            raise InputError(
                f"{path}: damaged MRC header: it describes {nx} x {ny} x {nz} voxels "
                f"({expected} bytes) but the file has only {actual} bytes"
            )
        if actual < expected:
            raise InputError(
                f"{path}: file is truncated: the header describes {nx} x {ny} x {nz} voxels of "
                f"mode {mode} ({expected} bytes) but the file has only {actual} bytes. "
                "Was the transfer or acquisition interrupted?"
            )
        if mmap:
            data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
        else:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = np.fromfile(fh, dtype=dtype, count=count).reshape(shape)
    if nz == 1:
        data = data[0]
    voxel = (float(header.cella.z), float(header.cella.y), float(header.cella.x))
    grid = (int(header.mz) or nz, int(header.my) or ny, int(header.mx) or nx)
    voxel_size = tuple(round(c / g, 6) if g > 0 else 0.0 for c, g in zip(voxel, grid, strict=True))
    origin = (float(header.origin.z), float(header.origin.y), float(header.origin.x))
    labels = tuple(
        bytes(lbl).rstrip(b"\x00 ").decode("ascii", "replace")
        for lbl in header.label[: max(0, min(int(header.nlabl), 10))]
    )
    info = ImageInfo.build(
        path=path,
        kind=_kind_for(path, nz, int(header.ispg)),
        shape=data.shape,
        raw_voxel_size=voxel_size,
        origin=origin,
        start=(int(header.nzstart), int(header.nystart), int(header.nxstart)),
        mode=mode,
        dtype=str(dtype.newbyteorder("=")),
        labels=labels,
        extended_header_type=bytes(header.exttyp).decode("ascii", "replace").strip("\x00 "),
    )
    return data, info


def _zyx(values: float | Sequence[float], fill: float | None) -> tuple[float, float, float]:
    """Expand a scalar or a (y, x) / (z, y, x) sequence to (z, y, x).

    A missing z takes ``fill``, or the y value when ``fill`` is None.
    """
    if np.ndim(values) == 0:
        v = float(values)  # type: ignore[arg-type]
        return v, v, v
    seq = [float(v) for v in values]  # type: ignore[union-attr]
    if len(seq) == 2:
        seq = [seq[0] if fill is None else fill, *seq]
    if len(seq) != 3:
        raise ValueError(f"expected 1, 2 or 3 values, got {len(seq)}")
    return seq[0], seq[1], seq[2]


def _protected(path: Path, protect: Iterable[str | os.PathLike]) -> bool:
    for other in protect:
        other = Path(other)
        try:
            if path.resolve() == other.resolve() or (
                path.exists() and other.exists() and os.path.samefile(path, other)
            ):
                return True
        except OSError:
            continue
    return False


def write_mrc(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    voxel_size: float | Sequence[float] = 1.0,
    origin: Sequence[float] | None = None,
    start: Sequence[int] | None = None,
    kind: ImageKind | None = None,
    dtype: np.dtype | str = np.float32,
    labels: Sequence[str] = (),
    protect: Iterable[str | os.PathLike] = (),
    overwrite: bool = True,
) -> Path:
    """Write an array to an MRC file atomically, with correct header statistics.

    Parameters
    ----------
    path : str or PathLike
        Output file.
    data : numpy.ndarray
        2D image or 3D stack/volume ``(z, y, x)``.
    voxel_size : float or sequence of float
        Pixel/voxel size in Angstrom, one value or ``(z, y, x)``.
    origin : sequence of float, optional
        Origin ``(z, y, x)`` in Angstrom.
    start : sequence of int, optional
        ``(nzstart, nystart, nxstart)``, the grid index of the first voxel.
    kind : {"image", "stack", "movie", "volume"}, optional
        Sets the space group (0 for stacks, 1 for volumes). Inferred from the
        suffix (``.mrcs`` = stack) or the shape if omitted.
    dtype : numpy dtype
        Stored type; float32 (mode 2) by default.
    labels : sequence of str
        Up to 10 header labels of at most 80 characters.
    protect : iterable of path
        Paths that must never be overwritten (e.g. the inputs).
    overwrite : bool
        If False, refuse to replace an existing file.

    Returns
    -------
    pathlib.Path
        The path written.

    """
    path = Path(path)
    if _protected(path, protect):
        raise InputError(f"{path}: refusing to overwrite an input file; choose another output")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite to replace it)")
    data = np.asarray(data)
    if data.ndim not in (2, 3):
        raise InputError(f"cannot write a {data.ndim}D array as MRC (need 2D or 3D)")
    out = np.ascontiguousarray(data, dtype=np.dtype(dtype))
    vz, vy, vx = _zyx(voxel_size, fill=None)
    if kind is None:
        kind = _KIND_BY_SUFFIX.get(image_suffix(path), "image" if out.ndim == 2 else "volume")
    packing = compression_of(path)
    with atomic_path(path) as tmp, mrcfile.new(tmp, overwrite=True, compression=packing) as mrc:
        mrc.set_data(out)
        origin_zyx = None if origin is None else _zyx(origin, fill=0.0)
        _describe(mrc, kind, (vz, vy, vx), origin_zyx, start, labels)
        mrc.update_header_stats()
    return path


def _describe(
    mrc: mrcfile.mrcfile.MrcFile,
    kind: ImageKind | None,
    voxel_size: tuple[float, float, float],
    origin: tuple[float, float, float] | None,
    start: Sequence[int] | None,
    labels: Sequence[str],
) -> None:
    """Space group, voxel size, origin, start (all ``(z, y, x)``), labels of a file written."""
    if mrc.data.ndim == 3:
        if kind in ("stack", "movie"):
            mrc.set_image_stack()
        else:
            mrc.set_volume()
    vz, vy, vx = voxel_size
    mrc.voxel_size = (vx, vy, vz)
    if origin is not None:
        oz, oy, ox = origin
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = ox, oy, oz
    if start is not None:
        mrc.header.nzstart, mrc.header.nystart, mrc.header.nxstart = (int(v) for v in start)
    for label in [*labels][:9]:
        mrc.add_label(str(label)[:80])
    mrc.add_label("written by napari-cryodenoise")


def concatenate_mrc(
    parts: Sequence[str | os.PathLike],
    path: str | os.PathLike,
    *,
    kind: ImageKind | None = None,
    labels: Sequence[str] = (),
    protect: Iterable[str | os.PathLike] = (),
) -> Path:
    """Join 3D MRC files along z into one float32 MRC file, atomically and streaming.

    Only one plane is in memory at a time; the header statistics are those of
    the whole result, and the voxel size, origin and start are the first part's.

    Parameters
    ----------
    parts : sequence of path
        MRC files (3D, or 2D for one plane) with the same ``(y, x)`` size, in z order.
    path : str or PathLike
        Output file (written to a temporary file and renamed over it).
    kind : {"stack", "movie", "volume"}, optional
        Sets the space group; default the first part's.
    labels : sequence of str
        Header labels, as for :func:`write_mrc`.
    protect : iterable of path
        Paths that must never be overwritten.

    Returns
    -------
    pathlib.Path
        The path written.

    """
    path = Path(path)
    if _protected(path, protect):
        raise InputError(f"{path}: refusing to overwrite an input file; choose another output")
    if not parts:
        raise InputError(f"{path}: nothing to join")
    arrays = []
    for part in parts:
        data, info = read_mrc(part, mmap=True)
        if data.ndim == 2:  # a one-plane part
            data = data[None]
        if data.ndim != 3 or (arrays and data.shape[1:] != arrays[0][0].shape[1:]):
            raise InputError(f"{part}: shape {data.shape} does not fit the other parts")
        arrays.append((data, info))
    first = arrays[0][1]
    shape = (sum(int(a.shape[0]) for a, _ in arrays), *arrays[0][0].shape[1:])
    n = 0
    mean = m2 = 0.0
    lo, hi = np.inf, -np.inf
    if compression_of(path):
        raise InputError(f"{path}: joined outputs cannot be written compressed; use .mrc")
    with atomic_path(path) as tmp, mrcfile.new_mmap(tmp, shape, mrc_mode=2, overwrite=True) as mrc:
        z = 0
        for data, _ in arrays:
            for plane in data:
                values = np.asarray(plane, dtype=np.float32)
                mrc.data[z] = values
                z += 1
                # Chan et al.'s pairwise update of mean and sum of squared deviations
                k = values.size
                pmean = float(values.mean(dtype=np.float64))
                pm2 = float(np.square(values - pmean, dtype=np.float64).sum())
                delta = pmean - mean
                total = n + k
                mean += delta * k / total
                m2 += pm2 + delta * delta * n * k / total
                n = total
                lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
        _describe(mrc, kind or first.kind, first.voxel_size, first.origin, first.start, labels)
        mrc.header.dmin, mrc.header.dmax = lo, hi
        mrc.header.dmean = mean
        mrc.header.rms = float(np.sqrt(m2 / n))
    return path
