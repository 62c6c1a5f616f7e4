"""``cryodenoise denoise``: denoise micrographs, stacks and tomograms from the shell.

Argument parsing and reporting only: the per-file work is
:func:`napari_cryodenoise.pipeline.denoise_file`, the ``--cluster`` runs are
:func:`napari_cryodenoise.batch.run_batch`. ``DenoiseSettings``, ``FileResult``,
``denoise_file``, ``expand_inputs`` and ``output_path`` are re-exported from here for
older imports.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CryoDenoiseError, InputError
from ..options import FORMATS
from ..options import FileOptions as DenoiseSettings
from ..pipeline import DEFAULT_2D, FileResult, denoise_file, expand_inputs, output_path
from ._common import add_allow_pickle
from ._progress import FileBar
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
    "DenoiseSettings",
    "FileResult",
    "add_parser",
    "denoise_file",
    "expand_inputs",
    "output_path",
    "run",
]

# --------------------------------------------------------------------------- command line


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``cryodenoise denoise``."""
    p = subparsers.add_parser(
        "denoise",
        help="denoise micrographs, stacks and tomograms",
        description=(
            "Denoise MRC/TIFF micrographs (2D models), .mrcs stacks (each slice) and "
            "tomograms (.rec or other volumes, 3D models). Results are seamless: tiles "
            "reproduce whole-image inference exactly."
        ),
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="files, directories, glob patterns or RELION .star micrograph lists",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument(
        "-m",
        "--model",
        action="append",
        metavar="NAME|PATH",
        help="model alias or file; repeat to average several, or to give 2D models for "
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
    exist = p.add_mutually_exclusive_group()
    exist.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep complete existing outputs (an incomplete one is redone); without this "
        "or --overwrite, existing outputs stop the run before any work",
    )
    exist.add_argument("--overwrite", action="store_true", help="replace existing outputs")
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
        "OUTDIR/denoised_micrographs.star for MRC output); never one of the inputs",
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
    batch = p.add_argument_group(
        "many files on a Dask cluster",
        "One task per file (very large stacks and volumes: one per group of planes). Outputs "
        "are written atomically and complete outputs are skipped (unless --overwrite), so "
        "rerunning an interrupted batch resumes it.",
    )
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
    batch.add_argument(
        "--retries",
        type=nonnegative_int,
        default=2,
        metavar="N",
        help="extra attempts for a file that failed (default 2)",
    )
    batch.add_argument(
        "--planes-per-task",
        type=nonnegative_int,
        default=None,
        metavar="N",
        help="split stacks and volumes into tasks of N planes, joined when all are done "
        "(default: only inputs over 2 GiB, in ~512 MiB groups; 0: never split)",
    )
    p.set_defaults(func=run)


def _settings_from_args(args: argparse.Namespace) -> DenoiseSettings:
    device = str(args.device)
    if device.lstrip("-").isdigit():  # Topaz style: -1 = CPU, N = GPU N
        device = "cpu" if int(device) < 0 else f"cuda:{int(device)}"
    return DenoiseSettings(
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
        fmt=args.fmt,
        stack=args.stack,
        volume=args.volume,
        overwrite=args.overwrite,
        skip_existing=args.skip_existing,
        threads=args.threads,
        explicit_model=bool(args.model),
    )


def run(args: argparse.Namespace) -> int:
    """Run ``cryodenoise denoise``; exit code 0, or 1 when any file failed."""
    from ..batch import remove_partials
    from . import CLIError
    from ._denoise_checks import guard_denoise, refuse_existing

    t0 = time.perf_counter()
    settings = _settings_from_args(args)
    clustered = bool(args.cluster or args.scheduler)
    if args.planes_per_task is not None and not clustered:
        raise CLIError(
            "--planes-per-task splits work over workers: use it with --cluster/--scheduler"
        )
    lists: list[Path] = []
    try:
        star_plan = _star_plan(args, settings)
        inputs = expand_inputs(args.inputs, project_dir=args.project_dir, lists=lists)
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    if not inputs:
        raise CLIError("no input files found")
    outdir = Path(args.output)
    star = _out_star(args, outdir, settings)
    names = args.model or [DEFAULT_2D]
    # the one output guard, before any work: no image is read, no model loaded, nothing written
    pairs = guard_denoise(args, inputs, lists, outdir, settings.fmt, star, names)
    if not clustered:
        refuse_existing(pairs, settings)
    from ..engine import load_models, resolve_device, set_threads

    set_threads(settings.threads)
    try:
        resolve_device(settings.device)
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    try:
        if clustered:
            load_models(names)  # a bad name or file fails now, once
            return _run_on_cluster(args, inputs, outdir, names, settings, star_plan)
        # 2D models for micrographs and stacks, 3D ones for volumes: -m 2d.pt -m 3d.pt
        loaded = [load_models(name)[0] for name in names]
        models_2d = [m for m in loaded if int(m.ndim) == 2]
        models_3d = [m for m in loaded if int(m.ndim) == 3] or None
        models = models_2d or models_3d
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    interactive = sys.stderr.isatty()
    counts = {"done": 0, "skipped": 0, "failed": 0}
    finished: list[tuple[Path, Path, bool]] = []
    every_output = [out for _, out in pairs] + ([star] if star is not None else [])
    remove_partials(every_output)  # leftovers of an interrupted run
    for i, (path, out_path) in enumerate(pairs, 1):
        label = f"[{i}/{len(inputs)}] {path.name}"
        bar = FileBar(label, interactive)
        try:
            res = denoise_file(path, out_path, models, settings, models_3d=models_3d, progress=bar)
        finally:
            bar.close()
        counts[res.status] += 1
        finished.append((path, res.output, res.status != "failed"))
        if res.status == "failed":
            print(f"cryodenoise denoise: error: {res.message}", file=sys.stderr)
        elif res.status == "done":
            note = f"; {res.message}" if res.message else ""
            print(f"{label} -> {res.output} ({res.seconds:.1f} s{note})", file=sys.stderr)
    if star is not None:
        # every complete output of this run, done now or by an earlier one (--skip-existing)
        _write_star(star, finished, star_plan)
    elapsed = time.perf_counter() - t0
    print(
        f"denoised {counts['done']}, skipped {counts['skipped']}, failed {counts['failed']} "
        f"in {elapsed:.1f} s"
    )
    return 1 if counts["failed"] else 0


def _star_plan(args: argparse.Namespace, settings: DenoiseSettings) -> OutputStarPlan:
    """The STAR inputs and RELION settings of the output STAR (read before any work)."""
    from ..io.star_micrographs import OpticsValues, OutputStarPlan, star_inputs

    project = args.project_dir
    if project is not None and not Path(project).is_dir():
        raise InputError(f"--project-dir {project}: no such folder")
    optics = OpticsValues(args.voltage, args.cs, args.amplitude_contrast)
    return OutputStarPlan(
        tuple(star_inputs(args.inputs, project)),
        project,
        optics,
        rescaled=settings.binned and not settings.restore_size,
    )


def _write_star(star: Path, finished: list[tuple[Path, Path, bool]], plan: OutputStarPlan) -> None:
    """List every output of the run (done now or before), in input order."""
    from ..batch import output_is_complete, write_output_star
    from ..io.star_micrographs import listed_outputs

    listed = listed_outputs(finished, output_is_complete)
    if listed:
        write_output_star(
            star,
            [o for _, o in listed],
            inputs=[i for i, _ in listed],
            plan=plan,
            log=lambda text: print(f"cryodenoise denoise: note: {text}", file=sys.stderr),
        )


def _out_star(args: argparse.Namespace, outdir: Path, settings: DenoiseSettings) -> Path | None:
    if args.out_star is not None:
        return Path(args.out_star)
    return outdir / "denoised_micrographs.star" if settings.fmt == "mrc" else None


def _run_on_cluster(
    args: argparse.Namespace,
    inputs: list[Path],
    outdir: Path,
    names: list[str],
    settings: DenoiseSettings,
    star_plan: OutputStarPlan | None = None,
) -> int:
    """``--cluster``/``--scheduler``: Dask tasks per file or planes group, resumable."""
    from ..batch import run_batch
    from . import CLIError
    from ._progress import StderrProgress

    items = [(path, output_path(path, outdir, settings.fmt)) for path in inputs]
    bar = StderrProgress("denoise")
    try:
        summary = run_batch(
            items,
            names,
            settings,
            cluster=args.cluster,
            scheduler=args.scheduler,
            retries=args.retries,
            overwrite=settings.overwrite,
            threads_per_worker=settings.threads,
            out_star=_out_star(args, outdir, settings),
            star_plan=star_plan,
            progress=bar,
            log=bar.message,
            planes_per_task=args.planes_per_task,
        )
    except (CryoDenoiseError, ValueError) as err:
        raise CLIError(str(err)) from None
    print(summary.format())
    return 0 if summary.ok else 1
