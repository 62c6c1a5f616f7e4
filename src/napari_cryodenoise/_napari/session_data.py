"""What the session browser computes ahead, and the caches it keeps (no Qt, no napari).

Showing a micrograph needs its display pyramid and contrast (``Display``,
~0.04 s for a 4096^2 image) and its denoised view (a coarse preview, then
tiles, in a :class:`~napari_cryodenoise.engine.progressive.ProgressiveStore`).
While the user looks at micrograph k, a worker runs :func:`prefetch_steps`
for k+1 and k-1 in that order: display, coarse preview, then the visible
tiles. Workers get immutable inputs (read-only arrays, frozen contexts) and
yield results; the main thread stores them (:class:`DisplayCache`, the
stores) and only it touches layers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Cancelled
from ..io import read_image
from .compute import LiveContext, compute_job, read_only
from .layers import display_pyramid, layer_kwargs
from .threads import lower_thread_priority
from .tiles import Job

__all__ = ["Display", "DisplayCache", "PrefetchStep", "load_display", "prefetch_steps"]


@dataclass(frozen=True)
class Display:
    """A micrograph ready for an image layer: its data, display levels and layer kwargs."""

    key: tuple
    data: Any
    info: Any
    levels: Any
    kwargs: dict = field(compare=False)

    @property
    def nbytes(self) -> int:
        """Bytes held in memory besides the (memory-mapped) data."""
        if isinstance(self.levels, list):
            return int(sum(np.asarray(a).nbytes for a in self.levels[1:]))
        return 0

    @property
    def is_micrograph(self) -> bool:
        """A 2D image: what the session denoises (stacks and tomograms are shown raw)."""
        return self.data.ndim == 2

    @property
    def pixel_size(self) -> float | None:
        """In-plane pixel size in Angstrom (None for a placeholder)."""
        return self.info.known_pixel_size


def load_display(path: Path, key: tuple) -> Display:
    """Read a micrograph (memory-mapped) and compute its display levels and contrast."""
    data, info = read_image(path)
    data = read_only(data)
    levels = display_pyramid(data)
    kwargs = layer_kwargs(data, info, multiscale=isinstance(levels, list))
    return Display(key, data, info, levels, kwargs)


class DisplayCache:
    """The last displays, bounded in bytes and count (main thread)."""

    def __init__(self, budget: int = 512 << 20, max_items: int = 8) -> None:
        self.budget, self.max_items = int(budget), int(max_items)
        self._items: OrderedDict[tuple, Display] = OrderedDict()

    def get(self, key: tuple) -> Display | None:
        """The display for ``key`` (marked as recently used), or None."""
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
        return hit

    def put(self, display: Display) -> Display:
        """Keep ``display``; drops the least recently used ones beyond the bounds."""
        self._items[display.key] = display
        self._items.move_to_end(display.key)
        while len(self._items) > 1 and (
            len(self._items) > self.max_items or self.nbytes > self.budget
        ):
            self._items.popitem(last=False)
        return display

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(d.nbytes for d in self._items.values())


@dataclass(frozen=True)
class PrefetchStep:
    """One step of denoise-ahead: load a display, or run live jobs on a context.

    Attributes
    ----------
    index : int
        The session index it is for.
    path : pathlib.Path
        The micrograph.
    key : tuple
        The item's key (what the display cache and the store are filed under).
    ctx : LiveContext or None
        For jobs: the frozen live context (its ``claims`` are the store's).
    jobs : tuple of Job
        The jobs to run (empty for a display step).

    """

    index: int
    path: Path
    key: tuple
    ctx: LiveContext | None = None
    jobs: tuple[Job, ...] = ()


def prefetch_steps(
    steps: Sequence[PrefetchStep], cancel: threading.Event
) -> Iterator[tuple[PrefetchStep, Any]]:
    """Generator run by the denoise-ahead worker: yields ``(step, result)``.

    A display step yields its :class:`Display`; a jobs step yields
    ``(job, array)`` per job, serialised with the view's ``ctx.compute_lock`` so
    that it never competes with the tiles on screen. ``cancel`` stops between
    jobs and inside the engine.
    """
    lower_thread_priority()
    for step in steps:
        if cancel.is_set():
            return
        if step.ctx is None:
            try:
                yield step, load_display(step.path, step.key)
            except Exception:  # noqa: BLE001 - shown (with its error) when stepped to
                continue
            continue
        ctx = step.ctx
        for job in step.jobs:
            with ctx.compute_lock:
                if cancel.is_set():
                    return
                if job in ctx.claims:
                    continue
                try:
                    result = compute_job(ctx, job, cancel=cancel.is_set)
                except Cancelled:
                    return
                ctx.claims.add(job)
            yield step, (job, result)
