"""Drift estimation and Fourier shifts (training/alignment.py), tested directly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import fft as sfft
from scipy import ndimage

from napari_cryodenoise.errors import Cancelled
from napari_cryodenoise.io.movies import MovieReader
from napari_cryodenoise.training.alignment import estimate_drift, phase_ramp


def _shift(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    spec = sfft.rfft2(image) * phase_ramp(image.shape, shift)
    return sfft.irfft2(spec, s=image.shape)


def test_phase_ramp_shifts_by_whole_and_sub_pixels():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(32, 40))
    np.testing.assert_allclose(_shift(image, (3, -5)), np.roll(image, (3, -5), (0, 1)), atol=1e-9)
    smooth = ndimage.gaussian_filter(image, 3.0, mode="wrap")
    half = _shift(_shift(smooth, (0.5, 0.25)), (0.5, 0.25))
    # two half-steps make one step (up to the Nyquist terms, which a real image cannot shift)
    np.testing.assert_allclose(half, _shift(smooth, (1.0, 0.5)), atol=1e-4 * smooth.std())


def _drifting_movie(shifts: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = ndimage.gaussian_filter(rng.normal(size=(128, 128)), 2.0, mode="wrap")
    clean /= clean.std()
    frames = [_shift(clean, tuple(s)) + noise * rng.normal(size=clean.shape) for s in shifts]
    return np.asarray(frames, np.float32)


@pytest.mark.parametrize("smooth", [True, False])
def test_estimate_drift_undoes_known_shifts(smooth):
    n = 8
    drift = np.stack([np.linspace(0, 4.0, n), np.linspace(0, -2.5, n)], axis=1)
    reader = MovieReader(_drifting_movie(drift, 0.5, seed=1))
    done = []
    shifts = estimate_drift(reader, range(n), smooth=smooth, progress=lambda d, t: done.append(d))
    assert shifts.shape == (n, 2)
    np.testing.assert_allclose(shifts.mean(axis=0), 0.0, atol=1e-9)  # zero mean
    truth = -(drift - drift.mean(axis=0))  # the shifts that undo the drift
    assert np.abs(shifts - truth).max() < 0.25
    assert done == list(range(1, n + 1))


def test_estimate_drift_on_a_still_movie_is_zero():
    reader = MovieReader(_drifting_movie(np.zeros((6, 2)), 0.3, seed=2))
    assert np.abs(estimate_drift(reader, range(6))).max() < 0.1


def test_estimate_drift_can_be_cancelled():
    reader = MovieReader(_drifting_movie(np.zeros((4, 2)), 0.3, seed=3))
    with pytest.raises(Cancelled, match="drift estimation cancelled"):
        estimate_drift(reader, range(4), cancel=lambda: True)
