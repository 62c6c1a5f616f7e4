"""Small stand-in networks for the engine tests (model contract: ndim, grid, halo, name)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def up_local(t: torch.Tensor, size) -> torch.Tensor:
    """Nearest 2x upsampling, cropped or edge-extended to ``size`` (local rule)."""
    up = F.interpolate(t, scale_factor=2, mode="nearest")
    pads = []
    for have, want in zip(reversed(up.shape[2:]), reversed(tuple(size)), strict=True):
        pads += [0, max(0, want - have)]
    if any(pads):
        up = F.pad(up, pads, mode="replicate")
    return up[(...,) + tuple(slice(0, s) for s in size)]


def _block(cin, cout, k, n=1, dims=2):
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    layers = []
    for i in range(n):
        layers += [conv(cin if i == 0 else cout, cout, k, padding=k // 2), nn.LeakyReLU(0.1)]
    return layers


class RefUNet(nn.Module):
    """Topaz-topology U-Net (same state-dict keys), local upsampling. levels=5 is Topaz 'unet'."""

    def __init__(self, levels=5, nf=48, width=11, top_width=5, seed=0, top=(64, 32)):
        super().__init__()
        torch.manual_seed(seed)
        self.levels, self.ndim, self.grid, self.name = levels, 2, 2**levels, f"ref-unet{levels}"
        self.enc1 = nn.Sequential(*_block(1, nf, width), nn.MaxPool2d(2))
        for i in range(2, levels + 1):
            setattr(self, f"enc{i}", nn.Sequential(*_block(nf, nf, 3), nn.MaxPool2d(2)))
        setattr(self, f"enc{levels + 1}", nn.Sequential(*_block(nf, nf, 3)))
        setattr(self, f"dec{levels}", nn.Sequential(*_block(2 * nf, 2 * nf, 3, 2)))
        for j in range(2, levels):
            setattr(
                self,
                f"dec{j}",
                nn.Sequential(*_block(3 * nf, 2 * nf, 3, 1), *_block(2 * nf, 2 * nf, 3, 1)),
            )
        t = top_width
        a, b = top
        self.dec1 = nn.Sequential(
            nn.Conv2d(2 * nf + 1, a, t, padding=t // 2),
            nn.LeakyReLU(0.1),
            nn.Conv2d(a, b, t, padding=t // 2),
            nn.LeakyReLU(0.1),
            nn.Conv2d(b, 1, t, padding=t // 2),
        )
        # hard receptive radius (measured for Topaz's nets; a safe bound otherwise)
        known = {(5, 11, 5): 164, (3, 11, 5): 44, (5, 7, 3): 159}
        self.halo = known.get((levels, width, top_width)) or receptive_radius(
            levels, width, top_width
        )
        self.eval()

    def forward(self, x):
        skips = [x]
        h = x
        for i in range(1, self.levels + 1):
            h = getattr(self, f"enc{i}")(h)
            skips.append(h)
        h = getattr(self, f"enc{self.levels + 1}")(h)
        for j in range(self.levels, 0, -1):
            skip = skips[j - 1]
            h = torch.cat([up_local(h, skip.shape[2:]), skip], 1)
            h = getattr(self, f"dec{j}")(h)
        return h


def receptive_radius(levels, width, top_width):
    """Upper bound of the hard receptive radius (level-0 px) of RefUNet."""
    r = width // 2 + 1  # enc1 conv + pool
    scale = 2
    for _ in range(2, levels + 1):
        r += scale * 1 + scale  # 3x3 conv + pool
        scale *= 2
    r += scale  # bottom conv (no pool)
    for _ in range(levels, 1, -1):
        r += scale  # upsampling slack
        scale //= 2
        r += 2 * scale  # two 3x3 convs
    r += 1 + 3 * (top_width // 2)
    return r


class TinyNet2D(nn.Module):
    """conv - pool - conv - upsample - concat - conv; grid 4 (two pools)."""

    def __init__(self, seed=0, ndim=2):
        super().__init__()
        torch.manual_seed(seed)
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.ndim, self.grid, self.name = ndim, 4, f"tiny{ndim}d"
        self.c1 = conv(1, 4, 3, padding=1)
        self.c2 = conv(4, 4, 3, padding=1)
        self.c3 = conv(4, 4, 3, padding=1)
        self.c4 = conv(5, 1, 3, padding=1)
        self.pool = nn.MaxPool2d(2) if ndim == 2 else nn.MaxPool3d(2)
        # c1(1) pool(+1) c2(2) pool(+2) c3(4) up(+2) up(+1) c4(1) -> 14, keep some slack
        self.halo = 16
        self.eval()

    def forward(self, x):
        a = self.pool(F.leaky_relu(self.c1(x), 0.1))
        b = self.pool(F.leaky_relu(self.c2(a), 0.1))
        c = F.leaky_relu(self.c3(b), 0.1)
        c = up_local(up_local(c, a.shape[2:]) + a, x.shape[2:])
        return self.c4(torch.cat([c, x], 1))


class ScaleNet(nn.Module):
    """y = a * x + b (grid 1, halo 0): makes the normalisation contract checkable by hand."""

    def __init__(self, a=0.5, b=0.25, ndim=2):
        super().__init__()
        self.a, self.b, self.ndim, self.grid, self.halo, self.name = a, b, ndim, 1, 0, "scale"

    def forward(self, x):
        return self.a * x + self.b
