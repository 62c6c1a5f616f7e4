"""Inference engine: normalisation, seamless tiling, devices, filters (no Qt, no napari).

Names are imported on first use (PEP 562), so the numpy-only modules
(:mod:`.pyramid`, :mod:`.stats`, :mod:`.tiling`, :mod:`.options`) import without torch::

    from napari_cryodenoise.engine import denoise          # loads torch
    from napari_cryodenoise.engine.pyramid import block_mean  # does not

Modules
-------
inference
    The public entry points: :func:`denoise`, :func:`denoise_stack`,
    :func:`denoise_volume`, :func:`denoise_region`.
options
    :class:`EngineOptions`, the one frozen object for the options they forward.
runner
    Models prepared for a device and precision (:class:`Runner`, :func:`get_runner`).
tiled
    The tile loop with out-of-memory retry.
memory
    Tile geometry from the memory budget.
prepare, stats
    Binning/low-pass preprocessing; whole-image mean and standard deviation.
device, filters, tiling, fastunet, pyramid
    Devices and precision; Fourier/Gaussian filters; window planning; the lean U-Net
    evaluator; block means and the display-pyramid rule.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> submodule that defines it.
_NAMES: dict[str, str] = {
    "available_memory": "device",
    "host_memory_share": "device",
    "resolve_device": "device",
    "resolve_precision": "device",
    "set_threads": "device",
    "fourier_lowpass": "filters",
    "fourier_resize": "filters",
    "gaussian_filter": "filters",
    "DenoiseOutOfMemoryError": "tiled",
    "denoise": "inference",
    "denoise_region": "inference",
    "denoise_stack": "inference",
    "denoise_volume": "inference",
    "resolve_bin_factor": "inference",
    "EngineOptions": "options",
    "Runner": "runner",
    "get_runner": "runner",
    "load_models": "runner",
    "image_stats": "stats",
    "prepare_image": "prepare",
    "plan_tiles": "tiling",
    "block_mean": "pyramid",
    "display_pyramid": "pyramid",
    "pyramid_depth": "pyramid",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
