"""The ``cryodenoise`` command line: one module per subcommand, thin over the API."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__

#: Subcommand modules, in the order ``--help`` lists them. Each defines
#: ``add_parser(subparsers)`` which registers the subcommand and sets
#: ``func`` (a callable taking the parsed namespace and returning an exit code).
SUBCOMMANDS = ("simulate", "models", "denoise", "train", "evaluate")


class CLIError(Exception):
    """An error to report to the user as one line, with a non-zero exit code."""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except CLIError as err:
        print(f"cryodenoise {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cryodenoise {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
