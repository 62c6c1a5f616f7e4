"""Small Topaz-compatible denoisers: a three-layer FCNN and a single affine filter.

Parameter names and shapes follow Topaz's published ``fcnn_L1_v0.2.2.sav``
(``net.0``, ``net.2``, ``net.4``) and ``affine_L1_v0.2.2.sav``
(``filter.weight``, ``filter.bias``) so those files load strictly.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FCNN", "AffineFilter"]


class FCNN(nn.Module):
    """Fully convolutional denoiser: conv 1->nf, LeakyReLU(0.1), nf->nf, LeakyReLU, nf->1.

    Parameters
    ----------
    nf : int
        Hidden feature maps (64 in Topaz's ``fcnn``).
    kernel : int
        Width of all three kernels (11 in Topaz's ``fcnn``).
    name : str
        Alias or file stem.

    """

    def __init__(self, nf: int = 64, kernel: int = 11, *, name: str = "fcnn") -> None:
        super().__init__()
        pad = kernel // 2
        self.net = nn.Sequential(
            nn.Conv2d(1, nf, kernel, padding=pad),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(nf, nf, kernel, padding=pad),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(nf, 1, kernel, padding=pad),
        )
        self.arch = "fcnn"
        self.ndim = 2
        self.grid = 1
        self.halo = 3 * pad
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` of shape (N, 1, H, W)."""
        return self.net(x)

    def extra_repr(self) -> str:
        """Summarise the geometry in ``repr``."""
        return f"ndim=2, grid=1, halo={self.halo}"


class AffineFilter(nn.Module):
    """One learned linear filter with bias (Topaz's ``affine`` model, 31x31).

    Parameters
    ----------
    size : int
        Odd kernel width.
    name : str
        Alias or file stem.

    """

    def __init__(self, size: int = 31, *, name: str = "affine") -> None:
        super().__init__()
        self.filter = nn.Conv2d(1, 1, size, padding=size // 2)
        self.arch = "affine"
        self.ndim = 2
        self.grid = 1
        self.halo = size // 2
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Filter ``x`` of shape (N, 1, H, W)."""
        return self.filter(x)

    def extra_repr(self) -> str:
        """Summarise the geometry in ``repr``."""
        return f"ndim=2, grid=1, halo={self.halo}"
