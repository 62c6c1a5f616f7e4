"""Polyphase folds: a convolution after 2x nearest upsampling, evaluated at low resolution.

A ``k``-wide convolution of a map that was upsampled 2x by nearest neighbour is, for
each output *phase* (the parity of the output index along every axis), a narrower
convolution of the low-resolution map: output pixel ``2j + a`` at high-res offset
``d`` reads low-res pixel ``j + (a + d) // 2``. Summing the taps that land on the same
low-res pixel gives one kernel per phase, ``2**ndim`` kernels of ``width**ndim`` taps
instead of ``k**ndim`` (3x3 instead of 5x5 for ``k = 5``). A full-resolution input
concatenated to the upsampled one folds the same way after a pixel unshuffle: fine
pixel ``2j + a + d`` is sub-pixel ``(a + d) % 2`` of low-res pixel ``j + (a + d) // 2``.

One home for that algebra, used by the U-Net's decoder (:mod:`.unet`, the compact
layout, any ``ndim``) and by the engine's lean evaluator
(:mod:`napari_cryodenoise.engine.fastunet`, the aligned 2D layout with the input image
folded in). Kernels are stacked phase-major: output channel ``p * Cout + c`` is channel
``c`` of phase ``p``, phases in row-major order of their parities (``p = 2 * py + px``
in 2D).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

__all__ = [
    "PhaseLayout",
    "fold_unshuffled",
    "fold_upsampled",
    "interleave_phases",
    "phase_layout",
]


@dataclass(frozen=True)
class PhaseLayout:
    """Where each phase kernel of a ``k``-wide convolution reads the low-res map.

    Attributes
    ----------
    k, ndim : int
        Kernel width and number of spatial dimensions.
    width : int
        Low-res taps per dimension of every phase kernel.
    pad : int
        Symmetric zero padding of the low-res input for the stacked convolution.
    starts : tuple of int
        Where phase 0 / 1 (per dimension) sits in that convolution's output.
    lows : tuple of int
        Low-res offset of each phase kernel's first tap (per dimension parity).
    aligned : bool
        Every phase kernel spans the same centred window (see :func:`phase_layout`).
    taps : torch.Tensor
        ``(2**ndim, width**ndim, k**ndim)`` 0/1 float32 matrix, phase-major: which
        original taps sum into which phase tap.

    """

    k: int
    ndim: int
    width: int
    pad: int
    starts: tuple[int, int]
    lows: tuple[int, int]
    aligned: bool
    taps: torch.Tensor


def _offsets(k: int) -> list[list[int]]:
    r = k // 2
    return [[(a + d) // 2 for d in range(-r, r + 1)] for a in (0, 1)]


def _outer(m1: torch.Tensor, ndim: int) -> torch.Tensor:
    """Row-major outer product over ``ndim`` dimensions of a (P, J, T) 1D tap matrix."""
    m = m1
    for _ in range(ndim - 1):
        m = torch.einsum("pjt,aus->pajuts", m, m1).reshape(
            m.shape[0] * m1.shape[0], m.shape[1] * m1.shape[1], m.shape[2] * m1.shape[2]
        )
    return m


@functools.lru_cache(maxsize=32)
def phase_layout(k: int, ndim: int, *, aligned: bool = False) -> PhaseLayout | None:
    """The phase kernels of a ``k``-wide convolution of a 2x nearest-upsampled map.

    Parameters
    ----------
    k : int
        Odd kernel width.
    ndim : int
        Spatial dimensions.
    aligned : bool
        False: the compact layout (each phase kernel only as wide as it needs, phases
        read at different ``starts``); None when that needs asymmetric padding.
        True: every phase kernel spans the same centred window ``-pad .. pad``, so one
        "same" convolution (padding ``pad``) yields all phases at the same positions.

    Returns
    -------
    PhaseLayout or None

    """
    offs = _offsets(k)
    if aligned:
        pad = max(max(abs(o) for o in row) for row in offs)
        lo = [-pad, -pad]
        width = 2 * pad + 1
    else:
        lo = [min(o) for o in offs]
        width = max(max(o) - min(o) + 1 for o in offs)
        pad = -min(lo)
        if max(lo) + width - 1 != pad:  # needs asymmetric padding
            return None
    with torch.inference_mode(False):  # cached: must stay usable under autograd
        m1 = torch.zeros(2, width, k)
        for a in (0, 1):
            for t, o in enumerate(offs[a]):
                m1[a, o - lo[a], t] = 1.0
        taps = _outer(m1, ndim)
    starts = (lo[0] + pad, lo[1] + pad)
    return PhaseLayout(k, ndim, width, pad, starts, (lo[0], lo[1]), aligned, taps)


def fold_upsampled(weight: torch.Tensor, layout: PhaseLayout) -> torch.Tensor:
    """Phase kernels for the upsampled input: ``(Cout, Cin, k, ..)`` -> ``(P*Cout, Cin, w, ..)``.

    Computed in ``weight``'s dtype and on its device (differentiable).
    """
    taps = layout.taps.to(device=weight.device, dtype=weight.dtype)
    c_out, c_in = weight.shape[:2]
    wf = weight.reshape(c_out, c_in, -1)
    shape = (taps.shape[0] * c_out, c_in) + (layout.width,) * layout.ndim
    return torch.einsum("oct,pjt->pocj", wf, taps).reshape(shape)


@functools.lru_cache(maxsize=32)
def _unshuffle_taps(k: int, ndim: int, aligned: bool) -> torch.Tensor:
    """``(P, Q, width**ndim, k**ndim)``: taps of output phase p on sub-pixel q (row-major)."""
    layout = phase_layout(k, ndim, aligned=aligned)
    offs = _offsets(k)
    r = k // 2
    with torch.inference_mode(False):
        m1 = torch.zeros(2, 2, layout.width, k)  # (phase a, sub-pixel q, tap, k-tap)
        for a in (0, 1):
            for t, d in enumerate(range(-r, r + 1)):
                m1[a, (a + d) % 2, offs[a][t] - layout.lows[a], t] = 1.0
        m = m1
        for _ in range(ndim - 1):
            m = torch.einsum("pqjt,abus->paqbjuts", m, m1).reshape(
                m.shape[0] * 2, m.shape[1] * 2, m.shape[2] * layout.width, m.shape[3] * k
            )
    return m


def fold_unshuffled(weight: torch.Tensor, layout: PhaseLayout) -> torch.Tensor:
    """Phase kernels for a full-resolution input seen through ``pixel_unshuffle(x, 2)``.

    ``(Cout, Cin, k, ..)`` -> ``(P*Cout, Cin*Q, w, ..)``, input channel ``c * Q + q``
    being sub-pixel ``q`` (row-major parities) of channel ``c``, as
    :func:`torch.nn.functional.pixel_unshuffle` orders them in 2D.
    """
    taps = _unshuffle_taps(layout.k, layout.ndim, layout.aligned)
    taps = taps.to(device=weight.device, dtype=weight.dtype)
    c_out, c_in = weight.shape[:2]
    wf = weight.reshape(c_out, c_in, -1)
    n_phase, n_sub = taps.shape[:2]
    shape = (n_phase * c_out, c_in * n_sub) + (layout.width,) * layout.ndim
    return torch.einsum("oct,pqjt->pocqj", wf, taps).reshape(shape)


def interleave_phases(y: torch.Tensor) -> torch.Tensor:
    """``(N, 4C, h, w)`` phase-major -> ``(N, C, 2h, 2w)``, channels-last, in one copy."""
    n, c4, h, w = y.shape
    c = c4 // 4
    t = y.permute(0, 2, 3, 1).reshape(n, h, w, 2, 2, c).permute(0, 1, 3, 2, 4, 5)
    return t.reshape(n, 2 * h, 2 * w, c).permute(0, 3, 1, 2)
