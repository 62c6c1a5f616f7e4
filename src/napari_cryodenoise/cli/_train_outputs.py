"""``cryodenoise train``'s outputs: checked against its inputs, and not replaced unasked.

A model can be hours of training and its checkpoint the only way to continue it, so,
as ``denoise`` does with its outputs, ``train`` stops before any work when ``-o``, the
checkpoint or ``--export-topaz`` exist, unless ``--overwrite`` (replace them) or
``--resume`` (the resumed run goes on writing its model and checkpoint).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["check_train_outputs", "refuse_existing_outputs"]

#: Outputs that the existence check covers (``--save-pairs`` half sums are rewritten).
_CHECKED = ("-o", "--checkpoint", "the default --checkpoint", "--export-topaz")


def refuse_existing_outputs(
    args: argparse.Namespace,
    outputs: Sequence[tuple[str, str | os.PathLike]],
    checkpoint: Path | None,
) -> None:
    """Stop with one line when an output of ``cryodenoise train`` exists already.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (``overwrite``, ``resume``, ``output``).
    outputs : sequence of (str, path)
        The outputs as the output guard named them.
    checkpoint : Path or None
        The checkpoint this run writes.

    Raises
    ------
    CLIError
        Naming the option, the existing file and the ways on.

    """
    from ..io.output_guard import same_file
    from . import CLIError

    if args.overwrite:
        return
    resume = args.resume if args.resume and os.path.isfile(args.resume) else None
    for option, path in outputs:
        if option not in _CHECKED or path is None or not os.path.lexists(path):
            continue
        if resume and (option == "-o" or same_file(path, resume)):
            continue  # the resumed run's own model and checkpoint
        ways = [
            f"choose another {'-o' if option.endswith('default --checkpoint') else option}",
            "add --overwrite to replace it",
        ]
        if checkpoint is not None and os.path.isfile(checkpoint) and not resume:
            ways.append(f"--resume {checkpoint} --steps N to continue that run")
        raise CLIError(
            f"{option} {path}: already exists (an earlier run's?); nothing was written: "
            f"{', '.join(ways[:-1])} or {ways[-1]}"
        )


def _folder_files(items: list[str]) -> list[Path]:
    """The files named, with a folder standing for the files in it (for the output guard)."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file())
        else:
            found.append(path)
    return found


def check_train_outputs(args: argparse.Namespace) -> None:
    """The one output guard, before any work: no output is an input or another output.

    Also refuses outputs that exist already (:func:`refuse_existing_outputs`).
    """
    from ..io.output_guard import check_outputs
    from ._common import check_folder, guard_outputs

    sources = (args.movies or []) + (args.even or []) + (args.odd or []) + (args.single or [])
    sources += [args.pairs] if args.pairs else []
    inputs: list[tuple[str, str | os.PathLike]] = [("input", p) for p in _folder_files(sources)]
    if args.star:
        inputs.append(("--star", args.star))
        inputs += [("input", p) for p in _star_pair_files(args.star)]
    for option, value in (("--gain", args.gain), ("--init", args.init)):
        if value and os.path.exists(value):
            inputs.append((option, value))
    out = Path(args.output)
    # the trainer's own rule (torch-free): MODEL stem + .ckpt.pt
    from ..training.config import TrainConfig, default_checkpoint

    checkpoint = default_checkpoint(TrainConfig(output=out, checkpoint=args.checkpoint))
    label = "--checkpoint" if args.checkpoint else "the default --checkpoint"
    outputs: list[tuple[str, str | os.PathLike]] = [("-o", out), (label, checkpoint)]
    if args.export_topaz:
        outputs.append(("--export-topaz", args.export_topaz))
    if args.save_pairs and args.movies:
        check_folder("--save-pairs", args.save_pairs)
        for movie in args.movies:
            stem = Path(movie).stem
            for half in ("even", "odd"):
                outputs.append(("--save-pairs", Path(args.save_pairs) / f"{stem}_{half}.mrc"))
    guard_outputs(args, outputs, inputs)
    refuse_existing_outputs(args, outputs, checkpoint)
    if args.resume and os.path.exists(args.resume):
        # the checkpoint resumed from is rewritten as training goes on; nothing else may be
        others = [(what, path) for what, path in outputs if path != checkpoint]
        check_outputs(others, [("--resume", args.resume)])


def _star_pair_files(star: str) -> list[Path]:
    """The half sums a training STAR lists (none if it cannot be read yet: reported later)."""
    from ..errors import CryoDenoiseError
    from ..training.pair_sources import pair_files_from_star

    try:
        return [p for pair in pair_files_from_star(star) for p in pair]
    except (CryoDenoiseError, OSError):
        return []
