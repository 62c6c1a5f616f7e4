"""Inference engine: normalisation, seamless tiling, devices, filters (no Qt, no napari)."""

from .device import available_memory, resolve_device, resolve_precision, set_threads
from .filters import fourier_lowpass, fourier_resize, gaussian_filter
from .inference import (
    DenoiseOutOfMemoryError,
    denoise,
    denoise_region,
    denoise_stack,
    denoise_volume,
    get_runner,
    image_stats,
    load_models,
    prepare_image,
)
from .tiling import plan_tiles

__all__ = [
    "DenoiseOutOfMemoryError",
    "available_memory",
    "denoise",
    "denoise_region",
    "denoise_stack",
    "denoise_volume",
    "fourier_lowpass",
    "fourier_resize",
    "gaussian_filter",
    "get_runner",
    "image_stats",
    "load_models",
    "plan_tiles",
    "prepare_image",
    "resolve_device",
    "resolve_precision",
    "set_threads",
]
