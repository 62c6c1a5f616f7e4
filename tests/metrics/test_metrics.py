import math
import warnings

import numpy as np
import pytest

from napari_cryodenoise import metrics as m
from napari_cryodenoise.errors import InputError


def _grid_picks(shape, spacing, margin):
    ys = np.arange(margin, shape[0] - margin, spacing)
    xs = np.arange(margin, shape[1] - margin, spacing)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1).astype(float)  # (x, y)


def _paint(image, regions, value):
    for r in regions:
        image[r.slices][r.mask if r.mask is not None else Ellipsis] += value


@pytest.fixture
def contrast_image():
    """Gaussian noise (sigma 2) with discs of contrast 3 at grid picks: SNR = 10 log10(9/4)."""
    rng = np.random.default_rng(1)
    img = rng.normal(100.0, 2.0, (400, 400))
    xy = _grid_picks(img.shape, 80, 40)
    sig, bg = m.regions_from_picks(img.shape, xy, 8)
    _paint(img, sig, 3.0)
    return img, xy, sig, bg


# ----------------------------------------------------------------------------- region SNR


def test_snr_known_contrast(contrast_image):
    img, xy, sig, bg = contrast_image
    assert len(sig) == len(bg) == len(xy)
    expected = 10 * math.log10(9 / 4)
    assert m.snr_db(img, sig, bg) == pytest.approx(expected, abs=0.35)
    # invariant to a * x + b, including a contrast inversion
    assert m.snr_db(-2.5 * img + 7, sig, bg) == pytest.approx(m.snr_db(img, sig, bg), abs=1e-9)


def test_snr_average_db_vs_ratio():
    img = np.zeros((40, 40))
    rng = np.random.default_rng(0)
    img[20:, :] = rng.normal(0, 1, (20, 40))
    img[20:, :] = (img[20:, :] - img[20:, :].mean()) / img[20:, :].std()
    img[0:5, 0:5] = 1.0  # contrast 1 -> 0 dB
    img[0:5, 10:15] = 10.0  # contrast 10 -> 20 dB
    sig = [m.Region((slice(0, 5), slice(0, 5))), m.Region((slice(0, 5), slice(10, 15)))]
    bg = [m.Region((slice(20, 40), slice(0, 40)))] * 2
    np.testing.assert_allclose(m.pair_snr_db(img, sig, bg), [0.0, 20.0], atol=1e-9)
    assert m.snr_db(img, sig, bg) == pytest.approx(10.0)
    assert m.snr_db(img, sig, bg, average="ratio") == pytest.approx(10 * math.log10(50.5))


def test_snr_accepts_masks_labels_pairs_and_polygons(contrast_image):
    img, _, sig, bg = contrast_image
    ref = m.snr_db(img, sig, bg)
    smasks = [r.to_mask(img.shape) for r in sig]
    bmasks = [r.to_mask(img.shape) for r in bg]
    assert m.snr_db(img, smasks, bmasks) == pytest.approx(ref)
    assert m.snr_db(img, list(zip(smasks, bmasks, strict=True))) == pytest.approx(ref)
    assert m.snr_db(img, np.stack(smasks), np.stack(bmasks)) == pytest.approx(ref)
    slab = np.zeros(img.shape, np.int32)
    blab = np.zeros(img.shape, np.int32)
    for k, (s, b) in enumerate(zip(sig, bg, strict=True), start=1):
        slab[s.to_mask(img.shape)] = k
        blab[b.to_mask(img.shape)] = k
    assert m.snr_db(img, slab, blab) == pytest.approx(ref)
    # a square polygon equals the square box region
    poly = m.region_from_polygon([[9.5, 19.5], [9.5, 29.5], [19.5, 29.5], [19.5, 19.5]], img.shape)
    assert poly.size == 100 and poly.to_mask(img.shape)[10:20, 20:30].all()


def test_regions_from_picks_geometry_and_determinism():
    shape = (300, 500)
    rng = np.random.default_rng(3)
    xy = np.column_stack([rng.uniform(0, 500, 40), rng.uniform(0, 300, 40)])
    radius = 6.0
    sig, bg = m.regions_from_picks(shape, xy, radius, seed=7)
    sig2, bg2 = m.regions_from_picks(shape, xy, radius, seed=7)
    assert [b.slices for b in bg] == [b.slices for b in bg2]
    assert [s.label for s in sig] == [b.label for b in bg]
    for s, b in zip(sig, bg, strict=True):
        assert s.fits(shape) and b.fits(shape)
        cy, cx = b.center
        d = np.hypot(xy[:, 0] - cx, xy[:, 1] - cy)
        assert d.min() >= 3 * radius - 1e-9
        assert np.hypot(*(np.array(s.center) - b.center)) <= 10 * radius + 1
    # picks whose disc leaves the image are dropped
    edge = {
        i
        for i, (x, y) in enumerate(xy)
        if min(x, y) < radius or x > 500 - radius - 1 or y > 300 - radius - 1
    }
    assert not edge & {s.label for s in sig}
    # an exclusion mask keeps backgrounds out of it
    excl = np.zeros(shape, bool)
    excl[:, 250:] = True
    _, bg3 = m.regions_from_picks(shape, xy, radius, exclude=excl)
    assert all(b.slices[1].stop <= 250 for b in bg3)
    # a box region has the full square
    s_box, _ = m.regions_from_picks(shape, [[100.0, 100.0]], 5, region="box")
    assert s_box[0].size == 121


def test_snr_input_errors(contrast_image):
    img, _, sig, bg = contrast_image
    bad = img.copy()
    bad[5, 5] = np.nan
    s0 = sig[0]
    bad[s0.slices][s0.mask] = np.nan
    with pytest.raises(InputError, match="NaN"):
        m.snr_db(bad, sig, bg)
    with pytest.raises(InputError, match="pair up"):
        m.snr_db(img, sig, bg[:-1])
    with pytest.raises(InputError, match="no signal"):
        m.snr_db(img, [], [])
    with pytest.raises(InputError, match="outside"):
        m.snr_db(img[:50, :50], sig, bg)
    flat = np.ones((50, 50))
    with pytest.raises(InputError, match="undefined"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.snr_db(flat, [m.Region((slice(0, 5), slice(0, 5)))], [m.Region((slice(9, 20),) * 2)])


# ----------------------------------------------------------------------------- FRC / FSC


def _lowpass_signal(shape, f0, rng):
    """White noise of unit variance shaped by a Gaussian transfer exp(-(f/f0)^2 / 2)."""
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    f = np.sqrt(sum(g**2 for g in freqs))
    h = np.exp(-0.5 * (f / f0) ** 2)
    s = np.fft.ifftn(np.fft.fftn(rng.normal(size=shape)) * h).real
    return s, lambda freq: np.exp(-((freq / f0) ** 2))  # per-coefficient signal power


def test_frc_identical_is_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(128, 96))
    r = m.fourier_ring_correlation(a, a, pixel_size=2.0)
    np.testing.assert_allclose(r.correlation[1:], 1.0, atol=1e-12)
    assert r.frequency[-1] == pytest.approx(0.5 / 2.0)
    assert r.resolution(0.143) == pytest.approx(4.0)  # Nyquist
    assert r.crossing_frequency(0.143) is None


def test_frc_independent_noise_is_zero_within_sampling_error():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 256, 256))
    r = m.fourier_ring_correlation(a, b, taper=0)
    z = r.correlation[1:] * np.sqrt(r.n_coefficients[1:])
    assert np.mean(np.abs(z) < 3) > 0.98
    assert np.abs(z).max() < 4.5
    assert abs(r.mean()) < 0.01
    # the rings count every coefficient of the full plane once
    assert r.n_coefficients[:21].sum() == pytest.approx(np.pi * 20.5**2, rel=0.02)


def test_frc_signal_plus_noise_matches_theory():
    rng = np.random.default_rng(2)
    noise_var = 0.25
    s, power = _lowpass_signal((256, 256), 0.15, rng)
    a = s + rng.normal(0, math.sqrt(noise_var), s.shape)
    b = s + rng.normal(0, math.sqrt(noise_var), s.shape)
    r = m.fourier_ring_correlation(a, b, taper=0)
    snr = power(r.frequency) / noise_var
    theory = snr / (1 + snr)
    sel = r.n_coefficients >= 50
    err = np.abs(r.correlation - theory)[sel] * np.sqrt(r.n_coefficients[sel])
    assert err.max() < 4.0
    # FRC = 0.5 where signal power = noise power: f = f0 sqrt(ln 4)
    assert r.crossing_frequency(0.5) == pytest.approx(0.15 * math.sqrt(math.log(4)), rel=0.05)
    assert r.resolution(0.143) < r.resolution(0.5)
    assert r.resolution("half-bit") < r.resolution(0.5)


def test_fsc_volumes():
    rng = np.random.default_rng(3)
    s, power = _lowpass_signal((40, 40, 40), 0.12, rng)
    a = s + rng.normal(0, 0.5, s.shape)
    b = s + rng.normal(0, 0.5, s.shape)
    np.testing.assert_allclose(m.fourier_shell_correlation(a, a).correlation[1:], 1.0, atol=1e-12)
    r = m.fourier_shell_correlation(a, b, pixel_size=4.0, taper=0)
    assert r.n_coefficients[:11].sum() == pytest.approx(4 / 3 * np.pi * 10.5**3, rel=0.02)
    snr = power(r.frequency * 4.0) / 0.25
    theory = snr / (1 + snr)
    sel = r.n_coefficients >= 100
    assert np.max(np.abs(r.correlation - theory)[sel] * np.sqrt(r.n_coefficients[sel])) < 4.0
    with pytest.raises(InputError, match="3D"):
        m.fourier_shell_correlation(a[0], b[0])


def test_frc_thresholds():
    n = np.array([1e12])
    assert m.frc_threshold("half-bit", n)[0] == pytest.approx(0.2071 / 1.2071, rel=1e-4)
    assert m.frc_threshold("one-bit", n)[0] == pytest.approx(0.5 / 1.5, rel=1e-4)
    assert m.frc_threshold("half-bit", [8])[0] > m.frc_threshold("half-bit", [800])[0]
    assert m.frc_threshold(0.143, [5, 6]).tolist() == [0.143, 0.143]
    with pytest.raises(InputError):
        m.frc_threshold("two-bit", n)


def test_frc_taper_removes_edge_artefact():
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[:256, :256]
    ramp = 50.0 * xx / 256 + 30.0 * yy / 256  # not periodic: a jump at the wrap-around
    a = ramp + rng.normal(size=ramp.shape)
    b = ramp + rng.normal(size=ramp.shape)
    high = {"f_min": 0.25}
    assert m.fourier_ring_correlation(a, b, taper=0).mean(**high) > 0.1
    assert abs(m.fourier_ring_correlation(a, b, taper=0.1).mean(**high)) < 0.03


def test_frc_with_mask_and_errors():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(64, 64))
    mask = np.zeros((64, 64))
    mask[16:48, 16:48] = 1.0
    r = m.fourier_ring_correlation(a, a, mask=mask)
    np.testing.assert_allclose(r.correlation[1:], 1.0, atol=1e-12)
    with pytest.raises(InputError, match="same shape"):
        m.fourier_ring_correlation(a, a[:-1])
    bad = a.copy()
    bad[0, 0] = np.inf
    with pytest.raises(InputError, match="image_b contains 1 NaN"):
        m.fourier_ring_correlation(a, bad)
    with pytest.raises(InputError, match="zero everywhere"):
        m.fourier_ring_correlation(a, a, mask=np.zeros_like(a), taper=0)
    # no FRC at all: a constant image (no ring has power), or too few rings to Nyquist
    with pytest.raises(InputError, match="image_b is constant: a constant image has no FRC"):
        m.fourier_ring_correlation(a, np.full_like(a, 2.0))
    with pytest.raises(InputError, match=r"image_a \(3, 3\) is too small for an FRC"):
        m.fourier_ring_correlation(a[:3, :3], a[3:6, :3])


# ----------------------------------------------------------------------------- ground truth


def test_psnr_and_snr_after_affine_fit_are_invariant():
    rng = np.random.default_rng(6)
    truth = rng.normal(size=(96, 96)).cumsum(0)
    noisy = truth + rng.normal(0, 0.5, truth.shape)
    p = m.psnr_db(noisy, truth)
    for a, b in ((3.0, 1.0), (-0.01, 1e3), (1e4, -5.0)):
        assert m.psnr_db(a * noisy + b, truth) == pytest.approx(p, abs=1e-9)
        assert m.snr_vs_truth_db(a * noisy + b, truth) == pytest.approx(
            m.snr_vs_truth_db(noisy, truth), abs=1e-9
        )
    peak = truth.max() - truth.min()
    assert m.psnr_db(noisy, truth, fit="none") == pytest.approx(
        10 * math.log10(peak**2 / 0.25), abs=0.2
    )
    assert m.snr_vs_truth_db(noisy, truth, fit="none") == pytest.approx(
        10 * math.log10(truth.var() / 0.25), abs=0.2
    )
    assert m.psnr_db(truth, truth) == math.inf
    a, b = m.affine_fit(2 * truth + 1, truth)
    assert (a, b) == (pytest.approx(0.5), pytest.approx(-0.5))
    with pytest.raises(InputError, match="same shape"):
        m.psnr_db(noisy, truth[1:])
    with pytest.raises(InputError, match="constant"):
        m.snr_vs_truth_db(noisy, np.ones_like(truth))


def test_ssim_identical_and_monotone_in_noise():
    rng = np.random.default_rng(7)
    truth, _ = _lowpass_signal((128, 128), 0.08, rng)
    assert m.ssim(truth, truth) == pytest.approx(1.0, abs=1e-12)
    assert m.ssim(5 * truth + 2, truth) == pytest.approx(1.0, abs=1e-9)  # affine fit
    scores = [m.ssim(truth + rng.normal(0, s, truth.shape), truth) for s in (0.01, 0.05, 0.2, 1)]
    assert all(x > y for x, y in zip(scores, scores[1:], strict=False))
    value, smap = m.ssim(truth, truth, full=True)
    assert smap.shape == truth.shape
    vol, _ = _lowpass_signal((24, 24, 24), 0.1, rng)
    assert m.ssim(vol, vol) == pytest.approx(1.0)


def test_ssim_matches_skimage():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(8)
    truth, _ = _lowpass_signal((80, 90), 0.1, rng)
    noisy = truth + rng.normal(0, 0.1, truth.shape)
    rng_ = truth.max() - truth.min()
    ref = metrics.structural_similarity(
        noisy,
        truth,
        data_range=rng_,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert m.ssim(noisy, truth, fit="none") == pytest.approx(ref, abs=1e-10)


def test_holdout_nmse_ranks_like_truth():
    rng = np.random.default_rng(9)
    clean, _ = _lowpass_signal((128, 128), 0.05, rng)
    clean *= 5
    even = clean + rng.normal(size=clean.shape)
    odd = clean + rng.normal(size=clean.shape)
    from scipy.ndimage import gaussian_filter

    raw = m.holdout_nmse(even, odd)
    smooth = m.holdout_nmse(gaussian_filter(even, 2), odd)
    assert smooth < raw
    assert m.holdout_nmse(clean, odd) < smooth


# ----------------------------------------------------------------------------- noise


@pytest.mark.parametrize("method", ["laplacian", "spectrum"])
def test_noise_sigma_white_noise(method):
    rng = np.random.default_rng(10)
    for sigma in (0.5, 3.0):
        est = m.estimate_noise_sigma(rng.normal(7, sigma, (512, 512)), method=method)
        assert est == pytest.approx(sigma, rel=0.05)
    est = m.estimate_noise_sigma(rng.normal(0, 2.0, (48, 64, 64)), method=method)
    assert est == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("method", ["laplacian", "spectrum"])
def test_noise_sigma_with_smooth_signal(method):
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[:512, :512] / 512
    smooth = 40 * np.sin(2 * np.pi * 2 * xx) * np.cos(2 * np.pi * 3 * yy) + 100 * xx + 30
    est = m.estimate_noise_sigma(smooth + rng.normal(0, 1.5, smooth.shape), method=method)
    assert est == pytest.approx(1.5, rel=0.05)
    with pytest.raises(InputError):
        m.estimate_noise_sigma(np.ones((2, 2)) if method == "laplacian" else smooth, method="x")


# ----------------------------------------------------------------------------- memmaps


def test_metrics_work_on_memmaps(tmp_path, contrast_image):
    img, _, sig, bg = contrast_image
    path = tmp_path / "img.dat"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=img.shape)
    mm[:] = img
    mm.flush()
    ro = np.memmap(path, dtype=np.float32, mode="r", shape=img.shape)
    f32 = img.astype(np.float32)
    assert m.snr_db(ro, sig, bg) == pytest.approx(m.snr_db(f32, sig, bg))
    assert m.fourier_ring_correlation(ro, f32).correlation[1:] == pytest.approx(1.0)
    assert m.psnr_db(ro, f32) == math.inf
    assert m.ssim(ro, f32) == pytest.approx(1.0)
    assert m.estimate_noise_sigma(ro) == pytest.approx(m.estimate_noise_sigma(f32))
    uint = np.memmap(tmp_path / "u.dat", dtype=np.uint16, mode="w+", shape=(64, 64))
    uint[:] = 3
    assert m.estimate_noise_sigma(uint) == 0.0


def test_ssim_default_fit_does_not_reward_flat_images():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(12)
    truth, _ = _lowpass_signal((128, 128), 0.03, rng)
    noisy = truth + rng.normal(0, 5 * truth.std(), truth.shape)
    smooth = gaussian_filter(noisy, 4)
    assert m.ssim(noisy, truth) < m.ssim(smooth, truth)
    # least squares shrinks the very noisy image to nearly flat, which SSIM rewards
    assert m.ssim(noisy, truth, fit="affine") > m.ssim(noisy, truth)


def test_regions_to_labels_round_trip(contrast_image):
    img, _, sig, bg = contrast_image
    labels = m.regions_to_labels(sig, img.shape)
    assert labels.dtype == np.int32 and labels.max() == len(sig)
    assert np.count_nonzero(labels) == sum(r.size for r in sig)
    s2, b2 = m.regions_from_labels(labels, m.regions_to_labels(bg, img.shape))
    assert m.snr_db(img, s2, b2) == pytest.approx(m.snr_db(img, sig, bg))
    edge = m.region_from_disc((1.0, 1.0), 4)  # partly outside the image: clipped
    yy, xx = np.mgrid[:10, :10]
    np.testing.assert_array_equal(
        m.regions_to_labels([edge], (10, 10)), (np.hypot(yy - 1, xx - 1) <= 4).astype(np.int32)
    )
