"""No-reference estimate of the white-noise level of an image."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import fft as sfft

from ..errors import InputError
from ._common import _as_array, _f64
from .frc import _prepare, _rfft_weights, _taper_window

__all__ = ["estimate_noise_sigma"]


def estimate_noise_sigma(
    image: ArrayLike,
    *,
    method: Literal["laplacian", "spectrum"] = "laplacian",
    band: tuple[float, float] = (0.35, 0.5),
) -> float:
    """Estimate the standard deviation of additive white noise from one image.

    ``method="laplacian"`` (default): the image is filtered with the separable
    second difference ``[1, -2, 1]`` along every axis (in 2D the 3x3 kernel of
    Immerkaer 1996, which annihilates constant, linear and bilinear signal);
    for white noise of std ``sigma`` the result has std ``sigma * 6**(ndim/2)``
    (the kernel's L2 norm). The residual's std is taken robustly as
    ``1.4826 * MAD`` (median absolute deviation), so edges and particles that
    survive the filter move the estimate little.

    ``method="spectrum"``: mean power in the high-frequency band
    ``band`` (cycles/pixel, radial) of the mean-subtracted, edge-tapered image,
    divided by the window's energy. For white noise the power spectrum is flat
    at ``sigma**2`` per pixel; smooth signal contributes nothing up there.

    Both assume white noise; for coloured (e.g. motion-corrected, dose
    weighted or binned) micrographs they report the noise level of the high
    frequencies, which is still useful to compare a raw and a denoised image
    in the same units.

    Parameters
    ----------
    image : array_like
        1D, 2D or 3D; memory maps are fine.
    method : {"laplacian", "spectrum"}
        Estimator (see above).
    band : (float, float)
        Radial frequency band of the spectrum method, in cycles per pixel.

    Returns
    -------
    float
        Estimated sigma, in the image's units.

    """
    x = _as_array(image, "image")
    if method == "laplacian":
        if min(x.shape) < 3:
            raise InputError(f"image {x.shape} is too small (needs >= 3 pixels per axis)")
        r = _f64(x)
        for axis in range(r.ndim):
            lo = [slice(None)] * r.ndim
            mid = [slice(None)] * r.ndim
            hi = [slice(None)] * r.ndim
            lo[axis], mid[axis], hi[axis] = slice(0, -2), slice(1, -1), slice(2, None)
            r = r[tuple(lo)] - 2.0 * r[tuple(mid)] + r[tuple(hi)]
        mad = float(np.median(np.abs(r - np.median(r))))
        return 1.4826 * mad / math.sqrt(6.0**x.ndim)
    if method == "spectrum":
        lo_f, hi_f = band
        if not 0 <= lo_f < hi_f:
            raise InputError(f"band must satisfy 0 <= low < high, got {band}")
        weight = _taper_window(x.shape, 0.05)
        f = sfft.rfftn(_prepare(x, weight))
        r2 = np.zeros([1] * x.ndim)
        for axis, n in enumerate(x.shape):
            fr = sfft.rfftfreq(n) if axis == x.ndim - 1 else sfft.fftfreq(n)
            r2 = r2 + (fr**2).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
        rad = np.sqrt(np.broadcast_to(r2, f.shape))
        sel = (rad >= lo_f) & (rad <= hi_f)
        mult = np.broadcast_to(_rfft_weights(x.shape), f.shape)[sel]
        if mult.sum() == 0:
            raise InputError(f"no Fourier coefficients in band {band}")
        power = np.sum(mult * (f.real[sel] ** 2 + f.imag[sel] ** 2)) / mult.sum()
        energy = float(np.sum(np.broadcast_to(weight, x.shape) ** 2))
        return math.sqrt(power / energy)
    raise InputError(f"method must be 'laplacian' or 'spectrum', got {method!r}")
