"""Self-ensemble at inference: 8 dihedral transforms of the plane, averaged, tiling exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _engine_nets import RefUNet, ScaleNet, TinyNet2D

from napari_cryodenoise.engine import denoise, denoise_region
from napari_cryodenoise.engine.ensemble import (
    TRANSFORMS,
    ensemble_pad,
    inverse,
    transform,
    transform_keep,
)
from napari_cryodenoise.engine.options import EngineOptions
from napari_cryodenoise.errors import Cancelled


def _reference(model, img):
    """The definition: zero-pad the normalised plane to the grid, 8 transforms, mean, crop."""
    mean, std = float(img.mean(dtype=np.float64)), float(img.std(dtype=np.float64))
    x = torch.from_numpy(((img - mean) / std).astype(np.float32))[None, None]
    pads = ensemble_pad(x.shape[2:], model.grid)
    x = torch.nn.functional.pad(x, [p for extra in reversed(pads) for p in (0, extra)])
    outs = []
    with torch.inference_mode():
        for mirror, turns in TRANSFORMS:
            outs.append(inverse(model(transform(x, mirror, turns)), mirror, turns))
    y = torch.stack(outs).mean(0)[0, 0].numpy()
    y = y[tuple(slice(0, n) for n in img.shape)]
    return y * std + mean


def test_transforms_are_the_dihedral_group():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    seen = set()
    for mirror, turns in TRANSFORMS:
        t = transform(x, mirror, turns)
        seen.add(tuple(t.flatten().tolist()) + tuple(t.shape))
        assert torch.equal(inverse(t, mirror, turns), x)
    assert len(seen) == 8


@pytest.mark.parametrize("shape", [(7, 11), (3, 5, 6)])
def test_transform_keep_matches_brute_force(shape):
    idx = torch.arange(int(np.prod(shape))).reshape(shape)
    keep = tuple(slice(1, n - 1) if n > 4 else slice(0, n) for n in shape)
    want = set(idx[keep].flatten().tolist())
    for mirror, turns in TRANSFORMS:
        t = transform(idx, mirror, turns)
        box, tshape = transform_keep(keep, shape, mirror, turns)
        assert tuple(t.shape) == tshape
        assert set(t[box].flatten().tolist()) == want
        # the box, transformed back, is the original box in the original order
        assert torch.equal(inverse(t[box], mirror, turns), idx[keep])


def test_pad_only_the_plane_to_the_grid():
    assert ensemble_pad((37, 50), 4) == [3, 2]
    assert ensemble_pad((2, 37, 50), 4) == [2, 3, 2]  # z only when shorter than the grid
    assert ensemble_pad((9, 32, 64), 32) == [23, 0, 0]


@pytest.mark.parametrize("shape", [(37, 50), (64, 9), (5, 3)])
def test_ensemble_is_the_mean_of_the_eight_transforms(shape):
    model = TinyNet2D()
    img = np.random.default_rng(1).normal(3, 2, shape).astype(np.float32)
    want = _reference(model, img)
    got = denoise(img, model, device="cpu", ensemble=True)
    assert got.shape == shape
    np.testing.assert_allclose(got, want, atol=1e-5 * want.std())
    plain = denoise(img, model, device="cpu")
    assert np.abs(got - plain).max() > 1e-3 * want.std()  # it does something


def test_ensemble_tiled_equals_whole_unet_topology():
    """Topaz U-Net topology (lean evaluator and plain module), odd non-square, many tiles."""
    model = RefUNet(levels=3, nf=8, top=(16, 8), seed=3)
    img = np.random.default_rng(2).normal(0, 1, (163, 121)).astype(np.float32)
    want = _reference(model, img)
    for fast in (True, False):
        whole = denoise(img, model, device="cpu", ensemble=True, fast=fast, patch_size=1024)
        tiled = denoise(img, model, device="cpu", ensemble=True, fast=fast, patch_size=64)
        np.testing.assert_allclose(whole, want, atol=1e-4 * want.std())
        assert np.abs(tiled - whole).max() <= 1e-4 * whole.std(), fast


def test_ensemble_region_equals_whole():
    model = TinyNet2D()
    img = np.random.default_rng(3).normal(size=(257, 190)).astype(np.float32)
    whole = denoise(img, model, device="cpu", ensemble=True)
    for region in [(slice(0, 50), slice(0, 190)), (slice(100, 257), slice(33, 34))]:
        part = denoise_region(img, model, region, device="cpu", ensemble=True, patch_size=32)
        np.testing.assert_allclose(part, whole[region], atol=1e-4 * whole.std())


def test_equivariant_model_is_unchanged():
    img = np.random.default_rng(4).normal(5, 2, (30, 47)).astype(np.float32)
    model = ScaleNet()
    np.testing.assert_allclose(
        denoise(img, model, device="cpu", ensemble=True),
        denoise(img, model, device="cpu"),
        rtol=1e-6,
        atol=1e-5,
    )


def test_volume_keeps_z_and_tiles_exactly():
    model = TinyNet2D(ndim=3)
    vol = np.random.default_rng(5).normal(1, 2, (9, 21, 26)).astype(np.float32)
    want = _reference(model, vol)
    whole = denoise(vol, model, device="cpu", ensemble=True)
    tiled = denoise(vol, model, device="cpu", ensemble=True, patch_size=8)
    np.testing.assert_allclose(whole, want, atol=1e-5 * want.std())
    assert np.abs(tiled - whole).max() <= 1e-4 * whole.std()


class _Counting(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0
        self.ndim, self.grid, self.halo, self.name = inner.ndim, inner.grid, inner.halo, "count"
        self.eval()  # else the engine runs a copy

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def test_cancel_between_transforms_and_eight_passes():
    model = _Counting(TinyNet2D())
    img = np.random.default_rng(6).normal(size=(20, 20)).astype(np.float32)
    denoise(img, model, device="cpu", ensemble=True)
    assert model.calls == 8
    model.calls = 0
    asked = {"n": 0}

    def cancel():
        asked["n"] += 1
        return asked["n"] > 3

    with pytest.raises(Cancelled):
        denoise(img, model, device="cpu", ensemble=True, cancel=cancel)
    assert 0 < model.calls < 8


def test_engine_option():
    assert EngineOptions().ensemble is False
    assert EngineOptions(ensemble=1).ensemble is True
    assert EngineOptions.pick({"ensemble": True}).ensemble
