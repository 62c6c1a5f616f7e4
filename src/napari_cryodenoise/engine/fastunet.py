"""A memory-lean, lower-FLOP evaluator for Topaz-topology 2D U-Nets.

Topaz's U-Nets (``unet``, ``unet-v0.2.1``, ``unet-small``) spend most of their
time at full resolution in the last decoder block (``dec1``: 5x5 convolutions
on 97, 64 and 32 channels), whose receptive field is only a few pixels, while
the 160-pixel context that tiling must carry is needed only by the cheap
coarse levels. :class:`UNetPlan` evaluates such a network on a window in three
stages:

1. ``enc1`` (full resolution conv + pool) in row strips, giving ``p1``;
2. the coarse levels (``enc2`` ... ``dec3``) on the whole window, giving
   ``d3`` at quarter resolution;
3. ``dec2`` + ``dec1`` only on the part of the window that is kept, in
   sub-tiles with a 16-pixel margin (:data:`FINE_HALO`).

Stage 3 also folds the nearest-neighbour upsampling into ``dec1``'s first
convolution (polyphase form): a 5x5 convolution of a 2x-upsampled map equals
four 3x3 convolutions on the coarse map, one per output phase, i.e. 9 instead
of 25 multiply-adds per weight (the biggest layer of the net). The result
equals the module's own forward up to float rounding (~1e-6 relative), which
:meth:`UNetPlan.from_model` checks on a probe input before the plan is used.

Upsampling follows the local rule ``src = min(i // 2, k - 1)`` (identical to
``F.interpolate(size=...)`` for even sizes), which is what makes windows
seamless.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..models.polyphase import (
    PhaseLayout,
    fold_unshuffled,
    fold_upsampled,
    interleave_phases,
    phase_layout,
)
from ..models.unet import upsample_local
from .tiling import plan_tiles

log = logging.getLogger(__name__)

__all__ = ["FINE_HALO", "UNetPlan", "upsample_local"]

#: Margin (level-0 pixels) that stage 3 sub-tiles carry; the exact need is 13.
FINE_HALO = 16
_SLOPE = 0.1
_CHANNELS_LAST = True


def _lrelu(t: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu_(t, _SLOPE)


def _cl(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if _CHANNELS_LAST else t


def _polyphase_kernel(weight: torch.Tensor) -> torch.Tensor:
    """dec1's first kernel on cat[up(d), x] -> one kernel on cat[d, unshuffle(x)].

    ``weight`` is (Cout, Cup + 1, k, k), the last input channel being the
    full-resolution image x. The result, (4 * Cout, Cup + 4, w, w) with ``w`` the
    aligned phase width (3 for k = 5), applies to the coarse map d and the 4
    polyphase components of x (``pixel_unshuffle``) and yields the 4 output phases
    phase-major: channel ``(2 * py + px) * Cout + c``. Summed in float64 (see
    :mod:`napari_cryodenoise.models.polyphase`).
    """
    cup = weight.shape[1] - 1
    layout = _layout(int(weight.shape[-1]))
    w64 = weight.detach().double()
    up = fold_upsampled(w64[:, :cup], layout)
    image = fold_unshuffled(w64[:, cup:], layout)
    return torch.cat([up, image], 1).float()


def _layout(k: int) -> PhaseLayout:
    """The aligned 2D phase layout of dec1's ``k``-wide kernel."""
    layout = phase_layout(k, 2, aligned=True)
    assert layout is not None  # the aligned layout always exists
    return layout


_phases_to_fine = interleave_phases


class UNetPlan:
    """Evaluate a Topaz-topology 2D U-Net window by window (see the module docstring).

    Build it with :meth:`from_model`; call it like the module, optionally with
    ``keep`` (slices in window coordinates) to compute only part of the output.
    """

    def __init__(self, state: dict[str, torch.Tensor], levels: int, *, grid: int, halo: int):
        self.levels = levels  # number of 2x poolings
        self.grid = grid
        self.halo = halo
        self._master = {k: v.detach().float().cpu().clone() for k, v in state.items()}
        top = self._master["dec1.0.weight"]
        self.top_kernel = int(top.shape[-1])
        self.polyphase = self.top_kernel >= 5 and self.top_kernel <= 7
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.sub_core = 512
        self._build(self.device, self.dtype)

    # ------------------------------------------------------------------ building
    @classmethod
    def match(cls, model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], int] | None:
        """Return (state_dict, levels) if ``model`` has the Topaz U-Net topology, else None."""
        if getattr(model, "ndim", 2) != 2:
            return None
        state = {k: v for k, v in model.state_dict().items()}
        pattern = re.compile(r"enc(\d+)\.0\.weight")
        encs = sorted(int(m.group(1)) for k in state if (m := pattern.fullmatch(k)))
        if len(encs) < 3 or encs != list(range(1, len(encs) + 1)):
            return None
        levels = len(encs) - 1
        expected = {f"enc{i}.0.{p}" for i in encs for p in ("weight", "bias")}
        expected |= {
            f"dec{j}.{i}.{p}"
            for j in range(2, levels + 1)
            for i in (0, 2)
            for p in ("weight", "bias")
        }
        expected |= {f"dec1.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
        if set(state) != expected:
            return None
        nf = state["enc1.0.weight"].shape[0]
        try:
            if state["enc1.0.weight"].shape[1] != 1 or state["enc1.0.weight"].ndim != 4:
                return None
            for i in encs[1:]:
                if tuple(state[f"enc{i}.0.weight"].shape[:2]) != (nf, nf):
                    return None
            if tuple(state[f"dec{levels}.0.weight"].shape[:2]) != (2 * nf, 2 * nf):
                return None
            for j in range(2, levels):
                if tuple(state[f"dec{j}.0.weight"].shape[:2]) != (2 * nf, 3 * nf):
                    return None
            if state["dec1.0.weight"].shape[1] != 2 * nf + 1:
                return None
            if state["dec1.4.weight"].shape[0] != 1:
                return None
            kernels = [state[k].shape[-1] for k in expected if k.endswith("weight")]
            if any(k % 2 == 0 for k in kernels):
                return None
        except (KeyError, IndexError):
            return None
        return state, levels

    @classmethod
    def from_model(cls, model: torch.nn.Module, *, check: bool = True) -> UNetPlan | None:
        """Build a plan for ``model``; None when it is not a Topaz-topology U-Net.

        With ``check`` the plan is compared with ``model.forward`` on a small
        random input whose size is a multiple of the grid; a mismatch (a
        different architecture behind the same key names) returns None.
        """
        found = cls.match(model)
        if found is None:
            return None
        state, levels = found
        grid = int(getattr(model, "grid", 2**levels))
        halo = int(getattr(model, "halo", 0)) or 163
        plan = cls(state, levels, grid=grid, halo=halo)
        if check:
            params = list(model.parameters())
            if params[0].dtype != torch.float32:
                return None
            gen = torch.Generator().manual_seed(0)
            side = 2 * grid
            probe = torch.randn(1, 1, side + grid, side, generator=gen)
            with torch.inference_mode():
                want = model(probe.to(params[0].device)).cpu()
                got = plan(probe)
            scale = float(want.std()) or 1.0
            err = float((want - got).abs().max()) / scale
            if not err <= 1e-4:
                log.warning(
                    "fast U-Net path disabled for %s: probe error %.2e",
                    getattr(model, "name", "model"),
                    err,
                )
                return None
        return plan

    def _build(self, device: torch.device, dtype: torch.dtype) -> None:
        m = self._master
        conv = {}
        for key in m:
            if key.endswith(".weight"):
                base = key[: -len(".weight")]
                w = m[key].to(device=device, dtype=dtype)
                conv[base] = (_cl(w), m[base + ".bias"].to(device=device, dtype=dtype))
        self._conv = conv
        # dec2's first conv split into its upsampled and skip parts (no concatenation)
        w2, b2 = m["dec2.0.weight"], m["dec2.0.bias"]
        cup = w2.shape[1] - m["enc1.0.weight"].shape[0]
        self._dec2_up = _cl(w2[:, :cup].contiguous().to(device=device, dtype=dtype))
        self._dec2_skip = _cl(w2[:, cup:].contiguous().to(device=device, dtype=dtype))
        self._dec2_bias = b2.to(device=device, dtype=dtype)
        if self.polyphase:
            w1 = m["dec1.0.weight"]
            self._poly = _cl(_polyphase_kernel(w1).to(device=device, dtype=dtype))
            self._poly_bias = m["dec1.0.bias"].repeat(4).to(device=device, dtype=dtype)
        self.device, self.dtype = device, dtype

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> UNetPlan:
        """Move the weights (in place); returns self."""
        device = torch.device(device)
        if device != self.device or dtype != self.dtype:
            self._build(device, dtype)
        return self

    # --------------------------------------------------------------- evaluation
    def _c(
        self, name: str, t: torch.Tensor, padding: int | tuple[int, int] | None = None
    ) -> torch.Tensor:
        w, b = self._conv[name]
        pad = w.shape[-1] // 2 if padding is None else padding
        return F.conv2d(t, w, b, padding=pad)

    def _stage1(self, x: torch.Tensor, strip_bytes: int = 96 << 20) -> torch.Tensor:
        """p1 = pool(lrelu(enc1(x))), computed in strips of about ``strip_bytes``."""
        w, _ = self._conv["enc1.0"]
        r = w.shape[-1] // 2
        n, _, h, wd = x.shape
        h1, w1 = h // 2, wd // 2
        row_bytes = 2 * n * max(wd, 1) * w.shape[0] * x.element_size()
        rows = max(16, int(strip_bytes // row_bytes))
        out = None
        for a in range(0, h1, rows):
            b = min(h1, a + rows)
            lo, hi = 2 * a - r, 2 * b + r
            part = x[:, :, max(lo, 0) : min(hi, h)]
            if lo < 0 or hi > h:
                part = F.pad(part, (0, 0, max(-lo, 0), max(hi - h, 0)))
            y = F.max_pool2d(_lrelu(self._c("enc1.0", _cl(part), (0, r))), 2)
            if out is None:
                out = torch.empty((n, y.shape[1], h1, w1), dtype=y.dtype, device=y.device)
                out = _cl(out)
            out[:, :, a:b] = y
        return out

    def _stage2(self, p1: torch.Tensor) -> torch.Tensor:
        """Coarse levels: p1 -> d3 (quarter resolution)."""
        skips = [p1]
        h = p1
        for i in range(2, self.levels + 1):
            h = F.max_pool2d(_lrelu(self._c(f"enc{i}.0", h)), 2)
            skips.append(h)
        h = _lrelu(self._c(f"enc{self.levels + 1}.0", h))
        for j in range(self.levels, 2, -1):  # dec_j works at level j - 1
            skip = skips[j - 2]
            h = torch.cat([upsample_local(h, skip.shape[-2:]), skip], 1)
            h = _lrelu(self._c(f"dec{j}.2", _lrelu(self._c(f"dec{j}.0", _cl(h)))))
        return h

    def _dec1_first(self, d2: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """First conv of dec1 on cat[up(d2), x], at x's size."""
        h, w = x.shape[-2:]
        if not self.polyphase:
            u = torch.cat([upsample_local(d2, (h, w)), x], 1)
            return self._c("dec1.0", _cl(u))
        h2, w2 = d2.shape[-2:]
        oddh, oddw = int(h > 2 * h2), int(w > 2 * w2)
        ext = d2
        if oddh or oddw:  # odd edge: repeat the last coarse row/col, fix the last rows below
            ext = F.pad(d2, (0, oddw, 0, oddh), mode="replicate")
            x = F.pad(x, (0, oddw, 0, oddh))  # zeros beyond the image, as in zero padding
        xs = F.pixel_unshuffle(x, 2)
        cat = torch.empty(
            (ext.shape[0], ext.shape[1] + 4, *ext.shape[2:]), dtype=ext.dtype, device=ext.device
        )
        cat = _cl(cat)
        cat[:, : ext.shape[1]] = ext
        cat[:, ext.shape[1] :] = xs
        y = F.conv2d(cat, self._poly, self._poly_bias, padding=self._poly.shape[-1] // 2)
        del cat
        y = interleave_phases(y)[..., :h, :w]
        x = x[..., :h, :w]
        r = self.top_kernel // 2
        if oddh:  # last r rows see one spurious row beyond the image: recompute directly
            y[..., h - r :, :] = self._direct_rows(d2, x, h - r, h)
        if oddw:
            y[..., :, w - r :] = self._direct_rows(
                d2.transpose(-1, -2), x.transpose(-1, -2), w - r, w, transposed=True
            ).transpose(-1, -2)
        return y

    def _direct_rows(
        self, d2: torch.Tensor, x: torch.Tensor, a: int, b: int, transposed: bool = False
    ) -> torch.Tensor:
        """Rows [a, b) of dec1's first conv on cat[up(d2), x], computed directly."""
        weight, bias = self._conv["dec1.0"]
        if transposed:
            weight = weight.transpose(-1, -2)
        r = weight.shape[-1] // 2
        (h2, w2), (h, w) = d2.shape[-2:], x.shape[-2:]
        lo, hi = max(0, a - r), min(h, b + r)
        rows = torch.clamp(torch.arange(lo, hi, device=d2.device) // 2, max=h2 - 1)
        cols = torch.clamp(torch.arange(w, device=d2.device) // 2, max=w2 - 1)
        u = d2.index_select(-2, rows).index_select(-1, cols)
        u = torch.cat([u, x[..., lo:hi, :]], 1)
        u = F.pad(u, (0, 0, lo - (a - r), (b + r) - hi))
        return F.conv2d(u.contiguous(), weight.contiguous(), bias, padding=(0, r))

    def _stage3(self, x: torch.Tensor, p1: torch.Tensor, d3: torch.Tensor) -> torch.Tensor:
        """dec2 + dec1 on one sub-window (start even multiple of 4)."""
        h, w = x.shape[-2:]
        u = upsample_local(d3, p1.shape[-2:])
        d2 = F.conv2d(_cl(u), self._dec2_up, self._dec2_bias, padding=1)
        del u
        d2 += F.conv2d(_cl(p1), self._dec2_skip, None, padding=1)
        d2 = _lrelu(self._c("dec2.2", _lrelu(d2)))
        y = _lrelu(self._dec1_first(d2, x))
        del d2
        y = _lrelu(self._c("dec1.2", y))
        return self._c("dec1.4", y)

    @torch.inference_mode()
    def __call__(
        self,
        x: torch.Tensor,
        keep: Sequence[slice] | None = None,
        check: Callable[[], None] | None = None,
    ) -> torch.Tensor:
        """Evaluate on a normalised window ``x`` (N, 1, H, W).

        Parameters
        ----------
        x : torch.Tensor
            Window, already on the plan's device and dtype.
        keep : sequence of slice, optional
            Part of the output to compute (window coordinates); default all.
        check : callable, optional
            Called between sub-tiles (e.g. raises to cancel).

        Returns
        -------
        torch.Tensor
            ``(N, 1, h, w)`` output of the ``keep`` region.

        """
        x = x.to(device=self.device, dtype=self.dtype)
        h, w = x.shape[-2:]
        if keep is None:
            keep = (slice(0, h), slice(0, w))
        keep = tuple(slice(*s.indices(n)[:2]) for s, n in zip(keep, (h, w), strict=True))
        p1 = self._stage1(x)
        d3 = self._stage2(p1)
        out = torch.empty(
            (x.shape[0], 1, keep[0].stop - keep[0].start, keep[1].stop - keep[1].start),
            dtype=x.dtype,
            device=x.device,
        )
        for tile in plan_tiles((h, w), grid=4, halo=FINE_HALO, core=self.sub_core, region=keep):
            if check is not None:
                check()
            (ys, xs) = tile.window
            y = self._stage3(
                x[..., ys, xs],
                p1[..., ys.start // 2 : ys.stop // 2, xs.start // 2 : xs.stop // 2],
                d3[..., ys.start // 4 : ys.stop // 4, xs.start // 4 : xs.stop // 4],
            )
            (oy, ox) = tile.out
            out[
                ...,
                oy.start - keep[0].start : oy.stop - keep[0].start,
                ox.start - keep[1].start : ox.stop - keep[1].start,
            ] = y[(...,) + tile.crop]
        return out
