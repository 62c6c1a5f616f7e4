"""What a watch is asked to do (:class:`WatchConfig`) and what it did (:class:`WatchSummary`).

Also the names of the model an output was made with, for the status line, the session
record and the MRC header labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..options import FileOptions
from ..training.config import TrainConfig

__all__ = ["EARLIER", "WatchConfig", "WatchSummary", "model_label", "model_labels"]

#: The model of an output kept in OUTDIR that this watch did not write with its options.
EARLIER = "earlier"


@dataclass(frozen=True)
class WatchConfig:
    """Everything a watch needs (plain values).

    Attributes
    ----------
    folder, outdir : Path
        The watched folder and the output folder.
    models : tuple of str
        Model aliases or files, as ``cryodenoise denoise -m``.
    settings : FileOptions
        The denoising options (identical outputs to ``cryodenoise denoise``).
    pattern, recursive, settle : see :class:`~.scanner.Scanner`.
    poll : float or None
        Seconds between looks at the folder; None: only on change events.
    events : bool
        Use watchdog's change events (falls back to polling when they are unavailable).
    stop_after_idle : float or None
        Stop after this many seconds with nothing arriving, settling or running.
    out_star : Path or None
        The RELION STAR list of every output so far.
    star_plan : OutputStarPlan or None
    overwrite : bool
        Redo complete outputs this watch did not write with these options.
    cluster, scheduler : str or None
        Dask: ``local[:N]`` or a scheduler address.
    train_first : int
        Train on the first this many micrographs with even/odd sums (0: no training).
    train : TrainConfig or None
        The training settings (``output``: the model file).
    redo : bool
        Denoise the earlier outputs again once the trained model is there.

    """

    folder: Path
    outdir: Path
    models: tuple[str, ...] = ("unet",)
    settings: FileOptions = field(default_factory=FileOptions)
    pattern: str = "*"
    recursive: bool = False
    settle: float = 5.0
    poll: float | None = 2.0
    events: bool = True
    stop_after_idle: float | None = None
    out_star: Path | None = None
    star_plan: Any = None
    overwrite: bool = False
    cluster: str | None = None
    scheduler: str | None = None
    train_first: int = 0
    train: TrainConfig | None = None
    redo: bool = False


@dataclass
class WatchSummary:
    """What a watch did: counts, the time each output was finished, and how it ended."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    redone: int = 0
    not_micrographs: int = 0
    elapsed: float = 0.0
    finish_times: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    trained: str | None = None
    reason: str = ""

    def format(self) -> str:
        """One line for the end of the run."""
        text = (
            f"denoised {self.done}, kept {self.skipped} earlier, failed {self.failed}"
            + (f", redone {self.redone}" if self.redone else "")
            + (f", skipped {self.not_micrographs} movies/stacks" if self.not_micrographs else "")
            + f" in {self.elapsed:.1f} s"
        )
        return text + (f" ({self.reason})" if self.reason else "")


def model_label(specs: tuple[str, ...], trained: bool) -> str:
    """Short name of a model list for the status line and the session record."""
    names = "+".join(Path(s).name if os.sep in s or s.endswith(".pt") else s for s in specs)
    return f"{names}(trained)" if trained else names


def model_labels(specs: tuple[str, ...], trained_on: int | None) -> list[str]:
    """MRC header labels naming the model an output was made with."""
    from .. import __version__
    from ..provenance import pack_labels

    short = model_label(specs, False)
    groups: list[list[tuple[str, Any]]] = [[("model", short)]]
    if trained_on is not None:
        groups[0] += [("trained_on_the_fly", True), ("pairs", trained_on)]
    full = ",".join(specs)
    if full != short:
        groups.append([("model_file", full)])
    return [f"napari-cryodenoise {__version__} watch", *pack_labels(groups, max_lines=6)]
