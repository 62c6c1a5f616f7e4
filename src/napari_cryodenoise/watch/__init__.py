"""Follow a data collection: denoise micrographs as they land in a folder (no Qt).

The core of ``cryodenoise watch``:

* :mod:`.config`: what a watch is asked to do and what it did;
* :mod:`.scanner`: which files are whole (MRC by header, others by a settle time), in
  arrival order;
* :mod:`.micrograph`: movies and stacks are told from micrographs by their header;
* :mod:`.session`: the record in the output folder that makes a restart do only the rest;
* :mod:`.executors`: denoising in this process or on Dask workers;
* :mod:`.trainer`: on-the-fly Noise2Noise training on the first micrographs' even/odd sums;
* :mod:`.status`: the one-line live status;
* :mod:`.runner`: the loop, :func:`run_watch`.

Importing this package loads neither torch nor Dask.
"""

from __future__ import annotations

from .config import WatchConfig, WatchSummary, model_labels
from .runner import run_watch
from .scanner import Scanner, mrc_state
from .session import STATE_NAME, WatchState
from .status import StatusLine, WatchStatus

__all__ = [
    "STATE_NAME",
    "Scanner",
    "StatusLine",
    "WatchConfig",
    "WatchState",
    "WatchStatus",
    "WatchSummary",
    "model_labels",
    "mrc_state",
    "run_watch",
]
