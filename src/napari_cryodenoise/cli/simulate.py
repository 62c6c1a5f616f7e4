"""``cryodenoise simulate``: write synthetic movies with ground truth as MRC files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..io import write_mrc
from ._types import int_range, nonnegative_float, positive_float


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``simulate`` subcommand."""
    p = subparsers.add_parser(
        "simulate",
        help="write synthetic movies (frames, even/odd halves, sum, ground truth) as MRC",
        description=(
            "Simulate cryo-EM movies of randomly oriented particles with CTF, ice and Poisson "
            "noise. Writes <prefix>_movie.mrcs (frames), _even.mrc, _odd.mrc, _sum.mrc and "
            "_clean.mrc (noise-free expectation of the sum) for each movie."
        ),
    )
    p.add_argument("outdir", type=Path, help="output folder (created if needed)")
    p.add_argument(
        "--n", type=int_range(1, 100000), default=1, help="number of movies (default 1)"
    )
    p.add_argument(
        "--size",
        type=int_range(16, 16384, "pixels"),
        nargs="+",
        default=[512],
        metavar="S",
        help="frame size in pixels: S or H W (default 512)",
    )
    p.add_argument(
        "--frames", type=int_range(2, 10000), default=16, help="frames per movie (default 16)"
    )
    p.add_argument(
        "--dose", type=positive_float, default=40.0, help="total dose in e/A^2 (default 40)"
    )
    p.add_argument("--pixel-size", type=positive_float, default=1.5, help="A/pixel (default 1.5)")
    p.add_argument(
        "--defocus", type=positive_float, default=1.5, help="underfocus in um (default 1.5)"
    )
    p.add_argument(
        "--drift", type=nonnegative_float, default=0.0, help="total drift in pixels (default 0)"
    )
    p.add_argument("--map", type=Path, default=None, help="density map to project (MRC/EMDB)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the first movie")
    p.add_argument("--prefix", default="sim", help="file name prefix (default 'sim')")
    p.set_defaults(func=run)


_SUFFIXES = ("movie.mrcs", "even.mrc", "odd.mrc", "sum.mrc", "clean.mrc", "particles.txt")


def _guard(args: argparse.Namespace) -> None:
    """The one output guard: no output is the --map, and OUTDIR is a folder."""
    from ._common import check_folder, guard_outputs

    check_folder("OUTDIR", args.outdir)
    outputs = [
        ("output", args.outdir / f"{args.prefix}_{i:04d}_{suffix}")
        for i in range(args.n)
        for suffix in _SUFFIXES
    ]
    guard_outputs(args, outputs, [("--map", args.map)] if args.map is not None else [])


def run(args: argparse.Namespace) -> int:
    """Simulate ``args.n`` movies and write them."""
    from . import CLIError

    if len(args.size) not in (1, 2) or min(args.size) < 16:
        raise CLIError("--size takes one or two values of at least 16 pixels")
    if args.n < 1 or args.frames < 2:
        raise CLIError("--n must be >= 1 and --frames >= 2")
    shape = (args.size[0], args.size[-1])
    if args.map is not None and not args.map.is_file():
        raise CLIError(f"{args.map}: no such density map")
    _guard(args)
    args.outdir.mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        from ..simulate import simulate_movie

        movie = simulate_movie(
            shape,
            args.frames,
            args.dose,
            args.pixel_size,
            defocus_um=args.defocus,
            drift=args.drift,
            particle=args.map,
            seed=args.seed + i,
        )
        stem = args.outdir / f"{args.prefix}_{i:04d}"
        px = movie.pixel_size
        write_mrc(
            f"{stem}_movie.mrcs",
            movie.frames.astype(np.uint16),
            voxel_size=px,
            dtype=np.uint16,
            kind="movie",
            labels=["simulated movie frames (counts)"],
        )
        for suffix, data in (
            ("even", movie.even),
            ("odd", movie.odd),
            ("sum", movie.total),
            ("clean", movie.clean),
        ):
            write_mrc(f"{stem}_{suffix}.mrc", data, voxel_size=px, labels=[f"simulated {suffix}"])
        _write_particles(Path(f"{stem}_particles.txt"), movie.particle_xy)
        print(
            f"{stem}: {movie.params['n_particles']} particles, {args.frames} frames, "
            f"{movie.total.mean():.1f} e/px",
            file=sys.stderr,
        )
    return 0


def _write_particles(path: Path, xy: np.ndarray) -> None:
    import io

    from ..io.atomic import atomic_write_text

    buf = io.StringIO()
    np.savetxt(buf, xy, fmt="%.2f", header="x y (pixels)")
    atomic_write_text(path, buf.getvalue())
