"""``cryodenoise train``'s outputs: checked against its inputs, and not replaced unasked.

A model can be hours of training and its checkpoint the only way to continue it, so,
as ``denoise`` does with its outputs, ``train`` stops before any work when ``-o``, the
checkpoint or ``--export-topaz`` exist, unless ``--overwrite`` (replace them) or
``--resume`` (the resumed run goes on writing its model and checkpoint).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["check_train_outputs", "refuse_existing_outputs"]

#: What ``cryodenoise train`` calls each output (see :mod:`..training.existing`).
_LABELS = {"model": "-o", "topaz": "--export-topaz"}


def refuse_existing_outputs(args: argparse.Namespace) -> None:
    """Stop with one line when an output of ``cryodenoise train`` exists already.

    The rule is the training core's (:func:`~napari_cryodenoise.training.existing.
    existing_output`, also the Train widget's); ``--overwrite`` lifts it.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (``overwrite``, ``resume``, ``output``, ``checkpoint``,
        ``export_topaz``).

    Raises
    ------
    CLIError
        Naming the option, the existing file and the ways on.

    """
    from ..training.config import TrainConfig
    from ..training.existing import existing_output
    from . import CLIError

    if args.overwrite:
        return
    found = existing_output(
        TrainConfig(
            output=args.output,
            checkpoint=args.checkpoint,
            export_topaz=args.export_topaz,
            resume=args.resume,
        )
    )
    if found is None:
        return
    option = _LABELS.get(found.kind) or (
        "--checkpoint" if args.checkpoint else "the default --checkpoint"
    )
    ways = [f"choose another {option if option != 'the default --checkpoint' else '-o'}"]
    ways.append("add --overwrite to replace it")
    if found.checkpoint is not None:
        ways.append(f"--resume {found.checkpoint} --steps N to continue that run")
    raise CLIError(found.message(option, ways))


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
    refuse_existing_outputs(args)
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
