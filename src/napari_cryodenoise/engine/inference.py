"""Denoise images, stacks and volumes with one or more networks, seamlessly tiled.

The inference contract is Topaz's (see ``shared/docs/topaz-reference.md``):

1. optional Fourier binning (``bin_factor``) and hard Fourier low-pass
   (``lowpass``), both keeping the result float32 (:mod:`.prepare`);
2. normalise by the whole image's mean and standard deviation (float64
   accumulators, streamed over memory maps; :mod:`.stats`);
3. optional Gaussian pre-filter (``gaussian``, sigma in pixels, zero padding);
4. run every model, average the outputs in normalised units (:mod:`.runner`);
5. map back with ``std * y + mean`` (or keep standardised, ``normalize=True``);
6. with binning, optionally Fourier-pad back to the input size (``restore_size``).

Steps 3-5 run window by window (:mod:`.tiled`, geometry from :mod:`.memory`), so the
result equals whole-image inference (to float rounding) whatever the tile size.

This module holds the four public entry points. The options they forward to the engine
are one frozen :class:`~.options.EngineOptions`; the names that used to live here are
re-exported (``from napari_cryodenoise.engine.inference import get_runner`` still works).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from ..binning import resolve_bin
from ..errors import InputError
from ..types import CancelFn, ProgressFn
from .device import set_threads
from .filters import bin_shape, fourier_resize
from .memory import DEFAULT_CPU_TILE_BYTES, MIN_CORE, memory_budget, parse_bytes, tile_geometry
from .options import EngineOptions
from .prepare import as_array, check_ndim, prepare_image
from .runner import ModelsLike, Runner, get_runner, load_models
from .stats import image_stats, normalise_stats
from .tiled import DenoiseOutOfMemoryError, TiledRun, group_by_shape_crop, process

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CPU_TILE_BYTES",
    "MIN_CORE",
    "DenoiseOutOfMemoryError",
    "EngineOptions",
    "Runner",
    "denoise",
    "denoise_region",
    "denoise_stack",
    "denoise_volume",
    "get_runner",
    "group_by_shape_crop",
    "image_stats",
    "load_models",
    "memory_budget",
    "prepare_image",
    "resolve_bin_factor",
    "tile_geometry",
]

# Old private names, kept importable from here.
_as_array = as_array
_normalise_stats = normalise_stats
_parse_bytes = parse_bytes
_process = process


def _start(
    models: ModelsLike | None,
    options: EngineOptions,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> TiledRun:
    """Set the threads, get the runner: the state of one call."""
    set_threads(options.threads)
    runner = get_runner(models, options.device, options.precision, fast=options.fast)
    return TiledRun(runner, options, progress=progress, cancel=cancel)


def resolve_bin_factor(
    bin_factor: float | str = 1,
    pixel_size: float | None = None,
    target_pixel_size: float | None = None,
) -> float:
    """``target_pixel_size / pixel_size`` when a target is given, ``"auto"``, else ``bin_factor``.

    The rule lives in :func:`napari_cryodenoise.binning.resolve_bin`.
    """
    return resolve_bin(bin_factor, pixel_size, target_pixel_size)


def denoise(
    image: np.ndarray,
    models: ModelsLike = "unet",
    *,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    patch_size: int | None = None,
    padding: int | None = None,
    batch_size: int | None = None,
    normalize: bool = False,
    gaussian: float = 0.0,
    lowpass: float | None = None,
    bin_factor: float = 1,
    restore_size: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    memory_limit: int | None = None,
    threads: int | None = None,
    fast: bool = True,
    pixel_size: float | None = None,
    target_pixel_size: float | None = None,
    ensemble: bool = False,
) -> np.ndarray:
    """Denoise a 2D micrograph (2D models) or a volume (3D models).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` image or ``(D, H, W)`` volume, any real dtype; memory maps
        are read window by window and never copied whole.
    models : module, str, path or sequence of them
        Networks (or aliases/paths for :func:`napari_cryodenoise.models.load_model`);
        several are averaged in normalised units.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    precision : {"fp32", "bf16", "fp16"}
        Compute precision (fp16 falls back to bf16 on the CPU).
    patch_size : int, optional
        Output pixels per tile and axis (rounded up to the grid); default: the
        largest that fits the memory budget.
    padding : int, optional
        Context per tile side (rounded up to the grid); default: the models'
        receptive radius, which makes tiling exact.
    batch_size : int, optional
        Tiles per forward pass (default 1 on the CPU, from memory on GPUs).
    normalize : bool
        Return the result in normalised units instead of the input's.
    gaussian : float
        Gaussian pre-filter sigma in pixels (0: none).
    lowpass : float, optional
        Hard Fourier low-pass factor in pixels (Topaz ``--lowpass``).
    bin_factor : float
        Fourier binning factor (1: none; may be fractional).
    restore_size : bool
        With binning, Fourier-pad the result back to the input's shape.
    progress : callable, optional
        ``progress(done_tiles, total_tiles)``.
    cancel : callable, optional
        Returns True to stop; raises :class:`~napari_cryodenoise.errors.Cancelled`.
    memory_limit : int, optional
        Bytes of activations per tile (default: from free memory, at most 1 GiB on CPU).
    threads : int, optional
        Torch intra-op threads.
    fast : bool
        Use the lean U-Net evaluator for Topaz-topology U-Nets (same result).
    pixel_size, target_pixel_size : float, optional
        Input and wanted pixel size in Angstrom; together they set
        ``bin_factor = target_pixel_size / pixel_size``.
    ensemble : bool
        Self-ensemble: average over the 8 rotations and mirrors of the image plane
        (z kept for volumes), 8x the compute; the plane is zero-padded (normalised
        units) to a multiple of the models' grid first, so tiling stays exact
        (:mod:`.ensemble`).

    Returns
    -------
    numpy.ndarray
        float32, the input's shape (or the binned shape without ``restore_size``).

    """
    arr = as_array(image)
    job = _start(models, EngineOptions.pick(locals()), progress, cancel)
    arr = check_ndim(arr, job.runner.ndim, "denoise")
    bin_factor = resolve_bin_factor(bin_factor, pixel_size, target_pixel_size)
    return _denoise_one(
        arr, job, bin_factor=bin_factor, lowpass=lowpass, restore_size=restore_size
    )


def _denoise_one(
    arr: np.ndarray,
    job: TiledRun,
    *,
    bin_factor: float,
    lowpass: float | None,
    restore_size: bool,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Steps 1-6 on one image (``out``: where to write, e.g. a stack's plane)."""
    t0 = time.perf_counter()
    src = prepare_image(arr, bin_factor=bin_factor, lowpass=lowpass)
    job.stats = normalise_stats(image_stats(src))
    t1 = time.perf_counter()
    binned = src.shape != arr.shape
    direct_out = out if (out is not None and not (binned and restore_size)) else None
    result = process(job, src, None, out=direct_out)
    t2 = time.perf_counter()
    if binned and restore_size:
        result = fourier_resize(result, arr.shape)
        if out is not None:
            out[...] = result
            result = out
    job.timings.update(prepare=t1 - t0, inference=t2 - t1, total=time.perf_counter() - t0)
    log.debug("denoise %s: %s", arr.shape, job.timings)
    return result


def denoise_stack(stack: np.ndarray, models: ModelsLike = "unet", **kw: object) -> np.ndarray:
    """Denoise every 2D slice of a ``(N, H, W)`` stack independently (own statistics).

    Takes the keyword arguments of :func:`denoise`; ``progress`` counts tiles
    over the whole stack. Returns a float32 ``(N, H', W')`` array.
    """
    arr = as_array(stack)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"denoise_stack: expected (N, H, W), got shape {arr.shape}")
    bin_factor = resolve_bin_factor(
        kw.pop("bin_factor", 1), kw.pop("pixel_size", None), kw.pop("target_pixel_size", None)
    )
    lowpass = kw.pop("lowpass", None)
    restore_size = kw.pop("restore_size", True)
    progress = kw.pop("progress", None)
    cancel = kw.pop("cancel", None)
    options = EngineOptions.take(kw)
    if kw:
        raise TypeError(f"unexpected keyword arguments: {sorted(kw)}")
    job = _start(models, options, None, cancel)
    if job.runner.ndim != 2:
        raise InputError("denoise_stack needs 2D models")
    n = arr.shape[0]
    out_plane = arr.shape[1:]
    if bin_factor != 1 and not restore_size:
        out_plane = bin_shape(arr.shape[1:], float(bin_factor))
    out = np.empty((n, *out_plane), dtype=np.float32)

    def slice_progress(done: int, total: int, i: int = 0) -> None:
        if progress is not None:
            progress(i * total + done, n * total)

    for i in range(n):
        job.done = job.total = 0
        job.progress = (lambda d, t, i=i: slice_progress(d, t, i)) if progress else None
        _denoise_one(
            arr[i],
            job,
            bin_factor=bin_factor,
            lowpass=lowpass,
            restore_size=restore_size,
            out=out[i],
        )
    return out


def denoise_volume(volume: np.ndarray, models: ModelsLike = "unet-3d", **kw: object) -> np.ndarray:
    """Denoise a ``(D, H, W)`` volume with 3D models (seamless 3D tiling).

    Takes the keyword arguments of :func:`denoise`.
    """
    arr = as_array(volume)
    if arr.ndim != 3:
        raise InputError(f"denoise_volume: expected (D, H, W), got shape {arr.shape}")
    return denoise(arr, models, **kw)


def denoise_region(
    image: np.ndarray,
    models: ModelsLike = "unet",
    region: Sequence[slice] | None = None,
    *,
    stats: tuple[float, float] | None = None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    patch_size: int | None = None,
    padding: int | None = None,
    batch_size: int | None = None,
    normalize: bool = False,
    gaussian: float = 0.0,
    lowpass: float | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    memory_limit: int | None = None,
    threads: int | None = None,
    fast: bool = True,
    ensemble: bool = False,
) -> np.ndarray:
    """Exactly what :func:`denoise` gives in ``region``, computing only that window.

    Parameters
    ----------
    image : numpy.ndarray
        Whole image (or volume for 3D models); only the region plus the
        models' halo is read (memory maps stay maps).
    models
        As for :func:`denoise`.
    region : tuple of slice
        Window in image coordinates (step 1), e.g. ``(slice(0, 512), slice(256, 768))``.
    stats : (float, float), optional
        ``(mean, std)`` of the whole image (after ``lowpass``), e.g. from
        :func:`image_stats`; computed (one pass over the image) when None. Pass
        it for repeated calls.
    lowpass : float, optional
        Needs the whole image (Fourier filter): expensive for small windows.

    device, precision : str
        As for :func:`denoise`.
    patch_size, padding, batch_size : int, optional
        As for :func:`denoise` (tiles cover only the region and its context).
    normalize : bool
        Return normalised units.
    gaussian : float
        Gaussian pre-filter sigma (local: needs only a margin).
    progress, cancel : callable, optional
        As for :func:`denoise`.
    memory_limit, threads : int, optional
        As for :func:`denoise`.
    fast : bool
        As for :func:`denoise`. There is no binning here: call this on a
        binned image for a coarse preview.
    ensemble : bool
        As for :func:`denoise`.

    Returns
    -------
    numpy.ndarray
        float32, the region's shape.

    """
    arr = as_array(image)
    job = _start(models, EngineOptions.pick(locals()), progress, cancel)
    arr = check_ndim(arr, job.runner.ndim, "denoise_region")
    if region is None:
        region = tuple(slice(0, n) for n in arr.shape)
    if len(region) != arr.ndim:
        raise InputError(f"region {region} does not match an image of {arr.ndim} dimensions")
    src = prepare_image(arr, lowpass=lowpass)
    job.stats = normalise_stats(image_stats(src) if stats is None else stats)
    return process(job, src, tuple(region))
