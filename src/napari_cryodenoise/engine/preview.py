"""The coarse whole-plane preview of a live view and its match to full-resolution tiles.

No Qt, no napari. A live view first shows a *coarse preview*: the prepared
plane shrunk to at most :data:`PREVIEW_SIZE` pixels, denoised (cheap), and
Fourier-upsampled back to the plane's shape. Exact full-resolution tiles then
replace it piece by piece.

The two are the same image at two resolutions, but not in the same units at
the particle scale: measured on a 0.854 A/px micrograph (fei-extended.mrc,
bin 3, 512-px tiles) the preview's large-scale brightness matches the tiles
(mean difference ~1 grey level for a contrast range of ~220) while its detail
band (features of one to a few preview pixels) has about half the tiles'
contrast (least-squares gain 1.4-2.5 per tile), because the network sees the
particles a few pixels wide and smooths them. Shown side by side that is a
patchwork of flat, hazy preview squares among crisp tiles.

So a preview carries its *detail* ``D = P - L`` (``L``: ``P`` low-passed with
a Gaussian of :data:`DETAIL_SIGMA` preview pixels) and the shown preview is
``L + gain * D + offset``, with ``gain`` and ``offset`` fitted by least
squares to the finished tiles (:class:`PreviewMatch`) and refitted as tiles
arrive. The large scale, which already matches, is never rescaled, so the
contrast limits taken from the first preview stay right.

A new live view shows a *sketch* first (:func:`sketch_preview`): the same
preview at :data:`SKETCH_SIZE` pixels, shrunk straight from the raw plane (or
from its display pyramid's coarsest level, block means already computed for
the raw layer) without waiting for the binned plane. It costs about half the
network work of the preview (measured on this project's 2-core CPU, unet:
~0.22 s at 256 px against ~0.45 s at 384 px) and differs from a sketch made
from the binned plane by ~1 % of its standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..types import CancelFn
from .pyramid import block_mean as block_mean_by
from .pyramid import shrink_for

#: Largest side of the coarse preview image (pixels, after binning).
PREVIEW_SIZE = 384
#: Largest side of the first, quicker preview of a new 2D live view (pixels, after binning).
SKETCH_SIZE = 256
#: Largest side of the coarse preview volume for 3D models (voxels).
PREVIEW_SIZE_3D = 96
#: Gaussian sigma (preview pixels) that splits a preview into its large scale and detail.
DETAIL_SIGMA = 4.0
#: Range of the fitted detail gain (a guard against a fit on a featureless tile).
GAIN_RANGE = (0.5, 4.0)


def preview_shape(shape: Sequence[int], size: int) -> tuple[int, ...]:
    """Shape with the longest side at most ``size`` and the aspect ratio kept."""
    factor = max(1.0, max(shape) / float(size))
    return tuple(max(1, round(n / factor)) for n in shape)


def fourier_gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` blurred with a Gaussian of ``sigma`` pixels (periodic edges), float32."""
    data = np.asarray(image, dtype=np.float32)
    if sigma <= 0:
        return data.copy()
    spectrum = np.fft.rfftn(data)
    freqs = [np.fft.fftfreq(n) for n in data.shape[:-1]] + [np.fft.rfftfreq(data.shape[-1])]
    grids = np.meshgrid(*freqs, indexing="ij", sparse=True)
    radius2 = sum(g**2 for g in grids)
    spectrum *= np.exp(-2.0 * (np.pi * sigma) ** 2 * radius2)
    axes = tuple(range(data.ndim))
    return np.fft.irfftn(spectrum, s=data.shape, axes=axes).astype(np.float32)


@dataclass(frozen=True)
class CoarsePreview:
    """A 2D coarse preview at the plane's resolution, ready for the main thread.

    Attributes
    ----------
    levels : list of numpy.ndarray
        ``[full, 2x, 4x, ...]`` display levels of the upsampled preview ``P``.
    detail : numpy.ndarray or None
        ``D = P - L``, its detail band at full resolution (None: nothing to match,
        e.g. the preview is exact).

    """

    levels: list[np.ndarray]
    detail: np.ndarray | None = None


class PreviewMatch:
    """Least-squares ``gain`` and ``offset`` that map a preview's detail onto finished tiles.

    With ``L = P - D`` the preview's large scale, the fit is
    ``tile - L ~ gain * D + offset`` over every finished tile's pixels (pooled
    sums, so each tile costs one pass). The shown preview is
    ``L + gain * D + offset``.

    Parameters
    ----------
    detail : numpy.ndarray
        ``D`` of the plane's preview (full resolution, 2D).

    """

    def __init__(self, detail: np.ndarray) -> None:
        self.detail = np.asarray(detail, dtype=np.float32)
        self.gain, self.offset = 1.0, 0.0  # what the shown preview uses now
        self._sums = np.zeros(5)  # n, sum x, sum y, sum xx, sum xy
        self.tiles = 0

    def add(self, shown: np.ndarray, tile: np.ndarray, ys: slice, xs: slice) -> None:
        """Add a finished tile; ``shown`` is the preview displayed in its place until now."""
        # every other pixel: the detail is band-limited to the preview's (coarser)
        # resolution, and this runs on the GUI thread
        d = self.detail[ys, xs][::2, ::2]
        large = shown[::2, ::2] - np.float32(self.gain) * d - np.float32(self.offset)
        x = d.astype(np.float64).ravel()
        y = (np.asarray(tile)[::2, ::2] - large).astype(np.float64).ravel()
        self._sums += (x.size, x.sum(), y.sum(), x @ x, x @ y)
        self.tiles += 1

    def fit(self) -> tuple[float, float]:
        """The ``(gain, offset)`` to show after the tiles added so far (1, 0 without any).

        The least-squares gain is shrunk towards 1 by ``tiles / (tiles + 1)``:
        the local gain varies from tile to tile (about +-20 % on real data),
        so one tile alone moves the preview only half way.
        """
        n, sx, sy, sxx, sxy = self._sums
        if n < 2:
            return 1.0, 0.0
        var = sxx / n - (sx / n) ** 2
        if var <= 1e-12:
            return 1.0, float(sy / n - sx / n)
        gain = (sxy / n - sx * sy / n**2) / var
        gain = float(np.clip(gain, *GAIN_RANGE))
        gain = 1.0 + (gain - 1.0) * self.tiles / (self.tiles + 1.0)
        return gain, float(sy / n - gain * sx / n)

    def refit(self, tolerance: float = 0.02) -> tuple[float, float] | None:
        """Adopt the new fit if it changes the preview noticeably.

        Returns ``(d_gain, d_offset)`` to add as ``d_gain * D + d_offset`` to
        the shown preview, or None when the change is below ``tolerance`` of
        the detail's standard deviation (no repaint needed).
        """
        gain, offset = self.fit()
        d_gain, d_offset = gain - self.gain, offset - self.offset
        n, sx, _, sxx, _ = self._sums
        spread = float(np.sqrt(max(sxx / n - (sx / n) ** 2, 0.0))) if n else 0.0
        if abs(d_gain) * spread + abs(d_offset) <= tolerance * max(spread, 1e-12):
            return None
        self.gain, self.offset = gain, offset
        return d_gain, d_offset

    def apply(self, region: np.ndarray, ys: slice, xs: slice, change: tuple[float, float]) -> None:
        """Update a shown preview ``region`` (in place) by a change from :meth:`refit`."""
        d_gain, d_offset = change
        region += np.float32(d_gain) * self.detail[ys, xs] + np.float32(d_offset)

    def shown(self, raw: np.ndarray, ys: slice, xs: slice) -> np.ndarray:
        """The preview to show for a raw (unmatched) preview region ``raw``."""
        d = self.detail[ys, xs]
        return raw + np.float32(self.gain - 1.0) * d + np.float32(self.offset)


def block_mean(image: np.ndarray, target: Sequence[int]) -> np.ndarray:
    """Cheap pre-shrink before a Fourier resize to ``target`` (:func:`.pyramid.shrink_for`)."""
    return shrink_for(image, target)


def coarse_preview(
    image: np.ndarray,
    model: Any,
    *,
    volume: bool = False,
    gaussian: float = 0.0,
    cancel: CancelFn | None = None,
    **engine_kwargs: Any,
) -> CoarsePreview | np.ndarray:
    """Denoise a prepared plane (or volume) coarsely, in one go.

    The image is shrunk (block means, then a Fourier crop) to at most
    :data:`PREVIEW_SIZE` pixels (:data:`PREVIEW_SIZE_3D` voxels for a
    ``volume``), denoised with its own statistics, and for 2D brought back to
    the full shape by Fourier padding, with its detail band (see the module
    docstring). Display levels are the caller's (see
    :func:`~napari_cryodenoise.engine.progressive.display_levels`).

    Parameters
    ----------
    image : numpy.ndarray
        The prepared (binned, low-passed) 2D plane or 3D volume.
    model : torch.nn.Module
        A loaded model.
    volume : bool
        3D model on a volume: return the small denoised volume as is.
    gaussian : float
        Gaussian sigma at full resolution (scaled down with the image).
    cancel : callable, optional
        Returns True to stop (the engine raises ``Cancelled``).
    **engine_kwargs
        ``device``, ``precision``, ``threads`` for :func:`~.inference.denoise`.

    Returns
    -------
    CoarsePreview or numpy.ndarray
        2D: the preview at full resolution; 3D: the small volume (float32).

    """
    from .filters import fourier_resize
    from .inference import denoise

    small_shape = preview_shape(image.shape, PREVIEW_SIZE_3D if volume else PREVIEW_SIZE)
    small = fourier_resize(block_mean(image, small_shape), small_shape)
    factor = image.shape[-1] / small_shape[-1]
    out = denoise(small, model, gaussian=gaussian / factor, cancel=cancel, **engine_kwargs)
    if volume:
        return np.asarray(out, np.float32)
    return expand_preview(out, tuple(image.shape))


def expand_preview(small: np.ndarray, shape: tuple[int, ...]) -> CoarsePreview:
    """A denoised small 2D plane brought back to ``shape``, with its detail band."""
    from .filters import fourier_resize

    full = [fourier_resize(small, shape)]
    if tuple(small.shape) == tuple(shape):
        return CoarsePreview(full)
    detail = small - fourier_gaussian(small, DETAIL_SIGMA)
    return CoarsePreview(full, fourier_resize(detail, shape))


def sketch_input(
    source: np.ndarray, shape: Sequence[int], size: int = SKETCH_SIZE, *, block: int = 1
) -> np.ndarray:
    """A 2D plane of ``shape`` at most ``size`` pixels, shrunk from ``source``.

    ``source`` covers the same field of view as the plane: the raw (unbinned)
    plane, or means of its ``block`` x ``block`` blocks (a display-pyramid
    level). It is block-averaged by a quarter of the integer reduction factor
    (so the box barely attenuates the kept band: ~3 % at its edge),
    Fourier-cropped, and shifted back by the half block that block means
    move the sampling grid, so it lines up with the Fourier-binned plane.

    Returns
    -------
    numpy.ndarray
        float32, shape ``preview_shape(shape, size)``.

    """
    from .filters import fourier_resize

    small_shape = preview_shape(tuple(shape), size)
    k = min(n // t for n, t in zip(source.shape, small_shape, strict=True)) // 4
    data = block_mean_by(source, k) if k >= 2 else np.asarray(source, dtype=np.float32)
    small = fourier_resize(data, small_shape)
    kb = max(1, k) * max(1, int(block))  # raw pixels per pixel of ``data``
    if kb == 1:
        return small
    # data pixel m is centred on raw pixel m * kb + (kb - 1) / 2; binning samples m * kb
    shift = (kb - 1) / (2.0 * kb)
    steps = zip(data.shape, small_shape, strict=True)
    return fourier_shift(small, [shift * t / n for n, t in steps])


def fourier_shift(image: np.ndarray, shifts: Sequence[float]) -> np.ndarray:
    """``image`` moved by ``shifts`` pixels per axis (periodic, band-limited), float32."""
    data = np.asarray(image, dtype=np.float32)
    spectrum = np.fft.rfftn(data)
    freqs = [np.fft.fftfreq(n) for n in data.shape[:-1]] + [np.fft.rfftfreq(data.shape[-1])]
    grids = np.meshgrid(*freqs, indexing="ij", sparse=True)
    spectrum *= np.exp(-2j * np.pi * sum(g * d for g, d in zip(grids, shifts, strict=True)))
    return np.fft.irfftn(spectrum, s=data.shape, axes=tuple(range(data.ndim))).astype(np.float32)


def sketch_preview(
    source: np.ndarray,
    shape: Sequence[int],
    model: Any,
    *,
    gaussian: float = 0.0,
    lowpass: float | None = None,
    cancel: CancelFn | None = None,
    size: int = SKETCH_SIZE,
    block: int = 1,
    **engine_kwargs: Any,
) -> CoarsePreview:
    """A quick first preview of a 2D plane of ``shape``, without the prepared plane.

    Like :func:`coarse_preview` at ``size`` pixels, but shrunk straight from
    ``source`` (:func:`sketch_input`), so it does not wait for the plane's
    binning (a Fourier transform of the whole raw image).

    Parameters
    ----------
    source : numpy.ndarray
        The raw 2D plane, or a block-mean level of it (same field of view).
    shape : sequence of int
        The prepared (binned) plane's shape: the preview's output shape.
    model : torch.nn.Module
        A loaded 2D model.
    gaussian : float
        Gaussian sigma at the prepared plane's resolution.
    lowpass : float, optional
        The prepared plane's low-pass factor (scaled down with the image).
    cancel : callable, optional
        Returns True to stop (the engine raises ``Cancelled``).
    size : int
        Largest side of the sketch (pixels).
    block : int
        ``source`` holds means of ``block`` x ``block`` raw pixels (1: the raw plane).
    **engine_kwargs
        ``device``, ``precision``, ``threads`` for :func:`~.inference.denoise`.

    """
    from .filters import fourier_lowpass
    from .inference import denoise

    shape = tuple(int(n) for n in shape)
    small = sketch_input(source, shape, size, block=block)
    factor = shape[-1] / small.shape[-1]
    if lowpass is not None and lowpass / factor > 1:
        small = fourier_lowpass(small, lowpass / factor)
    out = denoise(small, model, gaussian=gaussian / factor, cancel=cancel, **engine_kwargs)
    return expand_preview(np.asarray(out, np.float32), shape)
