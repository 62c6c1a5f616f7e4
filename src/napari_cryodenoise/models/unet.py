"""U-Nets with the layer layout of Topaz-Denoise's published networks.

One class, :class:`UNet`, covers every U-Net that Topaz ships: the 2D ``unet``
(v0.2.2), ``unet-v0.2.1``, ``unet-small`` and the 3D ``unet-3d``. Parameter
names and shapes are those of Topaz's ``.sav`` state dicts, so a Topaz file
loads with ``load_state_dict(strict=True)`` and no renaming.

Topology (``depth`` = number of 2x max-pools, ``nf`` = 48 feature maps):

* ``enc1``: conv 1->nf (``first_kernel``), LeakyReLU(0.1), max-pool 2;
  ``enc2`` .. ``enc{depth}``: conv nf->nf (3), LeakyReLU, max-pool 2;
  ``enc{depth+1}``: conv nf->nf (3), LeakyReLU (no pool).
* ``dec{depth}``: nearest upsampling to the deepest skip, concatenation
  (2nf), two 3-convs 2nf->2nf; ``dec{depth-1}`` .. ``dec2``: same after a 3nf
  concatenation; ``dec1``: upsampling to the input size, concatenation with
  the input itself (2nf+1), convs 2nf+1->64->32->1 (``last_kernel``), the last
  one without activation.

Speed: where a decoder upsamples by exactly 2 (even sizes at that level), the
convolution over the upsampled half of the concatenation is evaluated at the
low resolution as one kernel per output phase (2**ndim phases; 3x3 instead of
5x5, 2x2 instead of 3x3, 2x2x2 instead of 3x3x3) whose results are added into
the interleaved positions of the skip half's convolution. That is the same
linear map (nearest upsampling folds into the kernel), identical up to float
summation order, with 2.2x-3.4x fewer multiply-adds for that part and no
upsampled or concatenated tensor in memory. ``dec1`` of the 2D ``unet`` is
about half of all its FLOPs. Other sizes take the plain
upsample-concatenate-convolve route, exactly Topaz's.

Inputs smaller than ``2**depth`` in some dimension (where Topaz's network
fails) are zero-extended at the far end to that size and the output cropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .polyphase import PhaseLayout, fold_upsampled, phase_layout

__all__ = ["UNET_ARCHS", "UNet", "UNetSpec", "unet_halo"]

_SLOPE = 0.1
#: Largest intermediate (bytes) of the phase convolutions before they are split up.
_PHASE_BYTES = 256 << 20


@dataclass(frozen=True)
class UNetSpec:
    """Hyper-parameters of one U-Net variant."""

    ndim: int
    depth: int
    first_kernel: int
    last_kernel: int
    nf: int = 48
    description: str = ""


#: The U-Net variants that Topaz publishes weights for, by architecture name.
UNET_ARCHS: dict[str, UNetSpec] = {
    "unet": UNetSpec(2, 5, 11, 5, description="2D U-Net, kernels 11/5 (Topaz v0.2.2)"),
    "unet-v0.2.1": UNetSpec(2, 5, 7, 3, description="2D U-Net, kernels 7/3 (Topaz v0.2.1)"),
    "unet-small": UNetSpec(2, 3, 11, 5, description="2D U-Net with 3 pools, kernels 11/5"),
    "unet-3d": UNetSpec(3, 5, 7, 3, description="3D U-Net, kernels 7/3 (Topaz v0.2.4)"),
}


def _same(a: UNetSpec, b: UNetSpec) -> bool:
    """Equal hyper-parameters (descriptions aside)."""
    fields = ("ndim", "depth", "first_kernel", "last_kernel", "nf")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


def unet_halo(depth: int, first_kernel: int, last_kernel: int) -> int:
    """Hard receptive-field radius (px at full resolution) of a U-Net.

    Tracks, for one output pixel, the interval of input pixels it can depend
    on, worst case over all positions modulo ``2**depth`` (the pattern of
    floor-pooling and nearest upsampling repeats with that period).

    Parameters
    ----------
    depth : int
        Number of 2x poolings.
    first_kernel, last_kernel : int
        Width of the first encoder kernel and of the ``dec1`` kernels.

    Returns
    -------
    int
        Largest distance between an output pixel and an input pixel that can
        change it.

    """
    period = 2**depth
    worst = 0
    for pos in range(period * 4, period * 5):
        lo, hi = _support(pos, pos, 0, depth, first_kernel, last_kernel)
        worst = max(worst, pos - lo, hi - pos)
    return worst


def _support(
    lo: int, hi: int, level: int, depth: int, k_first: int, k_last: int
) -> tuple[int, int]:
    """Input interval (level 0) that decoder output pixels ``lo..hi`` at ``level`` read."""
    # Decoder block at this level (dec{level+1}): convolutions widen the interval.
    if level == 0:
        r = 3 * (k_last // 2)  # three convs
    else:
        r = 2  # two 3-convs
    lo, hi = lo - r, hi + r
    # The block's input is cat(upsample(deeper), skip at this level).
    # Skip at level 0 is the input itself.
    s_lo, s_hi = _encoder_support(lo, hi, level, k_first)
    # Nearest 2x upsampling: pixel i reads deeper pixel i // 2.
    d_lo, d_hi = lo // 2, hi // 2
    if level + 1 == depth:
        # The deepest block is the last encoder conv (3x3, no pool) at level `depth`.
        e_lo, e_hi = _encoder_support(d_lo - 1, d_hi + 1, depth, k_first)
    else:
        e_lo, e_hi = _support(d_lo, d_hi, level + 1, depth, k_first, k_last)
    return min(s_lo, e_lo), max(s_hi, e_hi)


def _encoder_support(lo: int, hi: int, level: int, k_first: int) -> tuple[int, int]:
    """Input interval behind encoder feature pixels ``lo..hi`` at ``level`` (after pooling)."""
    for lev in range(level, 0, -1):
        lo, hi = 2 * lo, 2 * hi + 1  # max-pool 2 (floor)
        r = k_first // 2 if lev == 1 else 1
        lo, hi = lo - r, hi + r
    return lo, hi


def _conv(ndim: int, cin: int, cout: int, k: int) -> nn.Module:
    cls = nn.Conv2d if ndim == 2 else nn.Conv3d
    return cls(cin, cout, k, padding=k // 2)


def _pool(ndim: int) -> nn.Module:
    return nn.MaxPool2d(2) if ndim == 2 else nn.MaxPool3d(2)


def _act() -> nn.Module:
    return nn.LeakyReLU(_SLOPE, inplace=True)


def upsample_local(low: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest 2x upsampling to ``size``: each coarse pixel covers exactly two fine ones.

    For an odd ``size`` the last coarse pixel is repeated once more. This is
    identical to ``F.interpolate(low, size=size, mode="nearest")`` whenever
    ``size`` is twice the coarse size, and unlike it stays *local* for odd
    sizes (interpolate maps fine index ``i`` to ``floor(i * k / (2k + 1))``,
    a drift of up to one coarse pixel across the image), so the output of a
    window depends only on its neighbourhood and tiled inference is exact.
    """
    up = F.interpolate(low, scale_factor=2, mode="nearest")
    extra = [max(0, int(s) - u) for s, u in zip(size, up.shape[2:], strict=True)]
    if any(extra):
        up = F.pad(up, [p for e in reversed(extra) for p in (0, e)], mode="replicate")
    return up[(...,) + tuple(slice(0, int(s)) for s in size)]


class UNet(nn.Module):
    """Topaz-compatible U-Net denoiser (2D or 3D).

    Parameters
    ----------
    spec : UNetSpec or str
        Architecture, or a key of :data:`UNET_ARCHS`.
    name : str, optional
        Label for the model (alias or file stem); defaults to the arch name.

    Attributes
    ----------
    ndim : int
        Number of spatial dimensions (2 or 3).
    grid : int
        Output is shift-equivariant for input shifts that are multiples of this.
    halo : int
        Hard receptive-field radius in pixels.
    name : str
        Alias or file stem.
    arch : str
        Architecture name (key of :data:`UNET_ARCHS`) or ``"unet-custom"``.

    """

    def __init__(self, spec: UNetSpec | str = "unet", *, name: str | None = None) -> None:
        super().__init__()
        if isinstance(spec, str):
            arch = spec
            spec = UNET_ARCHS[spec]
        else:
            arch = next((k for k, v in UNET_ARCHS.items() if _same(v, spec)), "unet-custom")
        odd = spec.first_kernel % 2 == 1 and spec.last_kernel % 2 == 1
        if spec.ndim not in (2, 3) or spec.depth < 2 or not odd or spec.nf < 1:
            raise ValueError(f"unsupported U-Net layout {spec}")
        self.spec = spec
        self.arch = arch
        self.ndim = spec.ndim
        self.grid = 2**spec.depth
        self.halo = unet_halo(spec.depth, spec.first_kernel, spec.last_kernel)
        self.name = name or arch
        nd, nf, depth = spec.ndim, spec.nf, spec.depth

        self.add_module(
            "enc1", nn.Sequential(_conv(nd, 1, nf, spec.first_kernel), _act(), _pool(nd))
        )
        for i in range(2, depth + 1):
            self.add_module(f"enc{i}", nn.Sequential(_conv(nd, nf, nf, 3), _act(), _pool(nd)))
        self.add_module(f"enc{depth + 1}", nn.Sequential(_conv(nd, nf, nf, 3), _act()))
        for i in range(depth, 1, -1):
            cin = 2 * nf if i == depth else 3 * nf
            self.add_module(
                f"dec{i}",
                nn.Sequential(
                    _conv(nd, cin, 2 * nf, 3), _act(), _conv(nd, 2 * nf, 2 * nf, 3), _act()
                ),
            )
        k = spec.last_kernel
        self.add_module(
            "dec1",
            nn.Sequential(
                _conv(nd, 2 * nf + 1, 64, k),
                _act(),
                _conv(nd, 64, 32, k),
                _act(),
                _conv(nd, 32, 1, k),
            ),
        )
        self._phase_cache: dict[str, tuple[tuple, torch.Tensor]] = {}
        self.use_phase_trick = True
        #: Upsample odd sizes as Topaz's code does (``F.interpolate(size=...)``) instead
        #: of the local rule of :func:`upsample_local`. The two agree whenever every
        #: level's size is even (inputs that are multiples of ``grid``); only the
        #: golden tests against Topaz's own classes on odd sizes need this.
        self.topaz_odd_upsampling = False

    # -- forward -------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` of shape (N, 1, *spatial); returns the same shape."""
        if x.dim() != self.ndim + 2:
            raise ValueError(
                f"{self.name}: expected a {self.ndim + 2}D tensor (N, 1, ...), "
                f"got {tuple(x.shape)}"
            )
        small = [max(0, self.grid - n) for n in x.shape[2:]]
        if any(small):
            # Too small for `depth` poolings (Topaz fails here): zero-extend at the far
            # end (zero = the normalised mean), which keeps the pooling phase, then crop.
            pad = [p for extra in reversed(small) for p in (0, extra)]
            y = self.forward(F.pad(x, pad))
            return y[(...,) + tuple(slice(0, n) for n in x.shape[2:])].contiguous()
        depth = self.spec.depth
        skips = [x]  # the deepest pooled map (p_depth) is not a skip
        h = x
        for i in range(1, depth + 1):
            h = getattr(self, f"enc{i}")(h)
            if i < depth:
                skips.append(h)
        h = getattr(self, f"enc{depth + 1}")(h)
        for i in range(depth, 0, -1):
            block: nn.Sequential = getattr(self, f"dec{i}")
            h = self._up_cat_conv(h, skips.pop(), block[0], f"dec{i}")
            for layer in list(block)[1:]:
                h = layer(h)
        return h

    def _up_cat_conv(
        self, low: torch.Tensor, skip: torch.Tensor, conv: nn.Module, key: str
    ) -> torch.Tensor:
        """``conv(cat([upsample(low, skip.size), skip]))``, by the cheapest exact route."""
        size = skip.shape[2:]
        k = conv.kernel_size[0]
        doubled = all(s == 2 * t for s, t in zip(size, low.shape[2:], strict=True))
        if self.use_phase_trick and doubled:
            plan = phase_layout(k, self.ndim)
            if plan is not None and plan.width < k:
                return self._phase_conv(low, skip, conv, key, plan)
        if self.topaz_odd_upsampling:
            up = F.interpolate(low, size=size, mode="nearest")
        else:
            up = upsample_local(low, size)
        if low.dtype != skip.dtype:  # mixed precision: keep the skip's dtype
            up = up.to(skip.dtype)
        return conv(torch.cat([up, skip], 1))

    def _phase_weight(
        self, conv: nn.Module, c_low: int, key: str, plan: PhaseLayout
    ) -> torch.Tensor:
        """Stacked phase kernels (phase-major output channels) for the upsampled input part."""
        w = conv.weight[:, :c_low]
        # under autograd: rebuild, differentiably; inference tensors have no version counter
        cacheable = not torch.is_grad_enabled() and not conv.weight.is_inference()
        stamp = (w.data_ptr(), conv.weight._version if cacheable else -1, w.dtype, w.device)
        if cacheable:
            cached = self._phase_cache.get(key)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        wp = fold_upsampled(w, plan)
        fmt = torch.channels_last if self.ndim == 2 else torch.channels_last_3d
        if conv.weight.is_contiguous(memory_format=fmt) and not conv.weight.is_contiguous():
            wp = wp.contiguous(memory_format=fmt)
        if cacheable:
            self._phase_cache[key] = (stamp, wp.detach())
        return wp

    def _phase_conv(
        self, low: torch.Tensor, skip: torch.Tensor, conv: nn.Module, key: str, plan: PhaseLayout
    ) -> torch.Tensor:
        c_low = low.shape[1]
        wp = self._phase_weight(conv, c_low, key, plan)
        conv_nd = F.conv2d if self.ndim == 2 else F.conv3d
        if low.dtype != wp.dtype:
            low = low.to(wp.dtype)
        k = conv.kernel_size[0]
        out = conv_nd(skip, conv.weight[:, c_low:], conv.bias, padding=k // 2)
        c_out = out.shape[1]
        m = low.shape[2:]
        phases = list(itertools.product((0, 1), repeat=self.ndim))
        # All phases in one convolution, or in groups when that result would be
        # large (bounds the extra memory, e.g. on a GPU with a big image).
        per_phase = low.shape[0] * c_out * out.element_size()
        for n in m:
            per_phase *= n + 2 * plan.pad - plan.width + 1
        group = max(1, min(len(phases), _PHASE_BYTES // max(per_phase, 1)))
        for g0 in range(0, len(phases), group):
            g1 = min(g0 + group, len(phases))
            y_low = conv_nd(low, wp[g0 * c_out : g1 * c_out], None, padding=plan.pad)
            if y_low.dtype != out.dtype:
                y_low = y_low.to(out.dtype)
            for p in range(g0, g1):
                src = y_low[
                    (slice(None), slice((p - g0) * c_out, (p - g0 + 1) * c_out))
                    + tuple(
                        slice(plan.starts[a], plan.starts[a] + n)
                        for a, n in zip(phases[p], m, strict=True)
                    )
                ]
                dst = out[(slice(None), slice(None)) + tuple(slice(a, None, 2) for a in phases[p])]
                dst.add_(src)
        return out

    def extra_repr(self) -> str:
        """Summarise the architecture in ``repr``."""
        return f"arch={self.arch!r}, ndim={self.ndim}, grid={self.grid}, halo={self.halo}"

    def __getstate__(self) -> dict:
        """Pickle without the derived phase-kernel cache."""
        state = self.__dict__.copy()
        state["_phase_cache"] = {}
        return state
