"""Fourier ring / shell correlation and resolution criteria (0.143, 0.5, half-bit, ...)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import fft as sfft

from ..errors import InputError
from ._common import Criterion, _as_array, _f64, _same_shape

__all__ = [
    "CROSSING_RULE",
    "MIN_FRC_SIDE",
    "FRCResult",
    "check_frc_image",
    "dependence_warning",
    "fourier_ring_correlation",
    "fourier_shell_correlation",
    "frc_threshold",
    "pixel_size_mismatch",
]

#: A crossing stays below the threshold for this many rings (see ``crossing_frequency``).
SUSTAIN_RINGS = 3
#: Drops within this fraction of the frequencies up to Nyquist are not taken for the crossing.
LOW_FRACTION = 0.02
#: A curve above 0.143 beyond this fraction of Nyquist suggests dependent images.
NEAR_NYQUIST = 0.8
#: Shortest side (pixels) of an image with an FRC: 8 rings up to Nyquist.
MIN_FRC_SIDE = 16
#: Pixel sizes closer than this (relative) are the same.
PIXEL_SIZE_RTOL = 1e-3
#: The crossing rule in words (for tables, plots and the README).
CROSSING_RULE = (
    f"first frequency where the FRC falls below the threshold and stays below for "
    f"{SUSTAIN_RINGS} rings; dips within the lowest {LOW_FRACTION:.0%} of frequencies are ignored"
)


def frc_threshold(criterion: Criterion, n_coefficients: ArrayLike) -> np.ndarray:
    """Threshold curve for an FRC/FSC criterion.

    Parameters
    ----------
    criterion : float or {"half-bit", "one-bit", "3sigma"}
        A fixed value (0.143, 0.5, ...) or an information criterion of
        van Heel & Schatz (2005), which depends on the number ``n`` of Fourier
        coefficients in each ring/shell: half-bit
        ``(0.2071 + 1.9102/sqrt(n)) / (1.2071 + 0.9102/sqrt(n))``, one-bit
        ``(0.5 + 2.4142/sqrt(n)) / (1.5 + 1.4142/sqrt(n))``, 3-sigma ``3/sqrt(n)``.
    n_coefficients : array_like
        Coefficients per ring (:attr:`FRCResult.n_coefficients`).

    """
    n = np.maximum(np.asarray(n_coefficients, dtype=np.float64), 1.0)
    if isinstance(criterion, str):
        r = 1.0 / np.sqrt(n)
        if criterion == "half-bit":
            return (0.2071 + 1.9102 * r) / (1.2071 + 0.9102 * r)
        if criterion == "one-bit":
            return (0.5 + 2.4142 * r) / (1.5 + 1.4142 * r)
        if criterion == "3sigma":
            return 3.0 * r
        raise InputError(
            f"unknown FRC criterion {criterion!r}; use a number, 'half-bit', 'one-bit' or '3sigma'"
        )
    return np.full(n.shape, float(criterion))


@dataclass(frozen=True, eq=False)
class FRCResult:
    """A Fourier ring (2D) or shell (3D) correlation curve.

    Attributes
    ----------
    frequency : numpy.ndarray
        Ring centre spatial frequency in 1/Angstrom (1/pixel when
        ``pixel_size`` is 1). Ring ``k`` is at ``k * step`` with ``step`` the
        frequency spacing of the shortest axis; ring 0 is the origin.
    correlation : numpy.ndarray
        FRC value per ring (NaN where a ring is empty or one image has no power).
    n_coefficients : numpy.ndarray
        Fourier coefficients per ring over the full plane (both Friedel mates).
    pixel_size : float
        Angstrom per pixel used for ``frequency``.

    """

    frequency: np.ndarray
    correlation: np.ndarray
    n_coefficients: np.ndarray
    pixel_size: float

    def threshold(self, criterion: Criterion = 0.143) -> np.ndarray:
        """Return the threshold curve for ``criterion`` on this result's rings."""
        return frc_threshold(criterion, self.n_coefficients)

    def crossing_frequency(
        self,
        criterion: Criterion = 0.143,
        *,
        sustain: int = SUSTAIN_RINGS,
        low_fraction: float = LOW_FRACTION,
    ) -> float | None:
        """Frequency (1/A) where the curve falls below the threshold for good.

        The crossing is the start of the first run of consecutive (non-empty)
        rings below the threshold that either has at least ``sustain`` rings
        beyond the lowest ``low_fraction`` of the frequencies up to Nyquist,
        or lasts to the last ring. A short dip, or one confined to the lowest
        frequencies (few coefficients; often a low-frequency trough of the
        signal), is not taken for the resolution limit. The frequency is
        interpolated linearly between the last ring above and the first ring
        below. ``sustain=1, low_fraction=0`` gives the plain first crossing.

        Returns
        -------
        float or None
            None if the curve never falls below for good (the images agree up
            to Nyquist); 0.0 if it is below from the first ring on.

        """
        diff = self.correlation - self.threshold(criterion)
        rings = [k for k in range(1, len(diff)) if np.isfinite(diff[k])]
        low = math.ceil(low_fraction * (len(diff) - 1) - 1e-9)
        i = 0
        while i < len(rings):
            if diff[rings[i]] >= 0:
                i += 1
                continue
            j = i
            while j < len(rings) and diff[rings[j]] < 0:
                j += 1
            beyond = sum(1 for k in rings[i:j] if k >= low)
            if beyond >= max(1, sustain) or j == len(rings):
                if i == 0:
                    return 0.0
                prev, k = rings[i - 1], rings[i]
                t = diff[prev] / (diff[prev] - diff[k])
                f0, f1 = self.frequency[prev], self.frequency[k]
                return float(f0 + t * (f1 - f0))
            i = j
        return None

    def looks_dependent(self) -> bool:
        """Whether the curve looks like that of two images sharing their noise.

        Independent noisy halves of a cryo-EM image decorrelate well before
        Nyquist. An image compared with a filtered or denoised version of
        itself often does not: its 0.143 crossing lies beyond
        :data:`NEAR_NYQUIST` of Nyquist, or there is none. (A strongly
        smoothing denoiser can hide the dependence; callers that know the
        images' provenance should check it too.) See :func:`dependence_warning`.
        """
        f = self.crossing_frequency(0.143)
        return f is None or f >= NEAR_NYQUIST * float(self.frequency[-1])

    def resolution(self, criterion: Criterion = 0.143) -> float:
        """Resolution in Angstrom at ``criterion`` (``1 / crossing_frequency``).

        If the curve never falls below the threshold, the Nyquist resolution
        ``1 / frequency[-1]`` is returned (the true value is at least that
        good); ``inf`` if it falls below at the first ring.
        """
        f = self.crossing_frequency(criterion)
        if f is None:
            return float(1.0 / self.frequency[-1])
        return float(1.0 / f) if f > 0 else math.inf

    def mean(self, f_min: float = 0.0, f_max: float | None = None) -> float:
        """Coefficient-weighted mean correlation over a frequency band (1/A)."""
        f_max = self.frequency[-1] if f_max is None else f_max
        sel = (self.frequency >= f_min) & (self.frequency <= f_max) & np.isfinite(self.correlation)
        sel[0] = False
        w = self.n_coefficients[sel]
        return float(np.sum(w * self.correlation[sel]) / np.sum(w)) if w.sum() else math.nan


def check_frc_image(image: ArrayLike, name: str = "image") -> None:
    """Raise when ``image`` has no FRC: too small for a curve, or constant.

    Raises
    ------
    InputError
        One line naming ``name``: fewer than :data:`MIN_FRC_SIDE` pixels on a
        side, no variation at all, or not a finite numeric array of 2 or more
        dimensions.

    """
    a = _as_array(image, name, min_ndim=2)
    if min(a.shape) < MIN_FRC_SIDE:
        raise InputError(
            f"{name} {a.shape} is too small for an FRC: it needs at least {MIN_FRC_SIDE} "
            f"pixels on each side ({MIN_FRC_SIDE // 2} rings up to Nyquist)"
        )
    if not float(a.max()) > float(a.min()):
        raise InputError(f"{name} is constant: a constant image has no FRC")


def pixel_size_mismatch(
    size_a: float | None, size_b: float | None, name_a: str = "A", name_b: str = "B"
) -> str | None:
    """One line when two images' pixel sizes (Angstrom, None: unknown) differ, else None.

    An FRC pairs frequencies by ring index: of images with different pixel
    sizes it correlates different physical frequencies.
    """
    if not size_a or not size_b or math.isclose(size_a, size_b, rel_tol=PIXEL_SIZE_RTOL):
        return None
    return (
        f"{name_a} has {size_a:g} A/px and {name_b} {size_b:g} A/px: an FRC of images with "
        "different pixel sizes compares different frequencies"
    )


def _taper_window(shape: tuple[int, ...], taper: float) -> np.ndarray | None:
    """Separable raised-cosine edge window; ``taper`` = fall-off as a fraction of each axis."""
    if taper <= 0:
        return None
    if taper > 0.5:
        raise InputError(f"taper must be in [0, 0.5], got {taper}")
    window: np.ndarray | None = None
    for axis, n in enumerate(shape):
        width = max(1, int(round(taper * n)))
        w = np.ones(n)
        ramp = 0.5 * (1.0 - np.cos(np.pi * (np.arange(width) + 0.5) / width))
        w[:width] = ramp
        w[n - width :] = np.minimum(w[n - width :], ramp[::-1])
        view = w.reshape([-1 if a == axis else 1 for a in range(len(shape))])
        window = view if window is None else window * view
    return window


def _prepare(x: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """Float64 copy of ``x`` minus its (weighted) mean, times the weight."""
    out = np.array(x, dtype=np.float64)
    if weight is None:
        out -= out.mean()
        return out
    out -= np.sum(out * weight) / np.sum(weight)
    out *= weight
    return out


def _ring_index(shape: tuple[int, ...], bin_width: float) -> tuple[np.ndarray, float, int]:
    """Ring index of every rfftn coefficient, the ring step (cycles/px) and the last ring."""
    step = bin_width / min(shape)
    r2 = np.zeros([1] * len(shape))
    for axis, n in enumerate(shape):
        f = sfft.rfftfreq(n) if axis == len(shape) - 1 else sfft.fftfreq(n)
        r2 = r2 + (f**2).reshape([-1 if a == axis else 1 for a in range(len(shape))])
    index = np.rint(np.sqrt(r2) / step).astype(np.int64)
    last = int(math.floor(0.5 / step + 1e-9))
    return index, step, last


def _rfft_weights(shape: tuple[int, ...]) -> np.ndarray:
    """Multiplicity of each rfftn coefficient in the full spectrum (1 or 2)."""
    n = shape[-1]
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w.reshape([1] * (len(shape) - 1) + [-1])


def fourier_ring_correlation(
    image_a: ArrayLike,
    image_b: ArrayLike,
    *,
    pixel_size: float = 1.0,
    taper: float = 0.05,
    mask: ArrayLike | None = None,
    bin_width: float = 1.0,
    workers: int | None = None,
) -> FRCResult:
    """Fourier ring (2D) or shell (3D, any nD) correlation of two images.

    ``FRC(k) = Re sum F_a F_b* / sqrt(sum |F_a|^2 sum |F_b|^2)`` over the
    coefficients of ring ``k``. Typical pairs: the even and odd half sums of a
    movie; ``denoise(even)`` vs ``denoise(odd)``; ``denoise(even)`` vs the raw
    odd half. Both images have their (weighted) mean removed, then are
    multiplied by the edge taper and the mask before the FFT, so the periodic
    boundary's jump does not add a spurious correlated cross to the spectrum.

    Parameters
    ----------
    image_a, image_b : array_like
        Same shape, 2D or more (memory maps are fine).
    pixel_size : float
        Angstrom per pixel, for ``frequency`` in 1/A (1.0 gives 1/px).
    taper : float
        Width of the raised-cosine fall-off at every edge as a fraction of
        the axis length (0 disables; default 0.05).
    mask : array_like, optional
        Soft mask in [0, 1] (same shape), multiplied with the taper.
    bin_width : float
        Ring width in units of the shortest axis's frequency spacing.
    workers : int, optional
        FFT threads (scipy.fft); default 1.

    Returns
    -------
    FRCResult
        Rings from 0 to the Nyquist frequency of the shortest axis (corner
        frequencies beyond it are left out).

    Raises
    ------
    InputError
        Shapes differ, or an image has no FRC (:func:`check_frc_image`: too
        small, constant, not finite).

    """
    a = _as_array(image_a, "image_a", min_ndim=2)
    b = _as_array(image_b, "image_b", min_ndim=2)
    _same_shape(a, b, "image_a", "image_b")
    check_frc_image(a, "image_a")
    check_frc_image(b, "image_b")
    if not pixel_size > 0:
        raise InputError(f"pixel_size must be > 0, got {pixel_size}")
    if not bin_width > 0:
        raise InputError(f"bin_width must be > 0, got {bin_width}")
    weight = _taper_window(a.shape, taper)
    if mask is not None:
        m = _as_array(mask, "mask")
        _same_shape(a, m, "image", "mask")
        weight = _f64(m) if weight is None else weight * m
        if not np.any(weight > 0):
            raise InputError("mask is zero everywhere")
    fa = sfft.rfftn(_prepare(a, weight), workers=workers or 1)
    fb = sfft.rfftn(_prepare(b, weight), workers=workers or 1)
    index, step, last = _ring_index(a.shape, bin_width)
    nbin = last + 1
    index[index > last] = nbin  # corners beyond Nyquist: an overflow bin, dropped below
    index = index.reshape(-1)
    mult = np.broadcast_to(_rfft_weights(a.shape), fa.shape).reshape(-1)

    def ring_sum(values: np.ndarray) -> np.ndarray:
        return np.bincount(index, values.reshape(-1) * mult, nbin + 1)[:nbin]

    cross = ring_sum(fa.real * fb.real + fa.imag * fb.imag)
    pa = ring_sum(fa.real**2 + fa.imag**2)
    pb = ring_sum(fb.real**2 + fb.imag**2)
    count = np.bincount(index, mult, nbin + 1)[:nbin]
    with np.errstate(invalid="ignore", divide="ignore"):
        frc = cross / np.sqrt(pa * pb)
    frc[(count == 0) | ~(pa * pb > 0)] = np.nan
    freq = np.arange(nbin) * step / pixel_size
    return FRCResult(freq, frc, count, float(pixel_size))


def dependence_warning(result: FRCResult, a: str = "A", b: str = "B") -> str | None:
    """A one-line warning when an FRC curve looks like that of two dependent images.

    The FRC measures resolution only between images with independent noise
    (the even and odd frame sums, or denoise(even) vs the raw odd half). An
    image against its own denoised or filtered version shares its noise and
    stays correlated up to (nearly) Nyquist, so its "resolution" is
    meaningless. Returns None unless :meth:`FRCResult.looks_dependent`.
    """
    if not result.looks_dependent():
        return None
    return (
        f"{a} and {b} stay correlated up to about Nyquist: they may not be independent "
        "(e.g. an image and its own denoised version share their noise), so this FRC is no "
        "resolution; compare independent halves (even vs odd frame sums)"
    )


def fourier_shell_correlation(
    volume_a: ArrayLike, volume_b: ArrayLike, **kwargs: object
) -> FRCResult:
    """Fourier shell correlation of two volumes: :func:`fourier_ring_correlation` in 3D.

    Takes the same keyword arguments; rings become spherical shells.
    """
    a = np.asarray(volume_a)
    if a.ndim != 3:
        raise InputError(f"FSC needs 3D volumes, got shape {a.shape}")
    return fourier_ring_correlation(volume_a, volume_b, **kwargs)  # type: ignore[arg-type]
