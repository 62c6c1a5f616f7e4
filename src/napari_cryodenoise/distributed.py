"""Compatibility module: batch denoising now lives in :mod:`napari_cryodenoise.batch`.

Every name this module had is still importable from here (private ones, such as a
worker's ``_LOAD_COUNT``, are looked up in the ``batch`` modules on each access, so they
stay live); new code imports from :mod:`napari_cryodenoise.batch`.
"""

from __future__ import annotations

import importlib
from typing import Any

from .batch import (
    GROUP_BYTES,
    NOT_RETRYABLE,
    SPLIT_BYTES,
    BatchSummary,
    ItemFailed,
    ItemFn,
    ItemResult,
    as_settings,
    default_local_workers,
    denoise_item,
    denoise_part,
    get_models,
    output_is_complete,
    parse_cluster,
    part_path,
    plane_groups,
    remove_partials,
    run_batch,
    write_output_star,
)
from .cli._progress import StderrProgress

__all__ = [
    "GROUP_BYTES",
    "NOT_RETRYABLE",
    "SPLIT_BYTES",
    "BatchSummary",
    "ItemFailed",
    "ItemFn",
    "ItemResult",
    "StderrProgress",
    "as_settings",
    "default_local_workers",
    "denoise_item",
    "denoise_part",
    "get_models",
    "output_is_complete",
    "parse_cluster",
    "part_path",
    "plane_groups",
    "remove_partials",
    "run_batch",
    "write_output_star",
]

_MODULES = ("worker", "outputs", "split", "cluster", "run", "results")


def __getattr__(name: str) -> Any:
    for module in _MODULES:
        found = importlib.import_module(f".batch.{module}", __package__)
        if name in vars(found) or (module == "cluster" and name == "_WorkerSetup"):
            return getattr(found, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
