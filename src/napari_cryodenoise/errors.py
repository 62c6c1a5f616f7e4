"""Exceptions shared by the compute core, the CLI and the napari layer; their one-line text."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence


class CryoDenoiseError(Exception):
    """Base class of every error this package raises on purpose."""


class Cancelled(CryoDenoiseError):
    """Long work stopped because the caller's cancel callback asked for it."""


class InputError(CryoDenoiseError, ValueError):
    """An input file or array cannot be used; the message names it and says why."""


class ImageTooSmallError(InputError):
    """An image is smaller than the smallest size a network or operation accepts."""


class WeightsUnavailableError(CryoDenoiseError):
    """Model weights could not be found or fetched; the message says how to provide them."""


_OS_HINTS = {
    errno.ENOSPC: "no space left on the device; free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded; free some space or write elsewhere",
    errno.EISDIR: "is a folder; give a file name",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ELOOP: "symlink loop; give a real path",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system; write elsewhere",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "file name too long",
}


def one_line(err: BaseException, outputs: Sequence[os.PathLike | str] = ()) -> str:
    """One line for the user: the file concerned and the problem.

    An OS error names its file (the output, not a temporary file of it) and a hint;
    ``outputs`` are named when the error has no file name.
    """
    if isinstance(err, OSError):
        problem = _OS_HINTS.get(err.errno or -1) or (err.strerror or str(err) or "I/O error")
        problem = problem[0].lower() + problem[1:]
        name = err.filename
        if name is not None:
            from .io.atomic import partial_target

            where = os.fsdecode(name)
            where = str(partial_target(where) or where)
        elif outputs:
            where = "writing " + ", ".join(str(p) for p in outputs[:3])
        else:
            where = ""
        return f"{where}: {problem}" if where else problem
    if isinstance(err, MemoryError):
        return "out of memory; use smaller inputs, --patch-size, --bin or a machine with more RAM"
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
