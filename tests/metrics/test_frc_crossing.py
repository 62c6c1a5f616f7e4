"""The FRC resolution is read robustly, and dependent image pairs are flagged (issue 16, 13)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_cryodenoise import metrics as m
from napari_cryodenoise.metrics.frc import FRCResult

SHAPE = (512, 512)
F0, NOISE_SD = 0.1, 0.5


def _halves_with_a_low_frequency_trough(seed=0):
    """Two independent noisy copies of a low-pass signal that has no power in rings 3-5."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(SHAPE[0])[:, None], np.fft.fftfreq(SHAPE[1])[None, :])
    transfer = np.exp(-0.5 * (f / F0) ** 2)
    ring = np.rint(f * SHAPE[0])
    transfer[(ring >= 3) & (ring <= 5)] = 0.0  # a trough: the FRC drops to noise there
    signal = np.fft.ifft2(np.fft.fft2(rng.normal(size=SHAPE)) * transfer).real
    return (
        signal + rng.normal(0, NOISE_SD, SHAPE),
        signal + rng.normal(0, NOISE_SD, SHAPE),
    )


def test_low_frequency_dip_is_not_the_resolution():
    a, b = _halves_with_a_low_frequency_trough()
    r = m.fourier_ring_correlation(a, b, taper=0)
    # signal power per coefficient exp(-(f/F0)^2) equals noise power 0.25 at f = F0 sqrt(ln 4):
    # FRC = 0.5 there, and 0.143 a little further out
    expected_05 = F0 * math.sqrt(math.log(1 / NOISE_SD**2))
    for criterion in (0.143, "half-bit"):
        plain = r.crossing_frequency(criterion, sustain=1, low_fraction=0)
        assert plain is not None and plain < 6 / SHAPE[0]  # the old rule stops in the trough
        robust = r.crossing_frequency(criterion)
        assert robust > expected_05 and 1 / robust < 10  # near the real fall-off, in pixels
    assert r.crossing_frequency(0.5) == pytest.approx(expected_05, rel=0.05)
    assert r.resolution("half-bit") == pytest.approx(r.resolution(0.143), rel=0.1)


def _curve(values):
    values = np.asarray([1.0, *values], float)
    freq = np.arange(len(values)) / (2.0 * (len(values) - 1))  # ring k at k/(2 * last)
    return FRCResult(freq, values, np.full(len(values), 1000.0), 1.0)


def _before(ring):
    """Crossing of 0.5 between ring - 1 (0.9) and ring (0.0), on the 200-ring curves."""
    return (ring - 1 + 0.4 / 0.9) / 400


def test_crossing_needs_a_few_rings_below():
    values = np.full(200, 0.9)
    values[49] = 0.0  # ring 50 dips alone
    values[120:] = 0.0  # the real fall-off from ring 121 on
    r = _curve(values)
    assert r.crossing_frequency(0.5) == pytest.approx(_before(121))
    assert r.crossing_frequency(0.5, sustain=1) == pytest.approx(_before(50))
    values[50:52] = 0.0  # rings 50-52 below: sustained
    assert _curve(values).crossing_frequency(0.5) < r.frequency[50]


def test_dips_in_the_lowest_frequencies_are_ignored():
    values = np.full(200, 0.9)
    values[1:4] = 0.0  # rings 2-4: only ring 4 lies beyond the lowest 2% (rings < 4)
    values[150:] = 0.0
    r = _curve(values)
    assert r.crossing_frequency(0.5) == pytest.approx(_before(151))
    assert r.crossing_frequency(0.5, low_fraction=0) < r.frequency[3]


def test_never_and_always_below():
    assert _curve(np.full(50, 0.9)).crossing_frequency(0.5) is None
    assert _curve(np.full(50, 0.9)).resolution(0.5) == pytest.approx(1.0 / 0.5 * 1.0)
    assert _curve(np.full(50, 0.0)).crossing_frequency(0.5) == 0.0
    assert math.isinf(_curve(np.full(50, 0.0)).resolution(0.5))
    last_only = np.full(50, 0.9)
    last_only[-1] = 0.0  # below at the last ring: it lasts to the end, so it counts
    assert _curve(last_only).crossing_frequency(0.5) is not None
    assert "stays below for 3 rings" in m.CROSSING_RULE


@pytest.fixture(scope="module")
def halves():
    rng = np.random.default_rng(4)
    s = ndi.gaussian_filter(rng.normal(size=(256, 256)), 4) * 8
    return s + rng.normal(size=s.shape), s + rng.normal(size=s.shape)


def test_independent_halves_are_not_flagged(halves):
    even, odd = halves
    r = m.fourier_ring_correlation(even, odd)
    assert not r.looks_dependent() and m.dependence_warning(r) is None
    smooth = [ndi.gaussian_filter(x, 1.5) for x in halves]
    assert m.dependence_warning(m.fourier_ring_correlation(*smooth)) is None


@pytest.mark.parametrize(
    "denoise",
    [
        lambda x: x.copy(),
        lambda x: ndi.gaussian_filter(x, 1),
        lambda x: x + 0.5 * np.random.default_rng(9).normal(size=x.shape),
    ],
    ids=["same", "gaussian", "plus-noise"],
)
def test_image_against_its_own_denoised_version_is_flagged(halves, denoise):
    raw = halves[0]
    r = m.fourier_ring_correlation(raw, denoise(raw))
    text = m.dependence_warning(r, "'raw'", "'denoised'")
    assert text is not None and "\n" not in text
    assert text.startswith("'raw' and 'denoised' stay correlated") and "independent" in text
