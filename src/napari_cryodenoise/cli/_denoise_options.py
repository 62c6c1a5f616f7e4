"""The options ``cryodenoise denoise`` and ``cryodenoise watch`` share, defined once.

* :func:`add_image_options`: model, device, tiling, precision, binning, filters, output
  format and layout (everything that decides the denoised pixels);
* :func:`add_run_options`: ``--allow-pickle``, batch size, threads, the output STAR and
  its RELION settings;
* :func:`add_cluster_options`: ``--cluster`` / ``--scheduler`` (and ``--retries``,
  ``--planes-per-task``);
* :func:`settings_from_args`, :func:`star_plan`, :func:`out_star`: the options object
  and the output STAR's plan and path from the parsed arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..options import FORMATS, FileOptions
from ._common import add_allow_pickle
from ._types import (
    bin_arg,
    gaussian_sigma,
    int_range,
    lowpass_factor,
    nonnegative_int,
    positive_float,
)

if TYPE_CHECKING:
    from ..io.star_micrographs import OutputStarPlan

__all__ = [
    "add_cluster_options",
    "add_image_options",
    "add_run_options",
    "out_star",
    "settings_from_args",
    "star_plan",
]


def add_image_options(p: argparse.ArgumentParser, *, micrographs_only: bool = False) -> None:
    """Model, device, tiling, precision, binning, filters, output format and layout.

    ``micrographs_only`` (``watch``): the help leaves out 3D models and the layout
    options, which the command refuses with its own line.
    """
    p.add_argument(
        "-m",
        "--model",
        action="append",
        metavar="NAME|PATH",
        help="model alias or file; repeat to average several (default: unet)"
        if micrographs_only
        else "model alias or file; repeat to average several, or to give 2D models for "
        "micrographs and 3D ones for volumes (default: unet, unet-3d for volumes)",
    )
    p.add_argument(
        "-d",
        "--device",
        default="auto",
        help="auto, cpu, cuda or cuda:N (default auto); Topaz's -1 / N also work",
    )
    p.add_argument(
        "-s",
        "--patch-size",
        type=int_range(16, 32768, "pixels"),
        default=None,
        help="output pixels per tile side (default: from free memory)",
    )
    p.add_argument(
        "-p",
        "--padding",
        type=int_range(0, 4096, "pixels"),
        default=None,
        help="context pixels per tile side (default: the model's receptive "
        "radius, which makes tiling exact)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="compute precision (fp16 becomes bf16 on CPUs)",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--bin",
        dest="bin_factor",
        type=bin_arg,
        default=1.0,
        metavar="N|auto",
        help="Fourier-bin by N >= 1 (may be fractional) before denoising, keeping at least "
        "16 px per side; 'auto': from the header pixel size towards ~2.4 A/px, e.g. x4 at "
        "0.67 A/px (default 1: no binning)",
    )
    size.add_argument(
        "--pixel-size",
        type=positive_float,
        default=None,
        metavar="A",
        help="Fourier-bin to this pixel size in Angstrom (needs the header's)",
    )
    p.add_argument(
        "--restore-size",
        action="store_true",
        help="with --bin/--pixel-size, Fourier-pad the result back to the input grid",
    )
    p.add_argument(
        "--gaussian",
        type=gaussian_sigma,
        default=0.0,
        metavar="SIGMA",
        help="Gaussian pre-filter sigma in pixels, 0 to 100 (after normalisation)",
    )
    p.add_argument(
        "--lowpass",
        type=lowpass_factor,
        default=None,
        metavar="F",
        help="hard Fourier low-pass by this factor (1 to 1000; keeps frequencies up to "
        "1/(2F) cycles/px) before denoising",
    )
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="self-ensemble: average the network over the 8 rotations and mirrors of the "
        "image plane (z kept for volumes); a little cleaner, 8x the compute",
    )
    p.add_argument(
        "--normalize",
        action="store_true",
        help="write standardised values instead of the input's units",
    )
    p.add_argument(
        "--format",
        dest="fmt",
        choices=FORMATS,
        default="mrc",
        help="output format (default mrc, float32)",
    )
    if micrographs_only:  # refused by the command itself, with its own line
        p.add_argument("--stack", action="store_true", help=argparse.SUPPRESS)
        p.add_argument("--volume", action="store_true", help=argparse.SUPPRESS)
        return
    layout = p.add_mutually_exclusive_group()
    layout.add_argument(
        "--stack",
        action="store_true",
        help="treat 3D files as stacks of 2D images (slice by slice)",
    )
    layout.add_argument(
        "--volume",
        action="store_true",
        help="treat 3D files as volumes (3D models), e.g. ZYX TIFF tomograms",
    )


def add_run_options(p: argparse.ArgumentParser) -> None:
    """``--allow-pickle``, batch size, threads, ``--out-star`` and the RELION STAR settings."""
    add_allow_pickle(p)
    p.add_argument(
        "--batch-size",
        type=int_range(1, 4096, "tiles"),
        default=None,
        help="tiles per forward pass (default 1 on CPUs, from memory on GPUs)",
    )
    p.add_argument(
        "--threads",
        type=int_range(1, 4096, "threads"),
        default=None,
        help="CPU threads for torch (default: torch's; per worker with --cluster)",
    )
    p.add_argument(
        "--out-star",
        type=Path,
        default=None,
        metavar="PATH",
        help="RELION STAR list of the denoised files, done now or by an earlier run (default: "
        "OUTDIR/denoised_micrographs.star for MRC output, denoised_tomograms.star for "
        "tomograms.star inputs); never one of the inputs",
    )
    relion = p.add_argument_group(
        "RELION STAR output",
        "STAR inputs keep every block, column and value; files, folders and globs get a "
        "RELION 3.1+ STAR with an optics block (pixel size from the headers).",
    )
    relion.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="RELION project directory: STAR paths are relative to it (default: here)",
    )
    for option, unit, what in (
        ("--voltage", "KV", "acceleration voltage in kV"),
        ("--cs", "MM", "spherical aberration in mm"),
        ("--amplitude-contrast", "F", "amplitude contrast (e.g. 0.1)"),
    ):
        relion.add_argument(
            option, type=float, default=None, metavar=unit, help=f"{what}, for data_optics"
        )


def add_cluster_options(
    p: argparse.ArgumentParser, description: str, *, split: bool = True, retries: bool = True
) -> None:
    """``--cluster`` / ``--scheduler``, and ``--retries``, ``--planes-per-task`` if asked."""
    batch = p.add_argument_group("many files on a Dask cluster", description)
    where = batch.add_mutually_exclusive_group()
    where.add_argument(
        "--cluster",
        metavar="local[:N]",
        default=None,
        help="run on N local worker processes (default: one per GPU, else one per two CPU cores)",
    )
    where.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        default=None,
        help="attach to a running dask.distributed scheduler (address or "
        "scheduler JSON file), e.g. one started by dask-jobqueue on SLURM",
    )
    if not retries:
        return
    batch.add_argument(
        "--retries",
        type=nonnegative_int,
        default=2,
        metavar="N",
        help="extra attempts for a file that failed (default 2)",
    )
    if split:
        batch.add_argument(
            "--planes-per-task",
            type=nonnegative_int,
            default=None,
            metavar="N",
            help="split stacks and volumes into tasks of N planes, joined when all are done "
            "(default: only inputs over 2 GiB, in ~512 MiB groups; 0: never split)",
        )


def settings_from_args(args: argparse.Namespace) -> FileOptions:
    """The :class:`~napari_cryodenoise.options.FileOptions` of the parsed arguments."""
    device = str(args.device)
    if device.lstrip("-").isdigit():  # Topaz style: -1 = CPU, N = GPU N
        device = "cpu" if int(device) < 0 else f"cuda:{int(device)}"
    return FileOptions(
        device=device,
        precision=args.precision,
        patch_size=args.patch_size,
        padding=args.padding,
        batch_size=args.batch_size,
        bin_factor=args.bin_factor,
        pixel_size=args.pixel_size,
        restore_size=args.restore_size,
        gaussian=args.gaussian,
        lowpass=args.lowpass,
        normalize=args.normalize,
        ensemble=bool(getattr(args, "ensemble", False)),
        fmt=args.fmt,
        stack=args.stack,
        volume=args.volume,
        overwrite=args.overwrite,
        skip_existing=getattr(args, "skip_existing", False),
        threads=args.threads,
        explicit_model=bool(args.model),
    )


def star_plan(
    args: argparse.Namespace, settings: FileOptions, inputs: list[str] | None = None
) -> OutputStarPlan:
    """The STAR inputs and RELION settings of the output STAR (read before any work)."""
    from ..io.star_micrographs import OpticsValues, OutputStarPlan, star_inputs

    project = args.project_dir
    if project is not None and not Path(project).is_dir():
        raise InputError(f"--project-dir {project}: no such folder")
    optics = OpticsValues(args.voltage, args.cs, args.amplitude_contrast)
    return OutputStarPlan(
        tuple(star_inputs(args.inputs if inputs is None else inputs, project)),
        project,
        optics,
        rescaled=settings.binned and not settings.restore_size,
    )


def out_star(
    args: argparse.Namespace,
    outdir: Path,
    settings: FileOptions,
    plan: OutputStarPlan | None = None,
) -> Path | None:
    """``--out-star``, else ``OUTDIR/denoised_micrographs.star`` for MRC output, else None.

    ``OUTDIR/denoised_tomograms.star`` when the inputs are tomogram STARs (``plan``).
    """
    if args.out_star is not None:
        return Path(args.out_star)
    name = plan.default_name if plan is not None else "denoised_micrographs.star"
    return outdir / name if settings.fmt == "mrc" else None
