"""Whether a training run would replace an earlier run's files: one rule for every entry point.

A model can be hours of training and its checkpoint the only way to continue it, so
neither ``cryodenoise train`` nor the Train widget replaces the model, the checkpoint or
the Topaz export of an earlier run unasked. :func:`existing_output` is that rule (torch-free,
checked before any work); each entry point names the file as its user sees it (``-o`` /
"save model as") and says its own ways on, in the one line of
:meth:`ExistingOutput.message`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .config import TrainConfig, default_checkpoint

__all__ = ["ExistingOutput", "OutputKind", "existing_output", "train_outputs"]

#: The files a training run writes.
OutputKind = Literal["model", "checkpoint", "topaz"]


@dataclass(frozen=True)
class ExistingOutput:
    """An output of a training run that exists already.

    Attributes
    ----------
    kind : {"model", "checkpoint", "topaz"}
        Which output: the trained model, the resumable checkpoint, the Topaz export.
    path : pathlib.Path
        The file as given.
    checkpoint : pathlib.Path or None
        The run's checkpoint when it exists and the run does not resume it (that
        earlier run can be continued from it), else None.

    """

    kind: OutputKind
    path: Path
    checkpoint: Path | None = None

    def message(self, label: str, ways: Sequence[str]) -> str:
        """The one line every entry point refuses the run with.

        Parameters
        ----------
        label : str
            What the user calls this output (``"-o"``, ``"save model as"``).
        ways : sequence of str
            What the user can do instead (at least one).

        Returns
        -------
        str
            ``"LABEL PATH: already exists (an earlier run's?); nothing was written: A, B or C"``.

        """
        ways = list(ways)
        listed = ", ".join(ways[:-1]) + " or " + ways[-1] if len(ways) > 1 else ways[0]
        return (
            f"{label} {self.path}: already exists (an earlier run's?); nothing was written: "
            f"{listed}"
        )


def train_outputs(config: TrainConfig) -> list[tuple[OutputKind, Path]]:
    """The files a run of ``config`` writes: model, checkpoint and Topaz export, as given."""
    outputs: list[tuple[OutputKind, Path | None]] = [
        ("model", Path(config.output) if config.output else None),
        ("checkpoint", default_checkpoint(config)),
        ("topaz", Path(config.export_topaz) if config.export_topaz else None),
    ]
    return [(kind, path) for kind, path in outputs if path is not None]


def existing_output(config: TrainConfig) -> ExistingOutput | None:
    """The first output of ``config`` that exists already (a broken link counts), or None.

    A run that resumes a checkpoint (``config.resume`` is a file) goes on writing its
    model and that checkpoint: those two do not count.

    Parameters
    ----------
    config : TrainConfig
        Its ``output``, ``checkpoint`` (else the default beside the output),
        ``export_topaz`` and ``resume``.

    Returns
    -------
    ExistingOutput or None

    """
    from ..io.output_guard import same_file

    resume = config.resume if config.resume and os.path.isfile(config.resume) else None
    checkpoint = default_checkpoint(config)
    for kind, path in train_outputs(config):
        if not os.path.lexists(path):  # the path the trainer writes
            continue
        if resume and (kind == "model" or same_file(path, resume)):
            continue  # the resumed run's own model and checkpoint
        earlier = (
            checkpoint if checkpoint is not None and checkpoint.is_file() and not resume else None
        )
        return ExistingOutput(kind, path, earlier)
    return None
