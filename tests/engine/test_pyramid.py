"""engine.pyramid: block means and the display-pyramid rule, without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_cryodenoise.engine.pyramid import (
    block_mean,
    display_levels,
    display_pyramid,
    pyramid_depth,
    shrink_factor,
    shrink_for,
)


def test_import_does_not_load_torch():
    code = (
        "import sys, napari_cryodenoise._napari.reader, napari_cryodenoise.engine.pyramid, "
        "napari_cryodenoise.engine.stats, napari_cryodenoise.engine.options; "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:3]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_block_mean_2d_crops_edges_and_averages():
    img = np.arange(7 * 9, dtype=np.int16).reshape(7, 9)
    out = block_mean(img, 3)
    assert out.dtype == np.float32 and out.shape == (2, 3)
    assert out[1, 2] == pytest.approx(img[3:6, 6:9].mean())
    assert block_mean(img, 1).shape == img.shape


def test_block_mean_3d_and_bad_factor():
    vol = np.random.default_rng(0).normal(size=(4, 6, 8)).astype(np.float32)
    out = block_mean(vol, 2)
    assert out.shape == (2, 3, 4)
    np.testing.assert_allclose(out[1, 2, 3], vol[2:4, 4:6, 6:8].mean(), rtol=1e-6)
    with pytest.raises(ValueError):
        block_mean(vol, 0)


def test_shrink_keeps_headroom_for_the_fourier_crop():
    assert shrink_factor((4096, 4096), (512, 512)) == 4  # 8x reduction: 4x4 boxes
    assert shrink_factor((1000, 1000), (500, 500)) == 1
    small = np.ones((100, 100), np.float32)
    assert shrink_for(small, (60, 60)) is small
    assert shrink_for(np.ones((400, 800)), (50, 100)).shape == (100, 200)


@pytest.mark.parametrize(
    ("shape", "depth"),
    [((2048, 2048), 0), ((2049, 100), 1), ((4096, 3000), 2), ((5, 8192, 4000), 3)],
)
def test_pyramid_depth(shape, depth):
    assert pyramid_depth(shape) == depth


def test_display_pyramid_levels():
    img = np.random.default_rng(1).normal(size=(2100, 1500)).astype(np.float32)
    levels = display_pyramid(img)
    assert isinstance(levels, list) and levels[0] is img
    assert [lv.shape for lv in levels] == [(2100, 1500), (1050, 750), (525, 375)]
    np.testing.assert_allclose(levels[1][3, 4], img[6:8, 8:10].mean(), rtol=1e-6)
    small = np.zeros((300, 300), np.float32)
    assert display_pyramid(small) is small
    stack = np.zeros((2, 3000, 3000), np.float32)
    assert display_pyramid(stack) is stack
    assert [a.shape for a in display_levels(img, 2)] == [a.shape for a in levels]


@pytest.mark.parametrize(
    ("shape", "k", "dtype"),
    [((37, 50), 2, np.float32), ((64, 81), 3, np.uint16), ((9, 17, 12), 2, np.float64)],
)
def test_block_mean_equals_the_mean_of_each_block(shape, k, dtype):
    image = (np.random.default_rng(3).random(shape) * 1000).astype(dtype)
    crop = image[tuple(slice(0, n // k * k) for n in shape)].astype(np.float64)
    split = [d for n in crop.shape for d in (n // k, k)]
    expected = crop.reshape(split).mean(axis=tuple(range(1, 2 * crop.ndim, 2)))
    out = block_mean(image, k)
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(image, image.copy())  # the input is untouched
