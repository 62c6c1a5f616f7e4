"""engine.fastunet: the lean U-Net evaluator equals the reference U-Net's own forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from napari_cryodenoise.engine.fastunet import UNetPlan, _polyphase_kernel
from napari_cryodenoise.models.unet import UNet, UNetSpec, upsample_local


def _net(depth=3, first=11, last=5, nf=8, seed=0) -> UNet:
    torch.manual_seed(seed)
    net = UNet(UNetSpec(2, depth, first, last, nf=nf)).eval()
    with torch.no_grad():  # non-trivial biases, so every path matters
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def _reference(net: UNet, x: torch.Tensor) -> torch.Tensor:
    net.use_phase_trick = False  # the plain upsample-concatenate-convolve route
    try:
        with torch.inference_mode():
            return net(x)
    finally:
        net.use_phase_trick = True


@pytest.mark.parametrize("shape", [(32, 32), (40, 56), (45, 37), (8, 70)])
def test_plan_equals_reference_unet(shape):
    net = _net()
    plan = UNetPlan.from_model(net)
    assert plan is not None and plan.polyphase
    x = torch.randn(2, 1, *shape, generator=torch.Generator().manual_seed(1))
    pad = [p for n in reversed(shape) for p in (0, max(0, net.grid - n))]
    want = _reference(net, F.pad(x, pad))[..., : shape[0], : shape[1]]
    got = plan(F.pad(x, pad))[..., : shape[0], : shape[1]]
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.std()))


def test_plan_keep_computes_only_a_part():
    net = _net(seed=2)
    plan = UNetPlan.from_model(net)
    plan.sub_core = 16  # several stage-3 sub-tiles
    x = torch.randn(1, 1, 64, 48, generator=torch.Generator().manual_seed(3))
    whole = plan(x)
    keep = (slice(8, 40), slice(4, 44))
    part = plan(x, keep)
    torch.testing.assert_close(part, whole[(..., *keep)], rtol=1e-5, atol=1e-5)
    calls = []
    plan(x, keep, check=lambda: calls.append(1))
    assert len(calls) > 1


def test_plan_without_polyphase_kernel_size():
    net = _net(last=3, seed=4)  # dec1 kernel 3: no polyphase gain, plain route
    plan = UNetPlan.from_model(net)
    assert plan is not None and not plan.polyphase
    x = torch.randn(1, 1, 40, 32, generator=torch.Generator().manual_seed(5))
    want = _reference(net, x)
    torch.testing.assert_close(plan(x), want, rtol=1e-4, atol=1e-4 * float(want.std()))


def test_match_rejects_other_networks():
    assert UNetPlan.from_model(torch.nn.Conv2d(1, 1, 3)) is None
    net3d = UNet(UNetSpec(3, 2, 3, 3, nf=4))
    assert UNetPlan.from_model(net3d) is None


@pytest.mark.parametrize("k", [5, 7])
def test_polyphase_kernel_is_the_upsampled_convolution(k):
    """conv(cat[up(d), x], w) == phases of conv(cat[d, unshuffle(x)], folded w)."""
    gen = torch.Generator().manual_seed(k)
    cup, cout, h, w = 3, 4, 6, 5
    weight = torch.randn(cout, cup + 1, k, k, generator=gen, dtype=torch.float64)
    d = torch.randn(1, cup, h, w, generator=gen, dtype=torch.float64)
    x = torch.randn(1, 1, 2 * h, 2 * w, generator=gen, dtype=torch.float64)
    want = F.conv2d(torch.cat([upsample_local(d, (2 * h, 2 * w)), x], 1), weight, padding=k // 2)
    folded = _polyphase_kernel(weight).double()
    y = F.conv2d(torch.cat([d, F.pixel_unshuffle(x, 2)], 1), folded, padding=folded.shape[-1] // 2)
    got = F.pixel_shuffle(
        y.reshape(1, 2, 2, cout, h, w).permute(0, 3, 1, 2, 4, 5).reshape(1, 4 * cout, h, w), 2
    )
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # kernel rounded to float32
