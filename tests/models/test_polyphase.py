"""models.polyphase: folded phase kernels equal the convolution of the upsampled map."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from napari_cryodenoise.models.polyphase import (
    fold_unshuffled,
    fold_upsampled,
    interleave_phases,
    phase_layout,
)


def _conv(ndim):
    return F.conv2d if ndim == 2 else F.conv3d


def _up(t, ndim):
    return F.interpolate(t, scale_factor=2, mode="nearest")


@pytest.mark.parametrize(("k", "ndim", "aligned"), itertools.product((3, 5, 7), (2, 3), (0, 1)))
def test_fold_upsampled_equals_upsampled_conv(k, ndim, aligned):
    layout = phase_layout(k, ndim, aligned=bool(aligned))
    assert layout is not None
    gen = torch.Generator().manual_seed(k * 10 + ndim)
    cin, cout, m = 3, 2, (5, 4, 3)[:ndim]
    w = torch.randn(cout, cin, *(k,) * ndim, generator=gen, dtype=torch.float64)
    low = torch.randn(1, cin, *m, generator=gen, dtype=torch.float64)
    want = _conv(ndim)(_up(low, ndim), w, padding=k // 2)
    wp = fold_upsampled(w, layout)
    assert wp.shape == (2**ndim * cout, cin, *(layout.width,) * ndim)
    y = _conv(ndim)(low, wp, padding=layout.pad)
    for p, parity in enumerate(itertools.product((0, 1), repeat=ndim)):
        src = y[
            (slice(None), slice(p * cout, (p + 1) * cout))
            + tuple(
                slice(layout.starts[a], layout.starts[a] + n)
                for a, n in zip(parity, m, strict=True)
            )
        ]
        dst = want[(slice(None), slice(None)) + tuple(slice(a, None, 2) for a in parity)]
        torch.testing.assert_close(src, dst, rtol=1e-10, atol=1e-10)


def test_compact_layout_is_narrower():
    assert phase_layout(5, 2).width == 3
    assert phase_layout(3, 3).width == 2
    assert phase_layout(3, 2, aligned=True).width == 3
    assert phase_layout(7, 2, aligned=True).width == 5


@pytest.mark.parametrize("k", [3, 5, 7])
def test_fold_unshuffled_equals_full_resolution_conv(k):
    layout = phase_layout(k, 2, aligned=True)
    gen = torch.Generator().manual_seed(k)
    cin, cout, h, w = 2, 3, 4, 5
    weight = torch.randn(cout, cin, k, k, generator=gen, dtype=torch.float64)
    x = torch.randn(1, cin, 2 * h, 2 * w, generator=gen, dtype=torch.float64)
    want = F.conv2d(x, weight, padding=k // 2)
    folded = fold_unshuffled(weight, layout)
    assert folded.shape == (4 * cout, 4 * cin, layout.width, layout.width)
    y = F.conv2d(F.pixel_unshuffle(x, 2), folded, padding=layout.pad)
    torch.testing.assert_close(interleave_phases(y), want, rtol=1e-10, atol=1e-10)


def test_fold_is_differentiable():
    w = torch.randn(2, 3, 5, 5, requires_grad=True)
    fold_upsampled(w, phase_layout(5, 2)).sum().backward()
    assert w.grad is not None and float(w.grad.abs().sum()) > 0
