"""Global drift of a movie: per-frame shifts by cross-correlation, applied in Fourier space.

:func:`estimate_drift` measures the shifts that align a movie's frames;
:func:`phase_ramp` is the Fourier factor that applies a (sub-pixel) shift.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import fft as sfft

from ..errors import Cancelled
from ..io.movies import MovieReader
from ..types import CancelFn, ProgressFn

__all__ = ["estimate_drift", "phase_ramp"]

#: Alignment spectra kept in memory at most (bytes); frames are Fourier-cropped to fit.
_ALIGN_MEMORY = 256 * 1024**2
#: Largest side of the Fourier-cropped frames used to measure drift.
_ALIGN_SIZE = 1024


def _crop_shape(shape: tuple[int, int], n_frames: int) -> tuple[int, int]:
    """Size of the Fourier-cropped frames used for drift estimation."""
    h, w = shape
    scale = min(1.0, _ALIGN_SIZE / max(h, w))
    # each kept spectrum is complex64: 8 bytes * h' * (w'/2+1)
    while n_frames * 8 * (h * scale) * (w * scale / 2 + 1) > _ALIGN_MEMORY and scale > 0.05:
        scale *= 0.8
    ch = max(16, int(h * scale) // 2 * 2)
    cw = max(16, int(w * scale) // 2 * 2)
    return min(ch, h - h % 2), min(cw, w - w % 2)


def _fourier_crop(spec: np.ndarray, shape: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """Keep the low frequencies of an rfft2 spectrum of ``shape`` for a smaller image ``out``."""
    h, _ = shape
    oh, ow = out
    top = spec[: oh // 2]
    bottom = spec[h - oh // 2 :]
    return np.concatenate([top, bottom], axis=0)[:, : ow // 2 + 1]


def phase_ramp(shape: tuple[int, int], shift: tuple[float, float]) -> np.ndarray:
    """rfft2-grid factor that shifts an image by ``shift`` (dy, dx) pixels."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    return np.exp(-2j * np.pi * (ky * shift[0] + kx * shift[1]))


def _peak_subpixel(
    cc: np.ndarray, radius: float, centre: Sequence[float] = (0.0, 0.0)
) -> tuple[float, float]:
    """Sub-pixel location (dy, dx) of the maximum of a circular cross-correlation.

    Only displacements within ``radius`` (per axis) of ``centre`` are searched.
    """
    h, w = cc.shape
    cy, cx = h // 2, w // 2
    cc = np.fft.fftshift(cc)
    yy = np.abs(np.arange(h) - cy - centre[0])[:, None]
    xx = np.abs(np.arange(w) - cx - centre[1])[None, :]
    masked = np.where((yy <= radius) & (xx <= radius), cc, -np.inf)
    if not np.isfinite(masked).any():
        return float(centre[0]), float(centre[1])
    py, px = np.unravel_index(int(np.argmax(masked)), cc.shape)

    def refine(m1: float, c0: float, p1: float) -> float:
        denom = m1 - 2.0 * c0 + p1
        if denom >= 0:
            return 0.0
        return float(np.clip(0.5 * (m1 - p1) / denom, -0.5, 0.5))

    dy = refine(cc[(py - 1) % h, px], cc[py, px], cc[(py + 1) % h, px])
    dx = refine(cc[py, (px - 1) % w], cc[py, px], cc[py, (px + 1) % w])
    return py - cy + dy, px - cx + dx


def _smooth_trajectory(time: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Least-squares polynomial (degree 1-3, chosen by BIC) through noisy per-frame shifts."""
    n = len(time)
    best, best_bic = measured, np.inf
    for degree in range(1, min(3, n - 2) + 1):
        design = np.vander(time, degree + 1)
        coef, *_ = np.linalg.lstsq(design, measured, rcond=None)
        fit = design @ coef
        rss = float(np.sum((measured - fit) ** 2)) + 1e-12
        bic = 2 * n * np.log(rss / (2 * n)) + 2 * (degree + 1) * np.log(2 * n)
        if bic < best_bic:
            best, best_bic = fit, bic
    return best


def estimate_drift(
    reader: MovieReader,
    indices: Sequence[int],
    *,
    iterations: int = 4,
    max_shift: float | None = None,
    filter_px: float = 5.0,
    smooth: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> np.ndarray:
    """Global per-frame shifts that align the chosen frames (cross-correlation).

    One streaming pass Fourier-transforms each frame and keeps a low-pass,
    Fourier-cropped spectrum (at most ~1024 px per side, 256 MB in all).
    Then, ``iterations`` times, every frame is cross-correlated with the sum
    of all *other* frames at their current shifts (leaving the frame out
    avoids the self-correlation of its own noise at zero shift), the peak is
    located to sub-pixel precision by a parabolic fit, and the shifts are
    re-centred to zero mean. With ``smooth`` the shifts are then replaced by a
    least-squares polynomial in time (linear, quadratic or cubic, chosen by
    the Bayesian information criterion), as stage drift is smooth: this
    averages out the large per-frame errors of low-dose frames, and later
    iterations search only near that trajectory.

    Parameters
    ----------
    reader : MovieReader
        The movie.
    indices : sequence of int
        Frames to align.
    iterations : int
        Refinement rounds against the leave-one-out reference.
    max_shift : float, optional
        Largest shift searched, px at full resolution (default: an eighth of
        the smaller side, at most 64 px).
    filter_px : float
        Gaussian low-pass (sigma, px of the cropped frames) applied to the
        cross-correlation to suppress shot noise.
    smooth : bool
        Fit a smooth trajectory (see above) instead of independent shifts.
    progress, cancel : callable, optional
        ``progress(done, total)`` over the frames read; ``cancel()`` -> True stops.

    Returns
    -------
    numpy.ndarray
        ``(len(indices), 2)`` shifts ``(dy, dx)`` in px to apply to each frame
        (zero mean).

    """
    shape = reader.frame_shape
    n = len(indices)
    crop = _crop_shape(shape, n)
    scale = np.array([shape[0] / crop[0], shape[1] / crop[1]])
    ky = np.fft.fftfreq(crop[0])[:, None]
    kx = np.fft.rfftfreq(crop[1])[None, :]
    lowpass = np.exp(-2.0 * (np.pi * filter_px) ** 2 * (ky**2 + kx**2)).astype(np.float32)
    spectra = np.empty((n, crop[0], crop[1] // 2 + 1), np.complex64)
    for k, i in enumerate(indices):
        if cancel is not None and cancel():
            raise Cancelled("drift estimation cancelled")
        f = reader.frame(i)
        f -= f.mean()
        spectra[k] = _fourier_crop(sfft.rfft2(f, workers=-1), shape, crop)
        if progress is not None:
            progress(k + 1, n)
    limit = min(min(shape) / 8.0, 64.0) if max_shift is None else float(max_shift)
    search = np.full(n, max(1.0, limit / scale.max()))
    shifts = np.zeros((n, 2))  # in cropped px
    time = np.linspace(-1.0, 1.0, n)
    for _ in range(max(1, iterations)):
        aligned = [
            spectra[k] * phase_ramp(crop, tuple(s)).astype(np.complex64)
            for k, s in enumerate(shifts)
        ]
        total = np.sum(aligned, axis=0)
        measured = np.empty_like(shifts)
        for k in range(n):
            ref = total - aligned[k]
            cc = sfft.irfft2(ref * np.conj(spectra[k]) * lowpass, s=crop, workers=-1)
            measured[k] = _peak_subpixel(cc, search[k], centre=shifts[k])
        if smooth and n >= 3:
            new = _smooth_trajectory(time, measured)
            residual = np.sqrt(np.mean(np.sum((measured - new) ** 2, axis=1)))
            search = np.full(n, max(2.0, 3.0 * residual))
        else:
            new = measured
        new -= new.mean(axis=0)
        done = np.max(np.abs(new - shifts)) < 0.01
        shifts = new
        if done:
            break
    return shifts * scale
