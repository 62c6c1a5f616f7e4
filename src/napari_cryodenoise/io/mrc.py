"""Read and write MRC files (images, stacks, movies, tilt series and volumes).

Reading memory-maps the data block directly (no copy, no float64), after
validating the header with :mod:`mrcfile` in permissive mode so that FEI/EPU
extended headers and other real-world quirks open. Writing goes to a temporary
file next to the target which is then renamed over it, so a crash never leaves
a half-written output, and an input file is never overwritten.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import mrcfile
import mrcfile.utils
import numpy as np

from ..errors import InputError
from .image_info import ImageInfo, ImageKind

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


def is_mrc_file(path: str | os.PathLike) -> bool:
    """Return True if ``path`` starts with something that looks like an MRC header.

    This is a cheap check (reads 1 kB) used by the napari reader to decide
    whether to claim a file; it does not validate the data block.
    """
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
    by_suffix = _KIND_BY_SUFFIX.get(path.suffix.lower())
    if by_suffix is not None:
        return by_suffix
    # .mrc: the space group tells a stack of images (0) from a volume (1, 401...)
    return "stack" if ispg == 0 else "volume"


def read_mrc_header(path: str | os.PathLike) -> tuple[np.recarray, int]:
    """Read and validate an MRC header.

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    header : numpy.recarray
        The 1024-byte main header.
    data_offset : int
        Byte offset of the data block (header plus extended header).

    Raises
    ------
    InputError
        If the file is missing, not an MRC file, or of a mode we cannot read.

    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with mrcfile.open(path, mode="r", permissive=True, header_only=True) as mrc:
                header = mrc.header.copy()
                ext_bytes = int(mrc.header.nsymbt)
        except Exception as err:  # mrcfile raises ValueError, EOFError, ...
            raise InputError(f"{path}: not a readable MRC file ({err})") from err
    problems = [str(w.message) for w in caught]
    if header is None:
        raise InputError(f"{path}: not a readable MRC file ({'; '.join(problems) or 'no header'})")
    map_id = bytes(header.map).strip(b"\x00 ")
    nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
    mode = int(header.mode)
    if map_id not in (b"MAP", b"MAP\x00") and not (nx > 0 and ny > 0 and nz > 0):
        raise InputError(f"{path}: not an MRC file (no 'MAP' identifier and an invalid size)")
    if nx <= 0 or ny <= 0 or nz <= 0:
        raise InputError(f"{path}: invalid MRC dimensions {nx} x {ny} x {nz}")
    if mode not in SUPPORTED_MODES:
        known = ", ".join(f"{m} ({t})" for m, t in SUPPORTED_MODES.items())
        raise InputError(
            f"{path}: MRC mode {mode} is not supported; supported modes are {known}. "
            "Convert the file to float32 (mode 2), e.g. with IMOD's newstack -mode 2."
        )
    return header, _HEADER_BYTES + max(ext_bytes, 0)


def read_mrc(path: str | os.PathLike, *, mmap: bool = True) -> tuple[np.ndarray, ImageInfo]:
    """Read an MRC file without copying or converting its data.

    Parameters
    ----------
    path : str or PathLike
        An MRC image, stack (``.mrcs``, ``.st``, ``.ali``), movie or volume
        (``.rec``, ``.map``).
    mmap : bool
        If True (default) the data is a read-only memory map; otherwise it is
        read into memory in its stored dtype.

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
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = path.stat().st_size
    if actual < expected:
        raise InputError(
            f"{path}: file is truncated: the header describes {nx} x {ny} x {nz} voxels of mode "
            f"{mode} ({expected} bytes) but the file has only {actual} bytes. "
            "Was the transfer or acquisition interrupted?"
        )
    if mmap:
        data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    else:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = np.fromfile(fh, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
    if nz == 1:
        data = data[0]
    voxel = (float(header.cella.z), float(header.cella.y), float(header.cella.x))
    grid = (int(header.mz) or nz, int(header.my) or ny, int(header.mx) or nx)
    voxel_size = tuple(round(c / g, 6) if g > 0 else 0.0 for c, g in zip(voxel, grid, strict=True))
    origin = (float(header.origin.z), float(header.origin.y), float(header.origin.x))
    labels = tuple(
        bytes(lbl).rstrip(b"\x00 ").decode("ascii", "replace")
        for lbl in header.label[: int(header.nlabl)]
    )
    info = ImageInfo.build(
        path=path,
        kind=_kind_for(path, nz, int(header.ispg)),
        shape=data.shape,
        raw_voxel_size=voxel_size,
        origin=origin,
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
        kind = _KIND_BY_SUFFIX.get(path.suffix.lower(), "image" if out.ndim == 2 else "volume")
    with _atomic(path) as tmp, mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(out)
        origin_zyx = None if origin is None else _zyx(origin, fill=0.0)
        _describe(mrc, kind=kind, voxel_size=(vz, vy, vx), origin=origin_zyx, labels=labels)
        mrc.update_header_stats()
    return path


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary file next to ``path``, renamed over it if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _describe(
    mrc: mrcfile.mrcfile.MrcFile,
    *,
    kind: ImageKind | None,
    voxel_size: tuple[float, float, float],
    origin: tuple[float, float, float] | None,
    labels: Sequence[str],
) -> None:
    """Space group, voxel size ``(z, y, x)``, origin and labels of a file being written."""
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
    the whole result, and the voxel size and origin are the first part's.

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
    with _atomic(path) as tmp, mrcfile.new_mmap(tmp, shape, mrc_mode=2, overwrite=True) as mrc:
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
        _describe(
            mrc,
            kind=kind or first.kind,
            voxel_size=first.voxel_size,
            origin=first.origin,
            labels=labels,
        )
        mrc.header.dmin, mrc.header.dmax = lo, hi
        mrc.header.dmean = mean
        mrc.header.rms = float(np.sqrt(m2 / n))
    return path
