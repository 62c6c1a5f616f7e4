"""The pieces of one optimisation step: per-pixel loss, optimizer, learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from ..errors import InputError
from .config import TrainConfig

__all__ = ["LossFn", "loss_fn", "lr_factor", "make_optimizer"]

#: ``loss(output, target)`` per pixel (no reduction).
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_fn(name: str) -> LossFn:
    """Per-pixel loss ``"l2"`` (squared error) or ``"l1"`` (absolute error), not reduced.

    Raises
    ------
    InputError
        For another name.

    """
    if name == "l2":
        return lambda y, t: (y - t).square()
    if name == "l1":
        return lambda y, t: (y - t).abs()
    raise InputError(f"unknown loss {name!r}; use l2 or l1")


def make_optimizer(
    config: TrainConfig, params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` at ``config.lr`` with ``config.weight_decay``.

    Raises
    ------
    InputError
        For an unknown optimizer name.

    """
    name = config.optimizer.lower()
    wd = config.weight_decay
    if name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=config.lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=wd)
    raise InputError(f"unknown optimizer {config.optimizer!r}; use adam, adamw, adagrad or sgd")


def lr_factor(config: TrainConfig, step: int, fraction: float) -> float:
    """Learning-rate multiplier at ``step`` when ``fraction`` of the run is done.

    A linear warm-up from 0.1 over ``config.warmup_steps``, then (``"cosine"``) a
    half cosine from 1 down to 0.05 over the run, or (``"constant"``) 1.
    """
    warm = 1.0
    if config.warmup_steps > 0 and step < config.warmup_steps:
        warm = 0.1 + 0.9 * step / config.warmup_steps
    if config.lr_schedule == "constant":
        return warm
    if config.lr_schedule != "cosine":
        raise InputError(f"unknown lr schedule {config.lr_schedule!r}; use cosine or constant")
    fraction = min(max(fraction, 0.0), 1.0)
    return warm * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * fraction)))
