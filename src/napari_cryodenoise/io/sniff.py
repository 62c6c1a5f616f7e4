"""What a path really is, checked before a reader opens it.

Readers call :func:`check_regular_file` first, so that a folder, a FIFO or a device is
refused at once with a clear message (opening a FIFO would block forever), and
:func:`file_format` to recognise a file by its first bytes, so that a TIFF renamed
``.mrc`` or a gzip file under a plain suffix gets a message saying what it is, not a
confusing complaint about the header.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import InputError

__all__ = [
    "COMPRESSION_SUFFIXES",
    "check_regular_file",
    "compression_of",
    "file_format",
    "image_suffix",
    "is_regular_file",
    "strip_compression",
]

#: Compression suffixes that mrcfile decompresses on reading, and the format each means.
COMPRESSION_SUFFIXES: dict[str, str] = {".gz": "gzip", ".bz2": "bzip2"}

#: Leading bytes of formats we recognise, and what we call them.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b\x08", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"(\xb5/\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89HDF\r\n\x1a\n", "hdf5"),
    (b"GIF8", "gif"),
)

#: Formats whose usual suffix we can suggest in a message.
SUFFIX_OF_FORMAT = {"tiff": ".tif", "png": ".png", "jpeg": ".jpg", "hdf5": ".h5", "gif": ".gif"}


def image_suffix(path: str | os.PathLike) -> str:
    """The lower-case image suffix under any compression suffix.

    ``emd_1832.map.gz`` gives ``.map``; ``a.mrc`` gives ``.mrc``.
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSION_SUFFIXES:
        return suffixes[-2]
    return path.suffix.lower()


def compression_of(path: str | os.PathLike) -> str | None:
    """``"gzip"`` or ``"bzip2"`` when the name ends with ``.gz``/``.bz2``, else None."""
    return COMPRESSION_SUFFIXES.get(Path(path).suffix.lower())


def strip_compression(path: str | os.PathLike) -> Path:
    """``path`` without a ``.gz``/``.bz2`` suffix (``emd_1.map.gz`` -> ``emd_1.map``)."""
    path = Path(path)
    return path.with_suffix("") if compression_of(path) else path


def is_regular_file(path: str | os.PathLike) -> bool:
    """True for a regular file (after symlinks); False for anything else, without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def check_regular_file(path: str | os.PathLike) -> int:
    """Raise a one-line :class:`InputError` unless ``path`` is a readable regular file.

    Nothing is opened, so a FIFO or a device is refused at once instead of blocking.

    Returns
    -------
    int
        The file's size in bytes.

    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise InputError(f"{path}: symbolic link loop; cannot read it") from None
        raise InputError(f"{path}: cannot read it ({_reason(err)})") from None
    except ValueError as err:  # an embedded NUL character
        raise InputError(f"{path}: invalid file name ({err})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        what = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "a device"
        )
        raise InputError(f"{path}: is not a regular file but {what}; cannot read it as an image")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: cannot read it (permission denied)")
    return int(st.st_size)


def file_format(path: str | os.PathLike) -> str | None:
    """Recognise a file by its first bytes: ``"gzip"``, ``"tiff"``, ``"png"`` ... or None.

    Only call this on a regular file (see :func:`check_regular_file`).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _reason(err: OSError) -> str:
    return (err.strerror or str(err)).lower()
