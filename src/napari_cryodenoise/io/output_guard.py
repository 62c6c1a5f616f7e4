"""The one guard every writer runs before any work: outputs never touch inputs.

Each command and widget collects the paths it will read and the paths it will write, and
calls :func:`check_outputs` before it starts. An output that resolves to an input (through
symlinks, hard links or ``..``), to another output of the same run, or to an existing
folder, is refused with one line that names the option and the file.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping, Sequence

from ..errors import InputError

__all__ = ["OutputPathError", "check_outputs", "same_file"]

PathLike = str | os.PathLike
#: An output as ``(what, path)``: ``what`` names the option or role (``"--out-star"``).
NamedPath = tuple[str, PathLike]


class OutputPathError(InputError):
    """An output path would overwrite an input, another output, or a folder."""


def _real(path: PathLike, what: str) -> str:
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OutputPathError(f"{what} {path}: symlink loop; give a real path") from None
    except ValueError:
        raise OutputPathError(f"{what} {path!r}: not a valid path") from None
    try:
        return os.path.realpath(os.fspath(path), strict=False)
    except (OSError, RuntimeError) as err:
        raise OutputPathError(f"{what} {path}: cannot resolve the path ({_reason(err)})") from None


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return str(err).lower() or type(err).__name__


def _identity(path: PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name the same file: same resolved path, or same device and inode."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
    except (OSError, RuntimeError, ValueError):
        return False
    ia = _identity(a)
    return ia is not None and ia == _identity(b)


def _named(items: Iterable[NamedPath | PathLike] | Mapping[str, PathLike], role: str):
    if isinstance(items, Mapping):
        return [(str(k), v) for k, v in items.items() if v is not None]
    out = []
    for item in items:
        if isinstance(item, tuple):
            if item[1] is not None:
                out.append((str(item[0]), item[1]))
        elif item is not None:
            out.append((role, item))
    return out


def check_outputs(
    outputs: Sequence[NamedPath | PathLike] | Mapping[str, PathLike],
    inputs: Iterable[NamedPath | PathLike] | Mapping[str, PathLike] = (),
    *,
    allow_same_outputs: bool = False,
) -> None:
    """Refuse outputs that would overwrite an input, another output, or a folder.

    Parameters
    ----------
    outputs : sequence of path or (name, path), or mapping name -> path
        Every file the run will write, named by the option that chose it. ``None`` paths
        are ignored.
    inputs : iterable of path or (name, path), or mapping name -> path
        Every file the run will read.
    allow_same_outputs : bool
        Skip the check that no two outputs are the same file.

    Raises
    ------
    OutputPathError
        With one line naming the option, the output and the input it would destroy.

    """
    outs = _named(outputs, "output")
    ins = _named(inputs, "input")
    in_real: dict[str, PathLike] = {}
    in_ids: dict[tuple[int, int], PathLike] = {}
    for what, path in ins:
        in_real.setdefault(_real(path, what), path)
        ident = _identity(path)
        if ident is not None:
            in_ids.setdefault(ident, path)
    seen: dict[str, tuple[str, PathLike]] = {}
    for what, path in outs:
        real = _real(path, what)
        if os.path.isdir(real):
            raise OutputPathError(f"{what} {path}: is a folder; give a file name")
        hit = in_real.get(real)
        ident = _identity(path)
        if hit is None and ident is not None:
            hit = in_ids.get(ident)
        if hit is not None:
            raise OutputPathError(
                f"{what} {path}: would overwrite the input {hit}; choose another output"
            )
        if not allow_same_outputs:
            other = seen.get(real)
            if other is not None:
                raise OutputPathError(
                    f"{what} {path}: is also the output of {other[0]} ({other[1]}); "
                    "choose different outputs"
                )
            seen[real] = (what, path)
