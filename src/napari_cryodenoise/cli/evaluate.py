"""``cryodenoise evaluate``: compare denoising methods with quality metrics.

Argument parsing and printing only; the work is :mod:`napari_cryodenoise.evaluation`
(methods, scoring against ground truth, even/odd halves or particle picks, table, CSV,
plot). Its names used by scripts (``Method``, ``Row``, ``format_table``, ...) are
re-exported here; :func:`parse_method` and :func:`parse_methods` report a bad method as a
:class:`~napari_cryodenoise.cli.CLIError`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import CryoDenoiseError
from ..evaluation import (
    COLUMNS,
    FRCCurve,
    Method,
    PickOptions,
    Row,
    format_table,
    frc_notes,
    require_matplotlib,
    summarize,
    write_csv,
    write_plot,
)
from ..evaluation import evaluate as _evaluate
from ..evaluation import parse_method as _parse_method
from ..evaluation import parse_methods as _parse_methods
from . import CLIError
from ._common import add_allow_pickle
from ._types import nonnegative_float, positive_float

__all__ = [
    "COLUMNS",
    "DEFAULT_METHODS",
    "FRCCurve",
    "Method",
    "Row",
    "add_parser",
    "evaluate",
    "format_table",
    "frc_notes",
    "parse_method",
    "parse_methods",
    "run",
    "summarize",
    "write_csv",
    "write_plot",
]

DEFAULT_METHODS = "raw,gaussian:2,unet"


def parse_method(spec: str) -> Method:
    """Parse one method specification (:func:`napari_cryodenoise.evaluation.parse_method`)."""
    try:
        return _parse_method(spec)
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None


def parse_methods(text: str | Sequence[str]) -> list[Method]:
    """Parse comma-separated lists of methods, keeping order, no repeats."""
    try:
        return _parse_methods(text)
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` subcommand."""
    p = subparsers.add_parser(
        "evaluate",
        help="compare denoising methods (ground truth, even/odd FRC, or particle-pick SNR)",
        description=(
            "Compare denoising methods on a set of images. Give noisy IMAGES with --clean "
            "(ground truth) and/or --picks (region SNR), and/or --even/--odd half sums (FRC). "
            "Prints one row per method, averaged over the images."
        ),
        epilog=(
            "methods: raw, gaussian:SIGMA, lowpass:FACTOR, a model alias (unet, unet-v0.2.1, "
            "unet-small, fcnn, affine, unet-3d, ...), a model file, or models joined by '+'. "
            "example: cryodenoise evaluate mic.mrc --picks mic_autopick.star --radius 12 "
            "-m raw,gaussian:2,unet,fcnn"
        ),
    )
    p.add_argument(
        "images",
        nargs="*",
        type=Path,
        metavar="IMAGE",
        help="noisy images (for --clean and --picks)",
    )
    p.add_argument(
        "-m",
        "--methods",
        action="append",
        default=None,
        metavar="LIST",
        help=f"comma-separated methods (repeatable; default {DEFAULT_METHODS})",
    )
    gt = p.add_argument_group("ground truth")
    gt.add_argument(
        "--clean",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="noise-free images, one per IMAGE, in the same order",
    )
    eo = p.add_argument_group("even/odd halves")
    eo.add_argument(
        "--even", nargs="+", type=Path, default=[], metavar="FILE", help="sums of the even frames"
    )
    eo.add_argument(
        "--odd",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="sums of the odd frames, one per --even file",
    )
    eo.add_argument(
        "--taper",
        type=nonnegative_float,
        default=0.05,
        help="FRC edge taper as a fraction of the size (default 0.05; 0 = none)",
    )
    pk = p.add_argument_group("particle picks")
    pk.add_argument(
        "--picks",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="pick files (RELION .star, Topaz .txt, .box): one per IMAGE, or one "
        "STAR file with rlnMicrographName for all",
    )
    pk.add_argument("--radius", type=positive_float, default=None, help="region radius in pixels")
    pk.add_argument(
        "--region", choices=("disc", "box"), default="disc", help="region shape (default disc)"
    )
    pk.add_argument(
        "--min-separation",
        type=nonnegative_float,
        default=3.0,
        help="background centres at least this many radii from every pick (default 3)",
    )
    pk.add_argument("--seed", type=int, default=0, help="seed of the background placement")
    p.add_argument(
        "--pixel-size",
        type=positive_float,
        default=None,
        help="Angstrom/pixel for FRC (default: from the header; px if unknown)",
    )
    p.add_argument("-d", "--device", default="auto", help="model device: auto, cpu, cuda, mps")
    p.add_argument("--precision", default="fp32", help="model precision (default fp32)")
    p.add_argument("--per-image", action="store_true", help="one table row per image and method")
    p.add_argument(
        "--csv", type=Path, default=None, metavar="PATH", help="write per-image results as CSV"
    )
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="PATH.png",
        help="plot FRC curves and scores (needs matplotlib; format from the suffix: .png, "
        ".pdf, .svg, ...)",
    )
    add_allow_pickle(p)
    p.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> None:
    if args.images and not (args.clean or args.picks):
        raise CLIError("IMAGE files given without --clean or --picks to measure them against")
    if not (args.clean or args.picks or args.even or args.odd):
        raise CLIError("nothing to measure: give --clean, --picks, or --even with --odd")
    if (args.clean or args.picks) and not args.images:
        raise CLIError("--clean and --picks need the noisy IMAGE files as positional arguments")
    if args.clean and len(args.clean) != len(args.images):
        raise CLIError(f"--clean: got {len(args.clean)} files for {len(args.images)} images")
    if len(args.even) != len(args.odd):
        raise CLIError(f"--even and --odd: got {len(args.even)} and {len(args.odd)} files")
    if args.picks and (args.radius is None or not args.radius > 0):
        raise CLIError("--picks needs --radius PX (> 0), the particle radius in pixels")
    if not 0 <= args.taper <= 0.5:
        raise CLIError("--taper must be between 0 and 0.5")
    if args.pixel_size is not None and not args.pixel_size > 0:
        raise CLIError("--pixel-size must be > 0")
    if args.plot is not None:
        plt: Any = _require_matplotlib()
        kinds = plt.figure().canvas.get_supported_filetypes()
        plt.close("all")
        suffix = args.plot.suffix.lower().lstrip(".")
        if suffix not in kinds:
            raise CLIError(
                f"--plot {args.plot}: cannot write a plot as {suffix or 'a file without a suffix'}"
                f"; give a name ending in {', '.join('.' + k for k in ('png', 'pdf', 'svg'))}"
            )
    _guard(args)


def _guard(args: argparse.Namespace) -> None:
    """The one output guard: --csv and --plot never overwrite an input or each other."""
    from ._common import guard_outputs

    outputs = [(opt, path) for opt, path in (("--csv", args.csv), ("--plot", args.plot)) if path]
    inputs: list[tuple[str, Path | str]] = [("input", p) for p in args.images]
    for option in ("clean", "even", "odd", "picks"):
        inputs += [(f"--{option}", p) for p in getattr(args, option)]
    for spec in args.methods or []:
        for part in spec.replace("+", ",").split(","):
            if part.strip() and Path(part.strip()).is_file():
                inputs.append(("model", part.strip()))
    guard_outputs(args, outputs, inputs)


def _require_matplotlib() -> object:
    try:
        return require_matplotlib()
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def evaluate(
    args: argparse.Namespace, methods: list[Method]
) -> tuple[list[Row], list[FRCCurve], str]:
    """Run every method on every input; return the rows, the FRC curves and the length unit."""
    picks = None
    if args.picks:
        picks = PickOptions(args.radius, args.region, args.min_separation, args.seed)
    try:
        return _evaluate(
            methods,
            images=args.images,
            clean=args.clean,
            picks=args.picks,
            pick_options=picks,
            even=args.even,
            odd=args.odd,
            pixel_size=args.pixel_size,
            taper=args.taper,
            device=args.device,
            precision=args.precision,
            log=_log,
        )
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from err


def run(args: argparse.Namespace) -> int:
    """Evaluate the methods and print the table."""
    _validate(args)
    methods = parse_methods(args.methods or DEFAULT_METHODS)
    rows, curves, unit = evaluate(args, methods)
    table_rows = rows if args.per_image else summarize(rows, methods)
    print(format_table(table_rows, unit=unit, per_image=args.per_image))
    for note in frc_notes(curves):
        print(note)
    if args.csv is not None:
        write_csv(args.csv, rows, unit, _log)
    if args.plot is not None:
        try:
            write_plot(args.plot, rows, curves, unit, methods, _log)
        except CryoDenoiseError as err:
            raise CLIError(str(err)) from None
    return 0
