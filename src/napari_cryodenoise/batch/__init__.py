"""Denoise many micrographs on a Dask cluster: resumable, retrying, one model load per worker.

The unit of work is one micrograph (one ``(input, output)`` pair); a very large stack
or volume is split into groups of planes, each a task writing a hidden part file, and
the parts are joined into the output when all are done (:mod:`.split`). The driver
(:func:`run_batch`, :mod:`.run`) skips outputs that already exist and are complete,
submits the rest as Dask futures, retries failures, and reports a
:class:`BatchSummary` (:mod:`.results`).

Safety comes from the writers: every output is written to a hidden temporary file next
to its target, flushed to disk and renamed over it
(:func:`napari_cryodenoise.io.atomic.atomic_path`), so a file at an output path is
always whole. A killed worker leaves at most a ``.NAME.TAG.partialSUFFIX`` file, which
the run removes (:mod:`.outputs`); its micrograph is rescheduled by Dask on another
worker. :func:`output_is_complete` also checks the header against the file size, so a
truncated file written by any other tool is redone rather than trusted.

Each worker process loads every model once (:mod:`.worker`). With GPUs, each local
worker gets its own device (round-robin over the visible GPUs); remote workers use the
GPU their job was given (``CUDA_VISIBLE_DEVICES``) and, when the workers declare a
``GPU`` resource (``dask worker --resources GPU=1``), every task asks for one
(:mod:`.cluster`). Importing this package needs neither Dask nor torch.
"""

from __future__ import annotations

from .cluster import default_local_workers, parse_cluster
from .outputs import output_is_complete, part_path, remove_partials, write_output_star
from .results import BatchSummary, ItemResult
from .run import run_batch
from .split import GROUP_BYTES, SPLIT_BYTES, denoise_part, plane_groups
from .worker import NOT_RETRYABLE, ItemFailed, ItemFn, as_settings, denoise_item, get_models

__all__ = [
    "GROUP_BYTES",
    "NOT_RETRYABLE",
    "SPLIT_BYTES",
    "BatchSummary",
    "ItemFailed",
    "ItemFn",
    "ItemResult",
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
