"""Training denoisers: Noise2Noise on even/odd pairs, or blind-spot on single images.

The one entry point is :func:`train_noise2noise` (and :func:`train_masked`
for single exposures). It is used by the ``cryodenoise train`` command and by
the napari training widget, which runs it in a worker thread:

* ``on_step(status)`` is called after every step with a :class:`TrainStatus`
  (step, losses, seconds, ETA, messages) for a live loss plot;
* ``on_snapshot(model)`` receives, every ``config.snapshot_every`` steps, an
  independent CPU copy of the current network in eval mode, safe to run in
  another thread for a preview;
* ``progress(done, total)`` and ``cancel()`` follow the package's
  conventions. Cancelling writes a checkpoint (if a path is known), keeps the
  best model and raises :class:`TrainingCancelled` carrying the
  :class:`TrainResult`.

The loop itself is :class:`~napari_cryodenoise.training.trainer.Trainer`; the settings
are in :mod:`.config`, the outcome types in :mod:`.results`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from torch import nn

from ..errors import InputError
from .checkpoints import export_topaz
from .config import TOPAZ_DEFAULTS, TrainConfig
from .config import default_checkpoint as _default_checkpoint  # noqa: F401 - old private path
from .pair import ImagePair, PairSource
from .results import TrainingCancelled, TrainResult, TrainStatus
from .trainer import Trainer
from .validation import validation_loss

__all__ = [
    "TOPAZ_DEFAULTS",
    "TrainConfig",
    "TrainResult",
    "TrainStatus",
    "TrainingCancelled",
    "export_topaz",
    "train",
    "train_masked",
    "train_noise2noise",
    "validation_loss",
]


def train_noise2noise(
    pairs: PairSource,
    config: TrainConfig | None = None,
    *,
    val_pairs: PairSource | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    on_step: Callable[[TrainStatus], None] | None = None,
    on_snapshot: Callable[[nn.Module], None] | None = None,
) -> TrainResult:
    """Train (or fine-tune) a denoiser with Noise2Noise on even/odd pairs.

    Parameters
    ----------
    pairs : sequence of ImagePair
        Training pairs (2D images or 3D volumes), e.g. from
        :func:`~napari_cryodenoise.training.pairs.pairs_from_movies`.
    config : TrainConfig, optional
        Settings; defaults throughout when None.
    val_pairs : sequence of ImagePair, optional
        Explicit validation pairs (else ``config.val_fraction`` of ``pairs``).
    progress : callable, optional
        ``progress(step, total_steps)``.
    cancel : callable, optional
        Returns True to stop: a checkpoint is written and
        :class:`TrainingCancelled` raised (its ``result`` holds the best model).
    on_step : callable, optional
        Receives a :class:`TrainStatus` after every step.
    on_snapshot : callable, optional
        Receives a CPU copy of the current network (eval mode) every
        ``config.snapshot_every`` steps.

    Returns
    -------
    TrainResult

    """
    config = config or TrainConfig()
    if config.mode != "noise2noise":
        config = TrainConfig.from_dict({**config.to_dict(), "mode": "noise2noise"})
    if any(p.odd is None for p in pairs):
        raise InputError("Noise2Noise needs even/odd pairs; use train_masked for single images")
    return Trainer(
        pairs,
        config,
        val_pairs=val_pairs,
        progress=progress,
        cancel=cancel,
        on_step=on_step,
        on_snapshot=on_snapshot,
    ).run()


def train_masked(
    images: Sequence[ImagePair | np.ndarray],
    config: TrainConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    on_step: Callable[[TrainStatus], None] | None = None,
    on_snapshot: Callable[[nn.Module], None] | None = None,
) -> TrainResult:
    """Blind-spot (Noise2Self-style) training on single exposures; see :func:`train_noise2noise`.

    ``images`` are arrays or :class:`ImagePair` objects whose ``odd`` is None
    (:func:`~napari_cryodenoise.training.pairs.read_single_images`).
    """
    config = TrainConfig.from_dict({**(config or TrainConfig()).to_dict(), "mode": "masked"})
    singles = [
        ImagePair(im, None, name=f"image{i}")
        if isinstance(im, np.ndarray)
        else ImagePair(im.even, None, name=im.name, files=im.files[:1], pixel_size=im.pixel_size)
        for i, im in enumerate(images)
    ]
    return Trainer(
        singles, config, progress=progress, cancel=cancel, on_step=on_step, on_snapshot=on_snapshot
    ).run()


def train(pairs: PairSource, config: TrainConfig, **kwargs: Any) -> TrainResult:
    """Dispatch on ``config.mode`` to :func:`train_noise2noise` or :func:`train_masked`."""
    if config.mode == "masked":
        kwargs.pop("val_pairs", None)
        return train_masked(pairs, config, **kwargs)
    return train_noise2noise(pairs, config, **kwargs)
