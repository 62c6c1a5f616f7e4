"""``cryodenoise train``: train or fine-tune a denoiser on your own data.

Three kinds of input:

* ``--movies``: movie stacks (MRC, TIFF, EER); each gives an even/odd pair (optionally a frame
  range, a gain reference and global drift correction);
* ``--even`` / ``--odd``: ready-made half sums (files in the same order, or
  two folders matched by file name, also ``X_EVN``/``X_ODD``, ``X_even``/``X_odd``);
* ``--pairs``: one folder of MotionCor2 ``-SplitSum 1`` halves (``X_EVN``/``X_ODD``);
* ``--star``: a RELION STAR with ``rlnMicrographNameEven``/``rlnMicrographNameOdd``;
* ``--single``: single exposures, trained with blind-spot masking.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from ..errors import CryoDenoiseError
from ..io.eer import DEFAULT_EER_GROUPING
from ._common import add_allow_pickle, ignore_further_interrupts
from ._stop_words import stopped_line, stopping_line
from ._train_outputs import check_train_outputs
from ._types import fraction, frame_groups, open_fraction, positive_float, positive_int

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``cryodenoise train``."""
    p = subparsers.add_parser(
        "train",
        help="train or fine-tune a denoiser (Noise2Noise on movies/halves, or blind-spot)",
        description=(
            "Train a denoising network on your own data. Noise2Noise needs two independent "
            "noisy images of each field: the even- and odd-frame sums of a movie (--movies) or "
            "ready-made halves (--even/--odd). Single exposures train with blind-spot masking "
            "(--single). The trained model is written to -o and loads with "
            "`cryodenoise denoise --model PATH`."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--movies",
        nargs="+",
        metavar="MOVIE",
        help="movie stacks (.mrcs, .mrc with frames, .tif, .eer)",
    )
    src.add_argument(
        "--even",
        nargs="+",
        metavar="FILE",
        help="even-frame half sums (files, or one folder matched by name with --odd)",
    )
    src.add_argument(
        "--pairs",
        metavar="DIR",
        help="a folder of half sums named X_EVN/X_ODD (MotionCor2/3 -SplitSum 1) or X_even/X_odd",
    )
    src.add_argument(
        "--star",
        metavar="STAR",
        help="RELION STAR with rlnMicrographNameEven/rlnMicrographNameOdd (RELION 5 motion "
        "correction) or rlnTomoReconstructedTomogramHalf1/Half2; with only rlnMicrographName, "
        "the X_EVN/X_ODD files beside each micrograph",
    )
    src.add_argument(
        "--single",
        nargs="+",
        metavar="FILE",
        help="single micrographs/tomograms: blind-spot (Noise2Self-style) training",
    )
    p.add_argument("--odd", nargs="+", metavar="FILE", help="odd-frame half sums (with --even)")
    p.add_argument(
        "--frames",
        metavar="A:B",
        default=None,
        help="frame range of each movie, 0-based, B exclusive (e.g. 2:40); EER: of fractions",
    )
    p.add_argument(
        "--eer-grouping",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"EER movies: raw frames summed per fraction (default {DEFAULT_EER_GROUPING})",
    )
    p.add_argument(
        "--align",
        action="store_true",
        help="correct global drift (frame cross-correlation) before summing halves",
    )
    p.add_argument("--gain", metavar="FILE", help="gain reference multiplied into every frame")
    p.add_argument(
        "--save-pairs",
        metavar="DIR",
        help="write the even/odd half sums of --movies there (reuse with --even/--odd)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MODEL_PATH",
        help="where to write the trained model (native format, e.g. my_model.pt)",
    )
    p.add_argument(
        "--arch",
        default=None,
        help="train this architecture from scratch: unet-fast (small, fast on CPUs), "
        "unet-fast-3d, unet, unet-small, unet-v0.2.1, unet-3d, fcnn, affine",
    )
    p.add_argument(
        "--init",
        metavar="NAME|PATH",
        default=None,
        help="fine-tune a pretrained model (alias such as unet, unet-3d, or a model "
        "file); the default without --arch: unet (2D) or unet-3d (3D)",
    )
    budget = p.add_argument_group("how long")
    budget.add_argument(
        "--minutes", type=positive_float, default=None, help="train for this many minutes"
    )
    budget.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="train until this total step count (default 1000 without --minutes)",
    )
    p.add_argument(
        "-d",
        "--device",
        default="auto",
        help="auto (GPU when present), cpu, cuda, cuda:N, mps; -1 = cpu (Topaz style)",
    )
    p.add_argument(
        "--crop",
        type=positive_int,
        default=None,
        help="crop size in px (default 2D: 192 on CPU, 256 on GPU; 3D: 48 / 96)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="crops per step (default 4 on CPU, 8 on GPU)",
    )
    p.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="peak learning rate (default 1e-4 fine-tuning, 1e-3 from scratch)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default=None,
        help="training arithmetic; auto (default): bf16 where the CPU/GPU has it natively "
        "(about 2x the steps), fp32 weights kept",
    )
    p.add_argument(
        "--pairing",
        choices=("auto", "fixed", "random"),
        default=None,
        help="with --movies: a fresh random partition of the frames into two halves for "
        "every crop (random; auto = random where frames are kept) or the even/odd sums",
    )
    p.add_argument(
        "--input-share",
        type=open_fraction,
        default=None,
        metavar="S",
        help="with random pairing: share of the frames summed into the network's input "
        "(the target gets the rest; default 0.625 = 5 of 8 frame groups, 0.5 = halves)",
    )
    p.add_argument(
        "--frame-groups",
        type=frame_groups,
        default=None,
        metavar="G",
        help="with --movies: frames kept in G interleaved sums for random pairing "
        "(default 8, at most the frame count, rounded down to even; 0 = even/odd only, "
        "less memory)",
    )
    p.add_argument(
        "--ema",
        type=fraction,
        default=None,
        metavar="DECAY",
        help="exponential moving average of the weights (0 = off)",
    )
    p.add_argument(
        "--crop-start",
        type=positive_int,
        default=None,
        metavar="PX",
        help="grow crops from PX to --crop over the run",
    )
    p.add_argument(
        "--optimizer",
        choices=("adam", "adamw", "adagrad", "sgd"),
        default=None,
        help="default adam (with --resume: the checkpoint's)",
    )
    p.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine")
    p.add_argument(
        "--loss",
        choices=("l2", "l1"),
        default=None,
        help="default l2 (with --resume: the checkpoint's)",
    )
    p.add_argument(
        "--val-fraction",
        type=fraction,
        default=0.1,
        help="share held out for validation (0 = none)",
    )
    p.add_argument("--val-every", type=positive_int, default=100, help="validate every N steps")
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        metavar="N",
        help="write a resumable checkpoint every N steps (always at the end)",
    )
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        default=None,
        help="checkpoint file (default: MODEL_PATH with .ckpt.pt)",
    )
    p.add_argument("--resume", metavar="CKPT", default=None, help="continue from a checkpoint")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing model, checkpoint or --export-topaz file (without it, and "
        "without --resume, an existing one stops the run before any work)",
    )
    p.add_argument(
        "--export-topaz",
        metavar="PATH",
        default=None,
        help="also write the trained model as a Topaz state dict (.sav)",
    )
    add_allow_pickle(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    p.add_argument("--quiet", action="store_true", help="only print the summary")
    p.add_argument(
        "--estimate",
        action="store_true",
        help="time a few training steps with these settings (on synthetic data), print the "
        "time per step and the steps the budget allows, and exit: no training, nothing written",
    )
    p.set_defaults(func=run)


def _load_pairs(args: argparse.Namespace):
    from ..training import pairs_from_files, pairs_from_movies, read_single_images
    from . import CLIError

    if args.movies:
        if args.odd:
            raise CLIError("--odd goes with --even, not with --movies")
        return pairs_from_movies(
            args.movies,
            frames=args.frames,
            align=args.align,
            gain=args.gain,
            eer_grouping=args.eer_grouping or DEFAULT_EER_GROUPING,
            save_dir=args.save_pairs,
            **({} if args.frame_groups is None else {"frame_groups": args.frame_groups}),
        ), [Path(m) for m in args.movies] + ([Path(args.gain)] if args.gain else [])
    if args.frames or args.align or args.gain or args.save_pairs or args.eer_grouping:
        raise CLIError("--frames, --align, --gain, --eer-grouping and --save-pairs need --movies")
    if args.frame_groups is not None:
        raise CLIError("--frame-groups needs --movies (half sums have no frames to regroup)")
    if args.star or args.pairs:
        return _load_half_sources(args)
    if args.even:
        if not args.odd:
            raise CLIError("--even needs --odd (the other half of each pair)")
        return pairs_from_files(args.even, args.odd), [Path(x) for x in args.even + args.odd]
    if args.odd:
        raise CLIError("--odd goes with --even")
    return read_single_images(args.single), [Path(x) for x in args.single]


def _load_half_sources(args: argparse.Namespace):
    from ..training.pair_sources import (
        load_file_pairs,
        pair_files_from_star,
        pairs_from_pair_folder,
    )
    from . import CLIError

    if args.odd:
        raise CLIError("--odd goes with --even")
    if args.star:
        files = pair_files_from_star(args.star)
        return load_file_pairs(files), [Path(args.star)] + [p for pair in files for p in pair]
    pairs, unpaired = pairs_from_pair_folder(args.pairs)
    if unpaired and not args.quiet:
        print(
            f"{len(unpaired)} half sums without their other half are not used "
            f"(e.g. {unpaired[0]})",
            file=sys.stderr,
        )
    return pairs, [Path(args.pairs)]


def _print_estimate(config, ndim: int) -> int:
    """``--estimate``: the measured time per step and what the budget allows."""
    from ..training import estimate_step_seconds
    from . import CLIError

    try:
        estimate = estimate_step_seconds(config, ndim)
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    print(estimate.text(config.minutes, config.steps))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``cryodenoise train``; exit code 0 (or 130 when interrupted)."""
    from . import CLIError

    device = str(args.device)
    if device.lstrip("-").isdigit():
        device = "cpu" if int(device) < 0 else f"cuda:{int(device)}"
    if args.estimate:
        args.save_pairs = None  # nothing is written
    else:
        check_train_outputs(args)  # before any work (and before importing torch)
    from ..training import TrainConfig, TrainingCancelled, train

    t0 = time.perf_counter()
    try:
        pairs, _ = _load_pairs(args)
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    if not args.quiet:
        kind = "images" if args.single else "pairs"
        shape = " x ".join(str(s) for s in pairs[0].shape[::-1])
        print(
            f"{len(pairs)} training {kind} ({shape} px) ready in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
    config = TrainConfig(
        arch=args.arch,
        init=args.init,
        mode="masked" if args.single else "noise2noise",
        steps=args.steps,
        minutes=args.minutes,
        crop=args.crop,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        loss=args.loss,
        val_fraction=args.val_fraction,
        val_every=args.val_every,
        device=device,
        threads=args.threads,
        seed=args.seed,
        output=args.output,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        export_topaz=args.export_topaz,
        **{
            k: v
            for k, v in (
                ("precision", args.precision),
                ("pairing", args.pairing),
                ("input_share", args.input_share),
                ("ema", args.ema),
                ("crop_start", args.crop_start),
            )
            if v is not None
        },
    )
    if args.estimate:
        return _print_estimate(config, pairs[0].ndim)
    last_print = [0.0]

    def on_step(status) -> None:
        if args.quiet:
            return
        if status.message:
            for line in status.message.splitlines():
                print(f"  {line}", file=sys.stderr)
        now = time.perf_counter()
        if status.val_loss is not None or now - last_print[0] > 10:
            last_print[0] = now
            val = f"  val {status.val_loss:.5f}" if status.val_loss is not None else ""
            eta = f"  eta {status.eta / 60:.1f} min" if status.eta is not None else ""
            total = f"/{status.total_steps}" if status.total_steps else ""
            print(
                f"step {status.step}{total}  loss {status.train_loss_avg:.5f}{val}  "
                f"{status.steps_per_second:.2f} steps/s{eta}",
                file=sys.stderr,
            )

    stop = [False]

    def on_interrupt(signum, frame) -> None:  # first Ctrl-C: checkpoint and stop
        if stop[0]:
            raise KeyboardInterrupt
        stop[0] = True
        print(stopping_line(), file=sys.stderr)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = train(pairs, config, on_step=on_step, cancel=lambda: stop[0])
    except TrainingCancelled as err:
        ignore_further_interrupts()  # not the previous handler: the run is ending
        previous = None
        res = err.result
        print(stopped_line(res.steps, res.checkpoint_path, res.model_path), file=sys.stderr)
        return 130
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    best = f"{result.best_val_loss:.5f}" if result.best_val_loss is not None else "n/a"
    print(
        f"trained {result.steps} steps in {result.elapsed / 60:.1f} min on {result.device}; "
        f"kept the network of step {result.best_step} (validation loss {best})"
    )
    print(f"model: {result.model_path}")
    if result.checkpoint_path:
        print(f"checkpoint: {result.checkpoint_path}")
    if result.topaz_path:
        print(f"topaz state dict: {result.topaz_path}")
    return 0
