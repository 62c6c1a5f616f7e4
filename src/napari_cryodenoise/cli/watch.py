"""``cryodenoise watch``: denoise micrographs as they land in a folder during a collection.

Argument parsing and reporting only: the loop is
:func:`napari_cryodenoise.watch.run_watch`. The denoising options are those of
``cryodenoise denoise`` (:mod:`._denoise_options`), so each output is the one
``cryodenoise denoise`` would write for that file.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from ..errors import CryoDenoiseError
from ._denoise_options import (
    add_cluster_options,
    add_image_options,
    add_run_options,
    out_star,
    settings_from_args,
    star_plan,
)
from ._types import int_range, nonnegative_float, positive_float

__all__ = ["add_parser", "run"]

#: The trained model's file in the output folder (unless --train-output is given).
DEFAULT_TRAIN_OUTPUT = "watch_model.pt"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``cryodenoise watch``."""
    p = subparsers.add_parser(
        "watch",
        help="denoise micrographs as they arrive in a folder (during a collection)",
        description=(
            "Follow a folder during a data collection and denoise each micrograph once it "
            "is whole (MRC: complete by its header; other files: size stable for --settle "
            "seconds), in arrival order, exactly as `cryodenoise denoise` would. Keeps "
            "OUTDIR's STAR list current. Ctrl-C stops within seconds; the same command "
            "again does only what is not done."
        ),
    )
    p.add_argument("folder", metavar="INDIR", help="the folder micrographs arrive in")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    add_image_options(p, micrographs_only=True)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo complete outputs in OUTDIR that this watch did not write with these "
        "options (default: keep them)",
    )
    add_run_options(p)
    look = p.add_argument_group("watching")
    look.add_argument(
        "--pattern",
        default="*",
        metavar="GLOB",
        help="file names to take, e.g. '*_DW.mrc' (default: every MRC/TIFF image; even/odd "
        "half sums and hidden files are never taken)",
    )
    look.add_argument("--recursive", action="store_true", help="also watch sub-folders")
    look.add_argument(
        "--settle",
        type=nonnegative_float,
        default=5.0,
        metavar="S",
        help="seconds a non-MRC file's size must stay the same before it is taken "
        "(default 5); an MRC file is taken when its header's data is all there",
    )
    look.add_argument(
        "--poll",
        type=positive_float,
        default=2.0,
        metavar="S",
        help="look at the folder every S seconds (default 2), besides change events: "
        "network file systems (NFS, SMB, GPFS) deliver no events",
    )
    how = look.add_mutually_exclusive_group()
    how.add_argument(
        "--no-poll",
        action="store_true",
        help="rely on change events only (local disks); the folder is looked at when one "
        "arrives and while a file is settling",
    )
    how.add_argument(
        "--no-events", action="store_true", help="poll only, without watchdog's change events"
    )
    look.add_argument(
        "--stop-after-idle",
        type=positive_float,
        default=None,
        metavar="S",
        help="stop after S seconds with nothing arriving, settling, training or running",
    )
    look.add_argument(
        "--status-interval",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="seconds between status lines when stderr is not a terminal (default 30)",
    )
    train = p.add_argument_group(
        "on-the-fly training",
        "Train a Noise2Noise model on the even/odd half sums (X_EVN/X_ODD or X_even/X_odd "
        "beside X) of the first micrographs, in the background, with the trainer of "
        "`cryodenoise train`, then denoise with it. Until it is ready, -m (or the "
        "default model) is used.",
    )
    train.add_argument(
        "--train-first",
        type=int_range(1, 100000, "micrographs"),
        default=None,
        metavar="N",
        help="train on the first N micrographs that have even/odd sums",
    )
    train.add_argument(
        "--train-minutes",
        type=positive_float,
        default=None,
        metavar="M",
        help="training budget in minutes (default 5 unless --train-steps)",
    )
    train.add_argument(
        "--train-steps",
        type=int_range(1, 10**7, "steps"),
        default=None,
        metavar="N",
        help="training budget in steps",
    )
    train.add_argument(
        "--train-arch",
        default=None,
        metavar="NAME",
        help="network to train from scratch (default: fine-tune the pretrained unet), "
        "as `cryodenoise train --arch`",
    )
    train.add_argument(
        "--train-output",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"the trained model file (default OUTDIR/{DEFAULT_TRAIN_OUTPUT})",
    )
    train.add_argument(
        "--redo",
        action="store_true",
        help="once the model is trained, denoise the earlier micrographs again with it "
        "(after the new arrivals)",
    )
    add_cluster_options(
        p,
        "Files are submitted to the workers as they become whole; workers need the "
        "folders at the same paths (a shared file system).",
        retries=False,
    )
    p.set_defaults(func=run)


def _check(args: argparse.Namespace, folder: Path, outdir: Path) -> None:
    """Refusals before any work, each one line."""
    from . import CLIError

    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "no such folder"
        raise CLIError(f"INDIR {folder}: {what}")
    if outdir.exists() and os.path.samefile(outdir, folder):
        raise CLIError(f"-o {outdir} is the watched folder; give another output folder")
    training = (args.train_minutes, args.train_steps, args.train_arch, args.train_output)
    if args.train_first is None and (args.redo or any(v is not None for v in training)):
        raise CLIError("--redo and --train-* need --train-first N")
    if args.stack or args.volume:
        raise CLIError("watch denoises 2D micrographs; --stack/--volume are for denoise")


def _train_config(args: argparse.Namespace, outdir: Path, settings):  # noqa: ANN001, ANN202
    from ..training.config import TrainConfig

    if args.train_first is None:
        return None
    minutes = args.train_minutes
    if minutes is None and args.train_steps is None:
        minutes = 5.0
    output = args.train_output or outdir / DEFAULT_TRAIN_OUTPUT
    return TrainConfig(
        arch=args.train_arch,
        steps=args.train_steps,
        minutes=minutes,
        output=str(output),
        device=settings.device,
        threads=settings.threads,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``cryodenoise watch``; exit code 0, or 1 when any file failed."""
    from ..pipeline import DEFAULT_2D
    from ..training.config import default_checkpoint
    from ..watch import STATE_NAME, StatusLine, WatchConfig, run_watch
    from . import CLIError
    from ._common import check_folder, check_out_star, guard_outputs

    folder, outdir = Path(args.folder), Path(args.output)
    check_folder("-o", outdir)
    _check(args, folder, outdir)
    settings = settings_from_args(args)
    try:
        plan = star_plan(args, settings, inputs=[])
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    star = out_star(args, outdir, settings)
    names = tuple(args.model or [DEFAULT_2D])
    train = _train_config(args, outdir, settings)
    outputs: list[tuple[str, str | os.PathLike]] = [("the session record", outdir / STATE_NAME)]
    if star is not None:
        outputs.append(("--out-star", star))
    if train is not None:
        checkpoint = default_checkpoint(train)
        outputs += [("--train-output", train.output), ("its checkpoint", checkpoint)]
    models = [("model", m) for m in names if os.path.isfile(m)]
    guard_outputs(args, outputs, [("INDIR", folder), *models])
    check_out_star(args.out_star)
    from ..engine import load_models, resolve_device, set_threads

    set_threads(settings.threads)
    try:
        resolve_device(settings.device)
        for name in names:
            load_models(name)  # a bad name or file fails now, once
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    config = WatchConfig(
        folder=folder,
        outdir=outdir,
        models=names,
        settings=settings,
        pattern=args.pattern,
        recursive=args.recursive,
        settle=args.settle,
        poll=None if args.no_poll else args.poll,
        events=not args.no_events,
        stop_after_idle=args.stop_after_idle,
        out_star=star,
        star_plan=plan,
        overwrite=args.overwrite,
        cluster=args.cluster,
        scheduler=args.scheduler,
        train_first=args.train_first or 0,
        train=train,
        redo=args.redo,
    )
    line = StatusLine(interval=args.status_interval)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = None

    def show(s) -> None:  # noqa: ANN001
        nonlocal status
        status = s
        line.show(s)

    try:
        summary = run_watch(
            config, log=lambda text: line.message(f"cryodenoise watch: {text}"), show=show
        )
    except KeyboardInterrupt:
        if status is not None:
            line.close(status)
        raise
    except (CryoDenoiseError, ValueError) as err:
        raise CLIError(str(err)) from None
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is _interrupt:  # after an interrupt they stay ignored
                signal.signal(sig, handler)
    if status is not None:
        line.close(status)
    print(summary.format())
    return 1 if summary.failed else 0


def _interrupt(signum: int, frame: object) -> None:  # noqa: ARG001
    """Ctrl-C or SIGTERM stops the watch cleanly (no partial output).

    Further ones are ignored from then on, so that pressing Ctrl-C again does not cut
    the clean-up short (partial outputs removed, the record and the STAR list written).
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt
