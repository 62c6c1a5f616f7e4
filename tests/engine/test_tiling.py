"""Seamless tiling: window geometry and tiled == whole-image inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _engine_nets import RefUNet, TinyNet2D

from napari_cryodenoise.engine import denoise, denoise_region
from napari_cryodenoise.engine.tiling import (
    choose_core,
    group_by_shape,
    plan_axis,
    plan_tiles,
    window_for,
)


@pytest.mark.parametrize("n", [1, 7, 31, 32, 33, 100, 777, 1000])
@pytest.mark.parametrize("core", [32, 64, 96])
def test_plan_axis_covers_exactly_once(n, core):
    grid, halo = 32, 64
    spans = plan_axis(n, grid=grid, halo=halo, core=core)
    covered = np.zeros(n, int)
    for s in spans:
        covered[s.out_start : s.out_stop] += 1
        assert s.in_start % grid == 0
        assert 0 <= s.in_start <= s.out_start < s.out_stop <= s.in_stop <= n
        # far edge: a grid multiple from the start or the image edge
        assert s.in_stop == n or (s.in_stop - s.in_start) % grid == 0
        # context: halo on every side that is not an image edge
        assert s.in_start == 0 or s.out_start - s.in_start >= halo
        assert s.in_stop == n or s.in_stop - s.out_stop >= halo
    assert (covered == 1).all()


def test_plan_axis_subrange_and_window_for():
    spans = plan_axis(777, grid=32, halo=48, core=64, lo=100, hi=700)
    assert spans[0].out_start == 100 and spans[-1].out_stop == 700
    s = window_for(777, 700, 777, grid=32, halo=48)
    assert s.in_start == 640 and s.in_stop == 777


def test_plan_tiles_product_and_batches():
    tiles = plan_tiles((300, 500), grid=8, halo=16, core=128)
    cover = np.zeros((300, 500), int)
    for t in tiles:
        cover[t.out] += 1
        assert cover[t.out].shape == tuple(s.stop - s.start for s in t.crop)
    assert (cover == 1).all()
    batches = group_by_shape(tiles, 3)
    assert sum(len(b) for b in batches) == len(tiles)
    assert all(len({t.shape for t in b}) == 1 and len(b) <= 3 for b in batches)


def test_choose_core_fits_budget():
    core = choose_core((4096, 4096), grid=32, halo=192, max_window_pixels=2_000_000)
    assert core % 32 == 0 and (core + 384) ** 2 <= 2_000_000 < (core + 32 + 384) ** 2
    assert choose_core((100, 80), grid=32, halo=192, max_window_pixels=1e9) >= 100


def _whole(model, img):
    mean, std = float(img.mean(dtype=np.float64)), float(img.std(dtype=np.float64))
    x = torch.from_numpy(((img - mean) / std).astype(np.float32))[None, None]
    with torch.inference_mode():
        y = model(x)[0, 0].numpy()
    return y * std + mean


@pytest.mark.parametrize("shape", [(1000, 777), (5, 3), (1, 1), (33, 17), (64, 9)])
def test_tiled_equals_whole_standin(shape):
    rng = np.random.default_rng(1)
    img = rng.normal(3, 2, shape).astype(np.float32)
    model = TinyNet2D()
    if min(shape) < model.grid:
        pytest.skip("the stand-in itself needs >= grid pixels; the engine pads for it")
    whole = _whole(model, img)
    tiled = denoise(img, model, patch_size=200, device="cpu")
    assert np.abs(tiled - whole).max() <= 1e-4 * whole.std()


@pytest.mark.parametrize("shape", [(5, 3), (1, 1), (3, 40)])
def test_tiny_images_run(shape):
    img = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out = denoise(img, TinyNet2D(), device="cpu")
    assert out.shape == shape and np.isfinite(out).all()


def test_tiled_equals_whole_ref_unet_odd_size():
    """Topaz U-Net topology with the local upsampling rule: odd, non-square, several tiles."""
    cases = [(3, (301, 213), 64, (True, False)), (5, (450, 333), 160, (True,))]
    for levels, shape, patch, modes in cases:
        # unet-small / unet topology, thin layers to keep the test fast
        model = RefUNet(levels=levels, nf=8, top=(16, 8), seed=levels)
        img = np.random.default_rng(2).normal(0, 1, shape).astype(np.float32)
        whole = _whole(model, img)
        for fast in modes:
            tiled = denoise(img, model, patch_size=patch, device="cpu", fast=fast)
            assert np.abs(tiled - whole).max() <= 1e-4 * whole.std(), (levels, fast)


def test_region_matches_whole_window():
    model = TinyNet2D()
    img = np.random.default_rng(3).normal(size=(257, 190)).astype(np.float32)
    whole = denoise(img, model, device="cpu")
    for region in [
        (slice(0, 50), slice(0, 190)),
        (slice(100, 257), slice(33, 34)),
        (slice(17, 129), slice(150, 190)),
    ]:
        part = denoise_region(img, model, region, device="cpu")
        assert part.shape == whole[region].shape
        np.testing.assert_allclose(part, whole[region], atol=1e-5 * whole.std())
