"""``cryodenoise train``: an earlier run's model or checkpoint is not replaced unasked.

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

__all__ = ["refuse_existing_outputs"]

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
