"""What a training run reports: :class:`TrainStatus` per step, :class:`TrainResult` at the end.

Torch-free at import (the network in a result is only typed), so the napari shell can
read them without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Cancelled, InputError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["TrainResult", "TrainStatus", "TrainingCancelled", "TrainingDiverged"]


@dataclass
class TrainStatus:
    """What ``on_step`` receives after every training step.

    Attributes
    ----------
    step : int
        Steps done (including those before a resume).
    total_steps : int or None
        Planned total (estimated from the speed when training for ``minutes``).
    train_loss : float
        This step's loss.
    train_loss_avg : float
        Mean loss since the previous validation.
    val_loss : float or None
        Validation loss measured at this step, else None.
    best_val_loss : float or None
        Lowest validation loss so far.
    elapsed : float
        Seconds of training in this session.
    eta : float or None
        Estimated seconds left.
    steps_per_second : float
    lr : float
        Current learning rate.
    message : str or None
        Human-readable news (CPU warning, new best model, checkpoint written).

    """

    step: int
    total_steps: int | None
    train_loss: float
    train_loss_avg: float
    val_loss: float | None
    best_val_loss: float | None
    elapsed: float
    eta: float | None
    steps_per_second: float
    lr: float
    message: str | None = None


@dataclass
class TrainResult:
    """Outcome of a training run.

    Attributes
    ----------
    model : torch.nn.Module
        The kept network, CPU, eval mode: the final one unless its validation loss
        is more than 0.1 % above the lowest (then that one; see
        :func:`~napari_cryodenoise.training.validation.final_is_kept`); a cancelled
        run keeps the lowest so far; the last one without validation.
    best_step : int
    best_val_loss : float or None
    steps : int
        Steps done in total.
    elapsed : float
        Seconds of training in this session.
    history : list of dict
        One entry per step: ``step``, ``train_loss``, ``lr``, ``elapsed`` and,
        where validated, ``val_loss``.
    model_path, checkpoint_path, topaz_path : Path or None
        Files written.
    device : str
    cancelled : bool
    messages : list of str
    config : dict
        The settings used, with defaults filled in (:meth:`TrainConfig.to_dict`).

    """

    model: nn.Module
    best_step: int
    best_val_loss: float | None
    steps: int
    elapsed: float
    history: list[dict[str, float]] = field(default_factory=list)
    model_path: Path | None = None
    checkpoint_path: Path | None = None
    topaz_path: Path | None = None
    device: str = "cpu"
    cancelled: bool = False
    messages: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def val_history(self) -> list[tuple[int, float]]:
        """(step, validation loss) pairs."""
        return [(int(h["step"]), h["val_loss"]) for h in self.history if "val_loss" in h]


class TrainingCancelled(Cancelled):
    """Training stopped by ``cancel()``; ``result`` has the best model and the files written."""

    def __init__(self, message: str, result: TrainResult) -> None:
        super().__init__(message)
        self.result = result


class TrainingDiverged(InputError):
    """A training step's loss is not finite (NaN or infinite): the settings need changing."""
