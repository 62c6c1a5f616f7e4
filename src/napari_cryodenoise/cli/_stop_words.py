"""The words of a stopped ``cryodenoise train``: a terminal's, or RELION's.

On a terminal the user stops training with Ctrl-C and goes on with ``--resume``.
Inside the ``cryodenoise-relion`` job the stop is RELION's Abort button (the job
turns ``RELION_JOB_ABORT_NOW`` into the same interrupt) and the way on is RELION's
Continue, which trains again: there, Ctrl-C and ``--resume`` mean nothing.
:func:`relion_job` switches to RELION's words while the job runs the training.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["relion_job", "stopped_line", "stopping_line"]

_inside_relion = [False]


@contextmanager
def relion_job() -> Iterator[None]:
    """While it lasts, a stopped training speaks of RELION's Abort and Continue."""
    before = _inside_relion[0]
    _inside_relion[0] = True
    try:
        yield
    finally:
        _inside_relion[0] = before


def stopping_line() -> str:
    """What the first interrupt prints: training stops after its current step."""
    if _inside_relion[0]:
        return "\njob aborted: training stops after this step"
    return "\nstopping after this step (writing a checkpoint); Ctrl-C again to abort"


def stopped_line(steps: int, checkpoint: Path | None, model: Path | None) -> str:
    """The last line of a stopped training: where it stopped and how to go on."""
    line = f"training stopped at step {steps}"
    if _inside_relion[0]:
        # Continue trains again (the job keeps only a finished training's model)
        return line + " (job aborted); Continue the job to train again"
    if checkpoint:
        line += f"; checkpoint {checkpoint} (continue with --resume {checkpoint} --steps N)"
    if model:
        line += f"; best model so far {model}"
    return line
