"""The one rule for writing a file atomically and durably, and for finding its leftovers.

Every writer of the package (MRC, TIFF, PNG, STAR, CSV, checkpoints, weights) writes to a
hidden temporary file beside the target, named ``.NAME.TAG.partialSUFFIX``, flushes it to
disk (``fsync``), renames it over the target and then syncs the folder, as databases do.
A power cut or a kill therefore leaves either the old file or the new one under the final
name, never an empty or half-written one; what it may leave is a ``.partial`` file that
:func:`partial_files` finds and :func:`remove_partials` deletes.

The temporary name ends with the target's own suffix, so writers that choose a format
from the file name (tifffile, matplotlib) write the right one.

A full disk, a quota, a read-only file system or a missing permission while writing
becomes an :class:`OutputWriteError`: one line naming the final file and the problem
("no space left on device"), with the temporary file removed.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import CryoDenoiseError

__all__ = [
    "OutputWriteError",
    "as_write_error",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_dir",
    "is_partial",
    "partial_files",
    "partial_target",
    "partial_path",
    "remove_partials",
]

_MARK = ".partial"
_PARTIAL_NAME = re.compile(r"^\.(?P<name>.+)\.[^.]+\.partial[^/]*$")

#: Errors of the disk or the folder, not of the program: reported as one line.
_DISK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EACCES", "EPERM")
    if hasattr(errno, name)
)


class OutputWriteError(CryoDenoiseError, OSError):
    """An output could not be written (disk full, quota, read-only, permission).

    Still an :class:`OSError` (with the original ``errno``) for code that catches
    those; its message is one line naming the file: ``PATH: cannot write it: no
    space left on device``.
    """

    def __init__(self, path: str | os.PathLike, cause: OSError) -> None:
        reason = (cause.strerror or str(cause) or type(cause).__name__).lower()
        self.message = f"{path}: cannot write it: {reason}"
        super().__init__(cause.errno, self.message)
        self.filename = os.fspath(path)

    def __str__(self) -> str:
        return self.message


def as_write_error(path: str | os.PathLike, err: BaseException) -> BaseException:
    """``err`` as an :class:`OutputWriteError` when it is a disk or permission error."""
    if (
        isinstance(err, OSError)
        and not isinstance(err, CryoDenoiseError)
        and err.errno in _DISK_ERRNOS
    ):
        return OutputWriteError(path, err)
    return err


def partial_path(path: str | os.PathLike) -> Path:
    """Return a fresh temporary path for writing ``path``: ``.NAME.PID-RANDOM.partialSUFFIX``."""
    path = Path(path)
    tag = f"{os.getpid()}-{secrets.token_hex(3)}"
    return path.with_name(f".{path.name}.{tag}{_MARK}{path.suffix}")


def is_partial(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a temporary file of :func:`atomic_path`."""
    name = Path(path).name
    return name.startswith(".") and _MARK in name


def partial_target(path: str | os.PathLike) -> Path | None:
    """The output a temporary ``.NAME.TAG.partialSUFFIX`` file is for (None if not one)."""
    path = Path(path)
    match = _PARTIAL_NAME.match(path.name)
    return path.with_name(match.group("name")) if match else None


def partial_files(path: str | os.PathLike) -> list[Path]:
    """Leftover temporary files of the output ``path`` (from a killed writer)."""
    path = Path(path)
    try:
        return sorted(path.parent.glob(f".{_glob_escape(path.name)}.*{_MARK}*"))
    except OSError:
        return []


def remove_partials(paths: Iterable[str | os.PathLike]) -> int:
    """Delete the leftover temporary files of ``paths``; return how many were removed.

    Only call this when no writer of these outputs is running.
    """
    removed = 0
    for out in paths:
        for tmp in partial_files(out):
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where unsupported."""
    try:
        fd = os.open(os.fspath(folder), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` durably.

    Parameters
    ----------
    path : str or PathLike
        The final file.
    mkdir : bool
        Create the parent folder if needed.

    Yields
    ------
    pathlib.Path
        The temporary file to write (beside ``path``, same suffix). If the block raises,
        or is interrupted, the temporary file is removed and ``path`` is untouched.

    Raises
    ------
    OutputWriteError
        For a full disk, a quota, a read-only file system or a missing permission.

    """
    path = Path(path)
    if mkdir:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise as_write_error(path, err) from err
    tmp = partial_path(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        friendly = as_write_error(path, err)
        if friendly is not err:
            raise friendly from err
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically and durably; return the path."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        f.write(data)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and durably; return the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
