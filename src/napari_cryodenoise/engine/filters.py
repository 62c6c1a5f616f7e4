"""Fourier low-pass, Fourier binning/resizing and the Gaussian pre-filter.

All functions work on 2D images and 3D volumes and return float32 arrays.
The Gaussian filter is separable, truncated at 5 sigma and uses zero padding,
so that, applied to a normalised (zero-mean) image, it equals Topaz's
``--gaussian`` pre-filter; :func:`gaussian_filter_torch` is the same filter on
tensors, used on tiles with a margin of :func:`gaussian_radius` pixels.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = [
    "bin_shape",
    "fourier_lowpass",
    "fourier_resize",
    "gaussian_filter",
    "gaussian_filter_torch",
    "gaussian_kernel1d",
    "gaussian_radius",
]

_WORKERS = -1  # scipy.fft: use all cores


def fourier_lowpass(image: np.ndarray, factor: float) -> np.ndarray:
    """Hard (box) low-pass in Fourier space; the image keeps its size.

    Every frequency component with ``|f| > 0.5 / factor`` cycles/pixel along any
    axis is set to zero (Topaz's ``--lowpass`` semantics). ``factor <= 1`` is a
    no-op that returns a float32 copy.

    Parameters
    ----------
    image : numpy.ndarray
        2D image or 3D volume.
    factor : float
        Low-pass factor in pixels (2 keeps frequencies up to half Nyquist).

    """
    data = np.asarray(image, dtype=np.float32)
    if factor is None or factor <= 1:
        return data.copy()
    spectrum = scipy.fft.rfftn(data, workers=_WORKERS)
    cutoff = 0.5 / float(factor)
    for axis, n in enumerate(data.shape):
        freq = np.fft.rfftfreq(n) if axis == data.ndim - 1 else np.fft.fftfreq(n)
        shape = [1] * data.ndim
        shape[axis] = freq.size
        keep = (np.abs(freq) <= cutoff).reshape(shape)
        spectrum *= keep
    out = scipy.fft.irfftn(spectrum, s=data.shape, workers=_WORKERS)
    return np.asarray(out, dtype=np.float32)


def bin_shape(shape: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """Shape after binning by ``factor`` (each axis rounded, at least 1)."""
    if not factor or factor <= 0 or not math.isfinite(factor):
        raise InputError(f"bin factor must be a positive number, got {factor!r}")
    return tuple(max(1, int(round(n / factor))) for n in shape)


def _crop_or_pad_centered(spec: np.ndarray, axis: int, new: int) -> np.ndarray:
    """Crop or zero-pad one full-FFT axis to ``new`` frequencies, DC kept at index 0."""
    old = spec.shape[axis]
    if new == old:
        return spec
    shifted = np.fft.fftshift(spec, axes=axis)
    if new < old:
        start = old // 2 - new // 2
        index = [slice(None)] * spec.ndim
        index[axis] = slice(start, start + new)
        out = shifted[tuple(index)]
    else:
        shape = list(spec.shape)
        shape[axis] = new
        out = np.zeros(shape, dtype=spec.dtype)
        start = new // 2 - old // 2
        index = [slice(None)] * spec.ndim
        index[axis] = slice(start, start + old)
        out[tuple(index)] = shifted
    return np.fft.ifftshift(out, axes=axis)


def fourier_resize(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resize by cropping (binning) or zero-padding (upsampling) the Fourier transform.

    The mean intensity is preserved. Cropping is an ideal anti-aliased
    down-sampling; padding an ideal band-limited interpolation, so binning and
    then restoring a band-limited image returns it unchanged.

    Parameters
    ----------
    image : numpy.ndarray
        2D image or 3D volume.
    shape : tuple of int
        New shape, same number of dimensions.

    """
    data = np.asarray(image, dtype=np.float32)
    shape = tuple(int(n) for n in shape)
    if len(shape) != data.ndim:
        raise InputError(f"resize to {shape}: expected {data.ndim} dimensions")
    if any(n < 1 for n in shape):
        raise InputError(f"resize to {shape}: every size must be >= 1")
    if shape == data.shape:
        return data.copy()
    spectrum = scipy.fft.rfftn(data, workers=_WORKERS)
    for axis in range(data.ndim - 1):
        spectrum = _crop_or_pad_centered(spectrum, axis, shape[axis])
    last_new = shape[-1] // 2 + 1
    last_old = spectrum.shape[-1]
    if last_new < last_old:
        spectrum = spectrum[..., :last_new]
    elif last_new > last_old:
        pad = [(0, 0)] * (data.ndim - 1) + [(0, last_new - last_old)]
        spectrum = np.pad(spectrum, pad)
    out = scipy.fft.irfftn(spectrum, s=shape, workers=_WORKERS)
    out *= np.prod(shape) / np.prod(data.shape)
    return np.asarray(out, dtype=np.float32)


def gaussian_radius(sigma: float) -> int:
    """Half-width in pixels of the truncated Gaussian kernel (``ceil(5 sigma)``)."""
    if not sigma or sigma <= 0:
        return 0
    return int(math.ceil(5.0 * float(sigma)))


def gaussian_kernel1d(sigma: float) -> np.ndarray:
    """Normalised 1D Gaussian of width ``2 * ceil(5 sigma) + 1`` (float64)."""
    radius = gaussian_radius(sigma)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / float(sigma)) ** 2)
    return kernel / kernel.sum()


def gaussian_filter(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian filter with zero padding (2D or 3D), float32 result.

    ``sigma <= 0`` returns a float32 copy.
    """
    data = np.asarray(image, dtype=np.float32)
    if not sigma or sigma <= 0:
        return data.copy()
    with torch.inference_mode():
        tensor = torch.from_numpy(np.ascontiguousarray(data))[None, None]
        out = gaussian_filter_torch(tensor, sigma)[0, 0]
    return out.numpy()


def gaussian_filter_torch(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian filter of an ``(N, 1, *spatial)`` tensor, zero padding, same size.

    Computed in float32 whatever the input dtype, returned in the input dtype.
    """
    if not sigma or sigma <= 0:
        return x
    ndim = x.ndim - 2
    if ndim not in (2, 3):
        raise ValueError(f"expected a 4D or 5D tensor, got shape {tuple(x.shape)}")
    kernel = torch.as_tensor(gaussian_kernel1d(sigma), dtype=torch.float32, device=x.device)
    radius = kernel.numel() // 2
    out = x.float()
    conv = F.conv2d if ndim == 2 else F.conv3d
    for axis in range(ndim):
        shape = [1, 1] + [1] * ndim
        shape[2 + axis] = kernel.numel()
        padding = [0] * ndim
        padding[axis] = radius
        out = conv(out, kernel.reshape(shape), padding=tuple(padding))
    return out.to(x.dtype)
