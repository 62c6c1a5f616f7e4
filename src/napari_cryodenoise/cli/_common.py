"""What every ``cryodenoise`` subcommand shares: ``--allow-pickle``, the output guard, errors.

* :func:`add_allow_pickle` / :func:`allow_pickle_scope`: the ``--allow-pickle`` option of
  every subcommand that opens model files, passed to
  :func:`napari_cryodenoise.models.checkpoint.load_checkpoint` through its documented
  environment default (so local Dask workers, started from this process, inherit it).
* :func:`guard_outputs`: the one check, before any work, that no output of the run
  resolves to one of its inputs, to another output or to a folder; it also records the
  outputs so that :func:`cleanup` can remove their temporary files after a failure.
* :func:`one_line` (from :mod:`napari_cryodenoise.errors`): the one-line message shown for
  any exception.
"""

from __future__ import annotations

import argparse
import errno
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..messages import one_line

__all__ = [
    "DEBUG_ENV",
    "add_allow_pickle",
    "allow_pickle_scope",
    "check_folder",
    "check_out_star",
    "cleanup",
    "guard_outputs",
    "ignore_further_interrupts",
    "one_line",
]

#: Set to 1 to see the Python traceback of an unexpected error.
DEBUG_ENV = "CRYODENOISE_DEBUG"

_OUTPUTS_ATTR = "_guarded_outputs"


def add_allow_pickle(parser: argparse.ArgumentParser, *, opens_models: bool = True) -> None:
    """Add ``--allow-pickle`` to a subcommand's parser."""
    help_text = (
        "open model files that are whole pickled Python objects (e.g. saved by `topaz "
        "denoise` training); they can run code when opened, so only for files you trust"
    )
    if not opens_models:
        help_text = "accepted for uniformity; this command opens no model file"
    parser.add_argument("--allow-pickle", action="store_true", help=help_text)


@contextmanager
def allow_pickle_scope(args: argparse.Namespace) -> Iterator[None]:
    """While the command runs, let model loading accept pickles if ``--allow-pickle`` was given.

    Sets ``NAPARI_CRYODENOISE_ALLOW_PICKLE=1`` (the default of
    ``load_checkpoint(allow_pickle=None)``) and restores the previous value afterwards.
    """
    if not getattr(args, "allow_pickle", False):
        yield
        return
    from ..models.checkpoint import ENV_ALLOW_PICKLE

    old = os.environ.get(ENV_ALLOW_PICKLE)
    os.environ[ENV_ALLOW_PICKLE] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_ALLOW_PICKLE, None)
        else:
            os.environ[ENV_ALLOW_PICKLE] = old


def check_folder(option: str, path: str | os.PathLike) -> None:
    """Refuse an output folder option that is a file, a symlink loop or not a valid path."""
    from ..io.output_guard import OutputPathError

    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OutputPathError(f"{option} {path}: symlink loop; give a real folder") from None
        if err.errno == errno.ENOTDIR:
            raise OutputPathError(f"{option} {path}: a part of the path is a file") from None
        return  # does not exist yet: created when the first output is written
    except ValueError:
        raise OutputPathError(f"{option} {path!r}: not a valid path") from None
    if not os.path.isdir(path):
        raise OutputPathError(f"{option} {path}: exists and is not a folder")


def guard_outputs(
    args: argparse.Namespace,
    outputs: Sequence[tuple[str, str | os.PathLike]],
    inputs: Iterable[tuple[str, str | os.PathLike] | str | os.PathLike],
) -> None:
    """Run :func:`~napari_cryodenoise.io.output_guard.check_outputs`; remember the outputs.

    Raises
    ------
    OutputPathError
        One line naming the option, the output and what it would overwrite.

    """
    from ..io.output_guard import check_outputs

    check_outputs(list(outputs), list(inputs))
    setattr(args, _OUTPUTS_ATTR, [Path(p) for _, p in outputs if p is not None])


def guarded_outputs(args: argparse.Namespace) -> list[Path]:
    """The outputs recorded by :func:`guard_outputs` (empty before the guard ran)."""
    return list(getattr(args, _OUTPUTS_ATTR, []))


def cleanup(args: argparse.Namespace) -> None:
    """Remove the temporary files this process left for the run's outputs after a failure.

    Only files tagged with this process id (``.NAME.PID...partial...``): another run's
    temporary files, perhaps still being written, are left alone.
    """
    from ..io.atomic import partial_files

    tag = f".{os.getpid()}"
    for out in guarded_outputs(args):
        try:
            for tmp in partial_files(out):
                if tmp.name.startswith(f".{out.name}{tag}"):
                    tmp.unlink(missing_ok=True)
        except OSError:  # best effort while reporting another error
            pass


def ignore_further_interrupts() -> None:
    """Ignore Ctrl-C from now on: the run is ending.

    A user who presses it again while the outputs are cleaned up or the interpreter
    shuts down would otherwise get a KeyboardInterrupt traceback from an exit handler
    and exit status -2 instead of 130.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def check_out_star(value: str | os.PathLike | None) -> None:
    """Refuse an ``--out-star`` that is not a ``.star`` file.

    A slip such as ``--out-star mic_0002.mrc`` would replace that micrograph by the list.

    Raises
    ------
    CLIError
        One line naming the option.

    """
    if value is not None and Path(value).suffix.lower() != ".star":
        from . import CLIError

        raise CLIError(
            f"--out-star {value}: the RELION list must be a .star file "
            "(e.g. --out-star denoised/micrographs.star)"
        )
