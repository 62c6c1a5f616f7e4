"""``cryodenoise models``: list the pretrained models, prefetch their weights, show the cache."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from . import CLIError
from ._common import add_allow_pickle

HELP = "list pretrained models and where their weights are; --fetch downloads them"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``models`` subcommand."""
    p = subparsers.add_parser(
        "models",
        help=HELP,
        description=(
            "List the pretrained denoising models (Topaz-Denoise's) and whether their weights "
            "are available: 'custom dir' ($NAPARI_CRYODENOISE_WEIGHTS), 'cached', 'in topaz-em' "
            "(an installed topaz-em package) or 'downloadable' (fetched on first use, 48 MB)."
        ),
    )
    p.add_argument(
        "--fetch",
        nargs="*",
        metavar="NAME",
        help="download the weights now (all models, or only those NAMEd) into the cache",
    )
    p.add_argument("--path", action="store_true", help="print the weights cache folder and exit")
    add_allow_pickle(p, opens_models=False)
    p.set_defaults(func=run)


class ProgressBar:
    """A plain stderr progress bar for byte counts."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_step = -1
        self._last_time = 0.0

    def __call__(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` bytes."""
        frac = done / total if total > 0 else 0.0
        if self.tty:
            now = time.monotonic()
            if now - self._last_time < 0.1 and done < total:
                return
            self._last_time = now
            fill = int(round(frac * self.width))
            bar = "#" * fill + "." * (self.width - fill)
            self.stream.write(
                f"\r{self.label} [{bar}] {done / 1e6:5.1f}/{total / 1e6:.1f} MB {frac:4.0%}"
            )
            if done >= total:
                self.stream.write("\n")
        else:
            step = int(frac * 4)  # every 25 %
            if step == self._last_step:
                return
            self._last_step = step
            mb = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"
            self.stream.write(f"{self.label}: {mb} ({frac:.0%})\n")
        self.stream.flush()


def _print_table(infos) -> None:
    rows = [("MODEL", "ARCH", "DIM", "STATUS", "FILE", "DESCRIPTION")]
    for m in infos:
        rows.append((m.alias, m.arch, f"{m.ndim}D", m.status, m.file, m.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1])


def run(args: argparse.Namespace) -> int:
    """Run ``cryodenoise models``."""
    from ..errors import WeightsUnavailableError
    from ..models import zoo

    if args.path:
        print(zoo.weights_dir())
        return 0
    if args.fetch is not None:
        names = args.fetch or list(zoo.ALIASES)
        unknown = [n for n in names if n not in zoo.ALIASES]
        if unknown:
            raise CLIError(
                f"unknown model(s): {', '.join(unknown)}; known: {', '.join(zoo.ALIASES)}"
            )
        missing = [n for n in names if zoo.find_weights(n) is None]
        if missing:
            bar = ProgressBar("downloading topaz-em 0.3.20 weights")
            try:
                zoo.fetch_weights(progress=bar)
            except WeightsUnavailableError as err:
                raise CLIError(str(err)) from err
        for n in names:
            found = zoo.find_weights(n)
            if found is None:
                raise CLIError(f"{n}: weights still not available after download")
            print(f"{n}: {found[0]} ({found[1]})")
        return 0
    _print_table(zoo.list_models())
    print(f"\nweights cache: {zoo.weights_dir()}")
    print(
        "pretrained weights: Topaz-Denoise's (Bepler et al. 2020), from the GPL-3.0 topaz-em "
        "package, used under its licence"
    )
    return 0
