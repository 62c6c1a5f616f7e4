"""Scores against a reference: affine fit, PSNR, SNR, SSIM, noise2noise hold-out error."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage as ndi

from ..errors import InputError
from ._common import _CHUNK, Fit, _as_array, _f64, _same_shape

__all__ = ["affine_fit", "check_truth", "holdout_nmse", "psnr_db", "snr_vs_truth_db", "ssim"]

#: The SSIM window is truncated at this many sigma.
SSIM_TRUNCATE = 3.5


def affine_fit(image: ArrayLike, reference: ArrayLike) -> tuple[float, float]:
    """Least-squares ``a, b`` minimising ``sum (a * image + b - reference)**2``.

    A constant image gives ``a = 0`` and ``b = mean(reference)``.
    """
    x = _as_array(image, "image")
    t = _as_array(reference, "reference")
    _same_shape(x, t, "image", "reference")
    return _affine(x, t)


def _affine(x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    xm = float(np.mean(x, dtype=np.float64))
    tm = float(np.mean(t, dtype=np.float64))
    sxx = sxt = 0.0
    xf, tf = x.reshape(-1), t.reshape(-1)
    for start in range(0, xf.size, _CHUNK):
        dx = _f64(xf[start : start + _CHUNK]) - xm
        dt = _f64(tf[start : start + _CHUNK]) - tm
        sxx += float(dx @ dx)
        sxt += float(dx @ dt)
    a = sxt / sxx if sxx > 0 else 0.0
    return a, tm - a * xm


def _fitted(image: ArrayLike, truth: ArrayLike, fit: Fit) -> tuple[np.ndarray, np.ndarray]:
    """``image`` mapped onto ``truth``'s units, both as float64.

    ``"affine"``: least squares ``a * x + b``. ``"match"``: same mean and
    standard deviation as ``truth`` (sign of ``a`` from the correlation), so a
    noisy image is not shrunk towards its mean. ``"none"``: as is.
    """
    x = _as_array(image, "image")
    t = _as_array(truth, "truth")
    _same_shape(x, t, "image", "truth")
    if fit == "none":
        return _f64(x), _f64(t)
    if fit not in ("affine", "match"):
        raise InputError(f"fit must be 'affine', 'match' or 'none', got {fit!r}")
    a, b = _affine(x, t)
    xf = _f64(x)
    if fit == "match":
        sx = float(np.std(xf))
        st = float(np.std(t, dtype=np.float64))
        a = math.copysign(st / sx, a) if sx > 0 else 0.0
        b = float(np.mean(t, dtype=np.float64)) - a * float(xf.mean())
    xf *= a
    xf += b
    return xf, _f64(t)


def _mse(x: np.ndarray, t: np.ndarray) -> float:
    xf, tf = x.reshape(-1), t.reshape(-1)
    total = 0.0
    for start in range(0, xf.size, _CHUNK):
        d = xf[start : start + _CHUNK] - tf[start : start + _CHUNK]
        total += float(d @ d)
    return total / xf.size


def psnr_db(
    image: ArrayLike,
    truth: ArrayLike,
    *,
    fit: Fit = "affine",
    data_range: float | None = None,
) -> float:
    """Peak SNR in dB against a noise-free ground truth.

    ``10 log10(data_range**2 / mse)`` where ``mse`` is the mean squared error
    between ``a * image + b`` (the least-squares affine fit to ``truth``,
    unless ``fit="none"``) and ``truth``. The fit makes the score independent
    of the image's units and offset (normalised network output vs counts)
    and of a contrast inversion.

    Parameters
    ----------
    image, truth : array_like
        Same shape.
    fit : {"affine", "match", "none"}
        Map ``image`` onto ``truth`` by least squares first (default), by
        matching mean and standard deviation, or compare as is.
    data_range : float, optional
        Peak-to-peak of the signal; default ``truth.max() - truth.min()``.

    """
    x, t = _fitted(image, truth, fit)
    peak = float(t.max() - t.min()) if data_range is None else float(data_range)
    if not peak > 0:
        raise InputError("truth is constant: PSNR needs a data_range > 0")
    mse = _mse(x, t)
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def snr_vs_truth_db(image: ArrayLike, truth: ArrayLike, *, fit: Fit = "affine") -> float:
    """SNR in dB against ground truth: ``10 log10(var(truth) / mse)``.

    ``mse`` as in :func:`psnr_db` (after the affine fit by default, in which
    case this equals ``-10 log10(1 - r**2)`` with ``r`` the Pearson correlation).
    """
    x, t = _fitted(image, truth, fit)
    var_t = float(np.var(t))
    if not var_t > 0:
        raise InputError("truth is constant: its variance (the signal power) is zero")
    mse = _mse(x, t)
    return math.inf if mse == 0 else 10.0 * math.log10(var_t / mse)


def check_truth(truth: ArrayLike, *, sigma: float = 1.5) -> None:
    """Raise what :func:`psnr_db` and :func:`ssim` raise for ``truth``, computing neither.

    Raises
    ------
    InputError
        ``truth`` is constant, or too small for the SSIM window of ``sigma``.

    """
    t = _as_array(truth, "truth")
    if not float(t.max() - t.min()) > 0:
        raise InputError("truth is constant: PSNR and SSIM need a data_range > 0")
    _ssim_border(t.shape, sigma)


def _ssim_border(shape: tuple[int, ...], sigma: float) -> int:
    """Half the SSIM window (the border left out of the mean); too small a shape raises."""
    pad = int(SSIM_TRUNCATE * sigma + 0.5)
    if min(shape) <= 2 * pad:
        raise InputError(f"image {shape} is too small for an SSIM window of sigma {sigma}")
    return pad


def ssim(
    image: ArrayLike,
    truth: ArrayLike,
    *,
    fit: Fit = "match",
    data_range: float | None = None,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    full: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004), Gaussian window.

    Local means, variances and covariance are Gaussian-weighted (``sigma``
    1.5 px, truncated at 3.5 sigma, reflecting borders); the map
    ``((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``
    with ``C1 = (k1 L)^2`` and ``C2 = (k2 L)^2`` is averaged away from a
    border of half a window. With ``fit="none"`` this is numerically what
    ``skimage.metrics.structural_similarity(image, truth, data_range=L,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` gives.

    Parameters
    ----------
    image, truth : array_like
        Same shape, 2D or 3D.
    fit : {"match", "affine", "none"}
        How ``image`` is mapped onto ``truth``'s units first. ``"match"``
        (default) gives it the mean and standard deviation of ``truth``, so
        outputs in normalised units score fairly. ``"affine"`` (least squares)
        is *not* recommended for SSIM: it shrinks a very noisy image towards a
        flat one, whose local variances then vanish against ``C2`` and score
        deceptively high. ``"none"`` compares as is.
    data_range : float, optional
        ``L``; default ``truth.max() - truth.min()``.
    sigma, k1, k2 : float
        Window width and the stabilising constants.
    full : bool
        Also return the SSIM map.

    Returns
    -------
    float or (float, numpy.ndarray)
        Mean SSIM (1 for identical images), and the map if ``full``.

    """
    x, t = _fitted(image, truth, fit)
    peak = float(t.max() - t.min()) if data_range is None else float(data_range)
    if not peak > 0:
        raise InputError("truth is constant: SSIM needs a data_range > 0")
    truncate = SSIM_TRUNCATE
    pad = _ssim_border(x.shape, sigma)

    def blur(v: np.ndarray) -> np.ndarray:
        return ndi.gaussian_filter(v, sigma, mode="reflect", truncate=truncate)

    mx, my = blur(x), blur(t)
    vx = blur(x * x) - mx * mx
    vy = blur(t * t) - my * my
    cxy = blur(x * t) - mx * my
    c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    inner = tuple(slice(pad, n - pad) for n in smap.shape)
    value = float(smap[inner].mean(dtype=np.float64))
    return (value, smap) if full else value


def holdout_nmse(denoised: ArrayLike, heldout: ArrayLike, *, fit: Fit = "affine") -> float:
    """Noise2noise hold-out error: ``mse(a * denoised + b, heldout) / var(heldout)``.

    With ``denoised = f(even)`` and ``heldout`` the independent odd half,
    ``E[mse] = mse(f(even), clean) + noise variance of the odd half``, so this
    ranks denoisers like the (unavailable) ground-truth error does. Lower is
    better; 1.0 means no better than the held-out image's mean.
    """
    x, t = _fitted(denoised, heldout, fit)
    var_t = float(np.var(t))
    if not var_t > 0:
        raise InputError("held-out image is constant")
    return _mse(x, t) / var_t
