"""The one-line text a user sees for an error: the file concerned and the problem."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

from .io.atomic import partial_target

__all__ = ["one_line"]

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
