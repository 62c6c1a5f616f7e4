"""Fourier low-pass, Fourier binning and the Gaussian pre-filter on known signals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

from napari_cryodenoise.engine.filters import (
    bin_shape,
    fourier_lowpass,
    fourier_resize,
    gaussian_filter,
    gaussian_kernel1d,
    gaussian_radius,
)
from napari_cryodenoise.errors import InputError


def _wave(shape, freqs):
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum(np.cos(2 * np.pi * f * g / n) for f, g, n in zip(freqs, grids, shape, strict=True))


def test_lowpass_keeps_low_and_removes_high():
    shape = (64, 80)
    low = _wave(shape, (4, 5))  # 4/64 and 5/80 cycles/px, well below 0.5/4
    high = _wave(shape, (24, 30))  # 0.375 cycles/px, above 0.5/2
    out = fourier_lowpass((low + high).astype(np.float32), 2)
    assert out.dtype == np.float32 and out.shape == shape
    np.testing.assert_allclose(out, low, atol=1e-4)
    np.testing.assert_array_equal(fourier_lowpass(low, 1), low.astype(np.float32))


def test_lowpass_3d():
    shape = (16, 20, 24)
    low, high = _wave(shape, (1, 2, 2)), _wave(shape, (7, 8, 10))
    np.testing.assert_allclose(fourier_lowpass(low + high, 2.5), low, atol=1e-4)


@pytest.mark.parametrize(
    "shape,factor",
    [((128, 96), 2), ((129, 95), 2), ((100, 100), 1.5), ((96, 96), 4), ((32, 40, 24), 2)],
)
def test_binning_round_trip_band_limited(shape, factor):
    freqs = (2, 3, 1)[: len(shape)]
    img = (5 + _wave(shape, freqs)).astype(np.float32)
    small = fourier_resize(img, bin_shape(img.shape, factor))
    assert small.shape == bin_shape(shape, factor)
    assert abs(small.mean() - img.mean()) < 1e-4
    back = fourier_resize(small, shape)
    np.testing.assert_allclose(back, img, atol=1e-4)


def test_bin_shape_validation():
    assert bin_shape((4096, 3710), 2) == (2048, 1855)
    assert bin_shape((3, 3), 100) == (1, 1)
    with pytest.raises(InputError):
        bin_shape((10, 10), 0)


def test_gaussian_matches_truncated_zero_padded_kernel():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(50, 41)).astype(np.float32)
    sigma = 1.3
    k = gaussian_kernel1d(sigma)
    assert k.size == 2 * gaussian_radius(sigma) + 1 == 2 * int(np.ceil(6.5)) + 1
    assert abs(k.sum() - 1) < 1e-12
    want = scipy.ndimage.correlate1d(img.astype(np.float64), k, axis=0, mode="constant")
    want = scipy.ndimage.correlate1d(want, k, axis=1, mode="constant")
    got = gaussian_filter(img, sigma)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # it really smooths: variance of white noise drops by about 1 / (4 pi sigma^2)
    interior = got[10:-10, 10:-10]
    assert interior.var() < 0.1 * img.var()
    np.testing.assert_array_equal(gaussian_filter(img, 0), img)


def test_gaussian_3d_constant_interior():
    vol = np.ones((20, 20, 20), np.float32)
    out = gaussian_filter(vol, 1.0)
    np.testing.assert_allclose(out[8:12, 8:12, 8:12], 1.0, atol=1e-6)
    assert out[0, 0, 0] < 0.5  # zero padding at the corner (about 0.7 ** 3)
