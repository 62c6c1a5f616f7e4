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

from ..errors import CryoDenoiseError
from ..options import FileOptions as DenoiseSettings
from ..pipeline import DEFAULT_2D, FileResult, denoise_file, expand_inputs, output_path
from . import _denoise_options as _opts
from ._denoise_options import (
    add_cluster_options,
    add_image_options,
    add_run_options,
    out_star,
    settings_from_args,
)
from ._progress import FileBar

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
        help="files, directories, glob patterns or RELION .star micrograph lists "
        "(or RELION 5 tomograms.star)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    add_image_options(p)
    exist = p.add_mutually_exclusive_group()
    exist.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep complete existing outputs (an incomplete one is redone); without this "
        "or --overwrite, existing outputs stop the run before any work",
    )
    exist.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_run_options(p)
    add_cluster_options(
        p,
        "One task per file (very large stacks and volumes: one per group of planes). Outputs "
        "are written atomically and complete outputs are skipped (unless --overwrite), so "
        "rerunning an interrupted batch resumes it.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``cryodenoise denoise``; exit code 0, or 1 when any file failed."""
    from ..batch import remove_partials
    from . import CLIError
    from ._denoise_checks import guard_denoise, refuse_existing

    t0 = time.perf_counter()
    settings = settings_from_args(args)
    clustered = bool(args.cluster or args.scheduler)
    if args.planes_per_task is not None and not clustered:
        raise CLIError(
            "--planes-per-task splits work over workers: use it with --cluster/--scheduler"
        )
    lists: list[Path] = []
    try:
        star_plan = _opts.star_plan(args, settings)
        inputs = expand_inputs(args.inputs, project_dir=args.project_dir, lists=lists)
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    if not inputs:
        raise CLIError("no input files found")
    outdir = Path(args.output)
    star = out_star(args, outdir, settings, star_plan)
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
            loaded = [load_models(name)[0] for name in names]  # a bad name fails now, once
            if len({int(m.ndim) for m in loaded}) > 1:
                raise CLIError(
                    "-m: --cluster/--scheduler runs take only 2D or only 3D models; denoise "
                    "micrographs (2D models) and volumes (3D models) in separate runs"
                )
            load_models(names)
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
            out_star=out_star(args, outdir, settings, star_plan),
            star_plan=star_plan,
            progress=bar,
            log=bar.message,
            planes_per_task=args.planes_per_task,
        )
    except (CryoDenoiseError, ValueError) as err:
        raise CLIError(str(err)) from None
    print(summary.format())
    return 0 if summary.ok else 1
