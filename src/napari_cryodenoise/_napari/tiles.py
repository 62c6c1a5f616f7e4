"""Compatibility names for the live view's planner and store (moved to the engine).

The progressive tile planner and store are Qt-free and live in
:mod:`napari_cryodenoise.engine.progressive`; the coarse preview's constants
in :mod:`napari_cryodenoise.engine.preview`. The old names stay importable
here: ``Job`` is :class:`~napari_cryodenoise.engine.progressive.LiveJob`,
``TileGrid`` is :class:`~napari_cryodenoise.engine.progressive.ProgressiveGrid`,
``TileStore`` is :class:`~napari_cryodenoise.engine.progressive.ProgressiveStore`.
"""

from __future__ import annotations

from ..engine.preview import PREVIEW_SIZE, PREVIEW_SIZE_3D, preview_shape
from ..engine.progressive import (
    Box,
    Claims,
    Evicted,
    LevelView,
    StoreCache,
    clip_box,
    display_levels,
    plan_jobs,
    pyramid_depth,
    resample_nearest,
)
from ..engine.progressive import LiveJob as Job
from ..engine.progressive import ProgressiveGrid as TileGrid
from ..engine.progressive import ProgressiveStore as TileStore

__all__ = [
    "PREVIEW_SIZE",
    "PREVIEW_SIZE_3D",
    "Box",
    "Claims",
    "Evicted",
    "Job",
    "LevelView",
    "StoreCache",
    "TileGrid",
    "TileStore",
    "clip_box",
    "display_levels",
    "plan_jobs",
    "preview_shape",
    "pyramid_depth",
    "resample_nearest",
]
