"""Blind-spot masking for self-supervised training on single exposures (Noise2Self-style).

In every ``grid x grid`` cell (``grid**3`` in 3D) of a crop, one pixel at a
random position is hidden: its value is replaced by the mean of its
neighbours (3x3 or 3x3x3 without the centre), and the loss is computed only
at the hidden pixels, against their original values. The network never sees
a pixel's own noise where it is scored, so with pixel-wise independent noise
the only way to lower the loss is to predict the signal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["blind_spot", "neighbour_mean"]


def neighbour_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of the 8 (2D) or 26 (3D) neighbours of every pixel, reflecting at borders.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, 1, H, W)`` or ``(N, 1, D, H, W)``.

    """
    ndim = x.dim() - 2
    kernel = torch.ones((1, 1) + (3,) * ndim, dtype=x.dtype, device=x.device)
    kernel[(0, 0) + (1,) * ndim] = 0.0
    kernel /= kernel.sum()
    padded = F.pad(x, (1, 1) * ndim, mode="replicate")
    conv = F.conv2d if ndim == 2 else F.conv3d
    return conv(padded, kernel)


def blind_spot(
    x: torch.Tensor, grid: int = 4, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide one random pixel per ``grid``-cell of each sample.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, 1, *spatial)`` batch.
    grid : int
        Cell width: a fraction ``1 / grid**ndim`` of the pixels is hidden.
    generator : torch.Generator, optional
        Random source (on the CPU), for reproducible masks.

    Returns
    -------
    masked_input : torch.Tensor
        ``x`` with the hidden pixels replaced by their neighbours' mean.
    mask : torch.Tensor
        Same shape, 1.0 at hidden pixels, else 0.0.

    """
    n, _, *spatial = x.shape
    cells = [max(1, -(-s // grid)) for s in spatial]
    mask = torch.zeros((n, 1, *(c * grid for c in cells)), dtype=x.dtype)
    offsets = [torch.randint(0, grid, (n, *cells), generator=generator) for _ in spatial]
    index = [torch.arange(n).view(n, *([1] * len(spatial))), torch.zeros((), dtype=torch.long)]
    for axis, (c, off) in enumerate(zip(cells, offsets, strict=True)):
        shape = [1] * len(spatial)
        shape[axis] = c
        index.append(torch.arange(c).view(1, *shape) * grid + off)
    mask[tuple(index)] = 1.0
    mask = mask[(..., *(slice(0, s) for s in spatial))].to(x.device)
    replaced = neighbour_mean(x)
    return torch.lerp(x, replaced, mask), mask
