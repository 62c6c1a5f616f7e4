"""The ``cryodenoise`` command line: one module per subcommand, thin over the API."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from .. import __version__

#: Subcommand modules, in the order ``--help`` lists them. Each defines
#: ``add_parser(subparsers)`` which registers the subcommand and sets
#: ``func`` (a callable taking the parsed namespace and returning an exit code).
SUBCOMMANDS = ("simulate", "models", "denoise", "watch", "train", "evaluate")


class CLIError(Exception):
    """An error to report to the user as one line, with a non-zero exit code."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and a pointer to ``--help``)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit with code 2."""
        first = message.strip().splitlines()[0] if message.strip() else "invalid arguments"
        self.exit(2, f"{self.prog}: error: {first} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    parser = _Parser(
        prog="cryodenoise",
        description="Denoise cryo-EM micrographs, movies and tomograms with deep networks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{name}":
                continue  # subcommand not part of this build yet
            raise
        module.add_parser(subparsers)
    return parser


@contextmanager
def _one_line_warnings(prog: str, debug: bool) -> Iterator[None]:
    """Show Python warnings as ``cryodenoise COMMAND: warning: ...`` (no source lines)."""
    if debug:
        yield
        return
    previous = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
        text = " ".join(str(message).split())
        return f"{prog}: warning: {text}\n"

    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = previous


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    Every error reaches the user as one line ``cryodenoise COMMAND: error: ...`` naming the
    file or option and the problem, with a non-zero exit code and the temporary files of
    the run's outputs removed; ``CRYODENOISE_DEBUG=1`` shows the traceback of an
    unexpected one.
    """
    from ..errors import CryoDenoiseError
    from ..io.output_guard import OutputPathError
    from ._common import (
        DEBUG_ENV,
        allow_pickle_scope,
        cleanup,
        guarded_outputs,
        ignore_further_interrupts,
        one_line,
    )

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        if exit_.code in (0, None):  # --help, --version
            raise
        return exit_.code if isinstance(exit_.code, int) else 2  # usage error, one line shown
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    prog = f"cryodenoise {args.command}"
    debug = os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    try:
        with allow_pickle_scope(args), _one_line_warnings(prog, debug):
            return int(args.func(args) or 0)
    except (CLIError, OutputPathError) as err:
        cleanup(args)
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        ignore_further_interrupts()
        cleanup(args)
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (CryoDenoiseError, OSError, MemoryError) as err:
        cleanup(args)
        if debug:
            raise
        print(f"{prog}: error: {one_line(err, guarded_outputs(args))}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - last resort: never a traceback for users
        cleanup(args)
        if debug:
            raise
        print(
            f"{prog}: internal error: {type(err).__name__}: {one_line(err)} "
            f"(run with {DEBUG_ENV}=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
