"""Denoise cryo-EM micrographs, movies and tomograms with deep networks.

The public API is a handful of names; everything here works without napari or
Qt, from scripts and from the ``cryodenoise`` command line::

    from napari_cryodenoise import read_image, denoise, write_mrc

    image, info = read_image("mic.mrc")
    write_mrc("mic_denoised.mrc", denoise(image, "unet"), voxel_size=info.voxel_size)

Names are imported on first use, so ``import napari_cryodenoise`` stays light
(napari reads the plugin manifest without loading torch).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("napari-cryodenoise")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

#: Public name -> module that defines it.
_PUBLIC: dict[str, str] = {
    "read_image": "napari_cryodenoise.io",
    "read_mrc": "napari_cryodenoise.io",
    "write_mrc": "napari_cryodenoise.io",
    "load_model": "napari_cryodenoise.models",
    "list_models": "napari_cryodenoise.models",
    "save_model": "napari_cryodenoise.models",
    "denoise": "napari_cryodenoise.engine",
    "denoise_stack": "napari_cryodenoise.engine",
    "denoise_volume": "napari_cryodenoise.engine",
    "denoise_region": "napari_cryodenoise.engine",
    "image_stats": "napari_cryodenoise.engine",
    "TrainConfig": "napari_cryodenoise.training",
    "train_noise2noise": "napari_cryodenoise.training",
    "simulate_movie": "napari_cryodenoise.simulate",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
