"""How long one training step takes with given settings, measured before training.

:func:`estimate_step_seconds` builds a real :class:`~.trainer.Trainer` on a few
pairs of synthetic random noise (the cost of a step does not depend on the pixels)
with a copy of the settings that writes nothing, runs ``warmup`` untimed steps and
``steps`` timed ones, and returns their median duration as a :class:`StepEstimate`.
A pretrained start whose weights are not on this machine is timed with the same
architecture and fresh weights (nothing is downloaded for an estimate).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, replace

import numpy as np

from ..errors import Cancelled, InputError
from ..types import CancelFn
from .config import TrainConfig, with_defaults

__all__ = ["StepEstimate", "estimate_step_seconds"]

#: Side of the synthetic images: at least this (2D / 3D), and twice the crop.
MIN_SIDE = {2: 256, 3: 64}
#: Number of synthetic pairs.
N_PAIRS = 2


@dataclass(frozen=True)
class StepEstimate:
    """The measured time per training step.

    Attributes
    ----------
    seconds : float
        Median duration of the timed steps.
    device : str
        Where the steps ran (``"cpu"``, ``"cuda:0"`` ...).
    crop : int
        Crop side in px.
    batch_size : int
        Crops per step.
    ndim : int
        2 (images) or 3 (volumes: cubic crops).

    """

    seconds: float
    device: str
    crop: int
    batch_size: int
    ndim: int = 2

    @property
    def crops(self) -> str:
        """``"4 x 128 px"`` (2D) or ``"8 x 48^3 px"`` (3D)."""
        side = f"{self.crop}^3" if self.ndim == 3 else f"{self.crop}"
        return f"{self.batch_size} x {side} px"

    def budget(self, minutes: float | None = None, steps: int | None = None) -> str:
        """``"~1850 steps in 8 min"`` (a time budget) or ``"1000 steps in ~4.3 min"``.

        Empty without a budget (or a step count of 1000 when neither is given, as
        training does).
        """
        per = max(self.seconds, 1e-9)
        if minutes:
            return f"~{int(minutes * 60 / per)} steps in {minutes:g} min"
        steps = steps or 1000
        return f"{steps} steps in ~{_duration(steps * per)}"

    def text(self, minutes: float | None = None, steps: int | None = None) -> str:
        """One sentence about the step time and the budget.

        E.g. ``"about 0.26 s per step of 4 x 128 px crops on cpu: ~1850 steps in 8 min"``.
        """
        return (
            f"about {_seconds(self.seconds)} per step of {self.crops} crops on "
            f"{self.device}: {self.budget(minutes, steps)}"
        )

    def line(self, minutes: float | None = None, steps: int | None = None) -> str:
        """Short form: ``"~0.26 s per step (cpu, 4 x 128 px) -> ~1850 steps in 8 min"``."""
        return (
            f"~{_seconds(self.seconds)} per step ({self.device}, {self.crops}) -> "
            f"{self.budget(minutes, steps)}"
        )


def _seconds(value: float) -> str:
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _synthetic_pairs(config: TrainConfig, ndim: int) -> list:
    """A few pairs of random noise, big enough for the crops (single images when masked)."""
    from .pair import ImagePair

    side = max(2 * int(config.crop), MIN_SIDE[ndim])
    rng = np.random.default_rng(config.seed)
    pairs = []
    for i in range(N_PAIRS):
        even = rng.standard_normal((side,) * ndim, dtype=np.float32)
        odd = None
        if config.mode != "masked":
            odd = rng.standard_normal((side,) * ndim, dtype=np.float32)
        pairs.append(ImagePair(even, odd, name=f"synthetic-{i}"))
    return pairs


def _timing_config(config: TrainConfig, ndim: int) -> tuple[TrainConfig, bool]:
    """The settings to time, and whether a pretrained start was replaced.

    Nothing is written, there is no validation, and a pretrained start whose weights
    are not here becomes its architecture with fresh weights.
    """
    from .network import resolve_device

    config = replace(
        config,
        output=None,
        checkpoint=None,
        checkpoint_every=None,
        resume=None,
        export_topaz=None,
        snapshot_every=None,
        val_fraction=0.0,
        steps=None,
        minutes=None,
    )
    device = resolve_device(config.device)
    config = with_defaults(config, ndim, device.type != "cpu")
    if config.init:
        from ..models.zoo import find_weights, resolve_alias

        try:
            entry = resolve_alias(config.init)
        except KeyError:
            return config, False  # a model file: loaded as training would
        if find_weights(config.init) is None:
            return replace(config, init=None, arch=entry.arch), True
    return config, False


def estimate_step_seconds(
    config: TrainConfig,
    ndim: int = 2,
    *,
    warmup: int = 1,
    steps: int = 3,
    cancel: CancelFn | None = None,
) -> StepEstimate:
    """Time the real training step with ``config`` on synthetic data; writes no file.

    Parameters
    ----------
    config : TrainConfig
        The settings of the planned run (not modified; its output, checkpoint,
        resume and export are ignored, validation is off, the seed is kept).
    ndim : int
        2 for images, 3 for volumes.
    warmup : int
        Untimed steps first (the first step pays for one-off set-up).
    steps : int
        Timed steps; the estimate is their median.
    cancel : callable, optional
        Polled before the set-up and between steps; True stops with
        :class:`~napari_cryodenoise.errors.Cancelled`.

    Returns
    -------
    StepEstimate

    Raises
    ------
    InputError
        Settings the trainer refuses (unknown names, a network that does not fit
        ``ndim`` ...), or a step that fails (out of memory).
    Cancelled
        When ``cancel()`` returns True.

    """
    import torch

    from .results import TrainingDiverged
    from .trainer import Trainer

    if ndim not in (2, 3):
        raise InputError(f"ndim must be 2 or 3, not {ndim}")

    def check() -> None:
        if cancel is not None and cancel():
            raise Cancelled("step-time estimate cancelled")

    check()
    timing, stand_in = _timing_config(config, ndim)
    pairs = _synthetic_pairs(timing, ndim)
    rng_state = torch.get_rng_state()  # the trainer seeds torch; leave the caller's state
    try:
        trainer = Trainer(pairs, timing)
        if stand_in:
            from ..models import to_fast_layout

            to_fast_layout(trainer.model)  # the layout a loaded pretrained network has
        times: list[float] = []
        for i in range(max(0, warmup) + max(1, steps)):
            check()
            t0 = time.perf_counter()
            try:
                trainer.step(elapsed=0.0)
            except TrainingDiverged:  # a diverged loss on random data took the same time
                pass
            except RuntimeError as err:  # e.g. out of memory on the device
                first = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
                raise InputError(
                    f"a training step with {timing.batch_size} x {timing.crop} px crops on "
                    f"{trainer.device} failed ({first}); lower the crop or the batch size"
                ) from None
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        seconds = float(statistics.median(times))
        device = str(trainer.device)
        crop, batch = int(trainer.sampler.crop), int(timing.batch_size)
    finally:
        torch.set_rng_state(rng_state)
    if trainer.device.type == "cuda":
        del trainer
        torch.cuda.empty_cache()
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"could not time a training step (got {seconds} s)")
    return StepEstimate(seconds, device, crop, batch, ndim)
