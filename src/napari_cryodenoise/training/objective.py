"""What a training step and the validation score: the per-pixel losses of one batch."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .masked import blind_spot
from .mixed import autocast

__all__ = ["pixel_losses"]


def pixel_losses(
    model: nn.Module,
    src: torch.Tensor,
    tgt: torch.Tensor,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    masked: bool,
    mask_grid: int,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The network's per-pixel losses on one batch, and where they count.

    Noise2Noise: the network maps ``src`` to ``tgt`` and every pixel counts.
    Blind-spot (``masked``): pixels of ``src`` hidden with ``blind_spot`` (drawn
    from ``generator``), scored only there against ``tgt``.

    Parameters
    ----------
    model : torch.nn.Module
        The network, on ``device``.
    src, tgt : torch.Tensor
        ``(N, 1, *spatial)`` input and target, on ``device``.
    loss : callable
        Elementwise loss (``reduction="none"``).
    masked : bool
        Blind-spot training (else Noise2Noise).
    mask_grid : int
        Blind-spot cell width.
    generator : torch.Generator
        Random source of the blind-spot positions (CPU).
    device : torch.device
        Where ``model`` runs (for autocast).
    dtype : torch.dtype, optional
        Autocast precision of the forward pass (None: fp32); the loss is fp32.

    Returns
    -------
    losses : torch.Tensor
        Per-pixel losses, the shape of ``tgt``.
    mask : torch.Tensor or None
        1 where a loss counts (masked), None when every pixel counts.

    """
    mask = None
    if masked:
        src, mask = blind_spot(src, mask_grid, generator)
    with autocast(device, dtype):
        out = model(src)
    return loss(out.float(), tgt), mask
