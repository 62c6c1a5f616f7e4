"""Live-view job planning: the progressive tile grid, jobs, their order and claims.

No Qt, no napari, no torch. A live view denoises a plane progressively: a
coarse preview of the whole plane first, then exact full-resolution tiles of
a regular :class:`ProgressiveGrid` (not to be confused with the engine's
inference tiles, :mod:`napari_cryodenoise.engine.tiling`, which cut one
denoising call into memory-sized windows). Jobs are small frozen tuples
(:class:`LiveJob`), ordered by :func:`plan_jobs`: the preview of the current
plane, then the tiles of the visible box nearest the view's centre first,
then neighbouring planes, then (optionally) the rest of the current plane.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .store import ProgressiveStore

Box = tuple[tuple[float, float], tuple[float, float]]  # ((y0, y1), (x0, x1)) in pixels


class LiveJob(NamedTuple):
    """One unit of live work.

    ``kind`` is ``"sketch"`` (a quicker, coarser first preview of a 2D
    plane), ``"preview"`` (a coarse denoised plane, or the whole volume
    for 3D models when ``plane`` is -1) or ``"tile"``. ``plane`` is the index
    along the first axis of a stack (0 for a single image) or, for a 3D model,
    the z-slab index. ``iy, ix`` index the tile grid.
    """

    kind: str
    plane: int
    iy: int = -1
    ix: int = -1


@dataclass(frozen=True)
class ProgressiveGrid:
    """A regular grid of ``tile`` x ``tile`` output tiles over a plane of ``shape``.

    Tile origins are multiples of ``tile``, itself a multiple of the model's
    grid, so every tile is a seamless window of the engine's region API.
    """

    shape: tuple[int, int]
    tile: int

    @property
    def counts(self) -> tuple[int, int]:
        """Number of tiles along y and x."""
        return tuple(math.ceil(n / self.tile) for n in self.shape)  # type: ignore[return-value]

    def slices(self, iy: int, ix: int) -> tuple[slice, slice]:
        """Output pixels of tile ``(iy, ix)`` (clipped at the plane's edge)."""
        t = self.tile
        h, w = self.shape
        return slice(iy * t, min(h, (iy + 1) * t)), slice(ix * t, min(w, (ix + 1) * t))

    def tiles_in_box(self, box: Box | None) -> list[tuple[int, int]]:
        """Tiles that intersect ``box`` (all when None), nearest the box centre first."""
        ny, nx = self.counts
        if box is None:
            (y0, y1), (x0, x1) = (0.0, float(self.shape[0])), (0.0, float(self.shape[1]))
        else:
            (y0, y1), (x0, x1) = box
        t = self.tile
        iy0, iy1 = max(0, math.floor(y0 / t)), min(ny, math.ceil(y1 / t))
        ix0, ix1 = max(0, math.floor(x0 / t)), min(nx, math.ceil(x1 / t))
        if iy1 <= iy0 or ix1 <= ix0:
            return []
        tiles = itertools.product(range(iy0, iy1), range(ix0, ix1))
        return _by_distance(tiles, t, ((y0, y1), (x0, x1)))


def clip_box(box: Box, shape: Sequence[int]) -> Box | None:
    """Intersect a box with a plane of ``shape``; None when nothing is left."""
    (y0, y1), (x0, x1) = box
    h, w = shape
    y0, y1 = max(0.0, y0), min(float(h), y1)
    x0, x1 = max(0.0, x0), min(float(w), x1)
    if y1 <= y0 or x1 <= x0:
        return None
    return (y0, y1), (x0, x1)


def plan_jobs(
    store: ProgressiveStore,
    box: Box | None,
    plane: int,
    *,
    neighbours: int = 0,
    fill: bool = True,
    skip: Iterable[LiveJob] = (),
    sketch: bool = False,
) -> list[LiveJob]:
    """Order the work for the current view, dropping what is already done.

    Parameters
    ----------
    store : ProgressiveStore
        Knows the geometry and which jobs are done.
    box : Box or None
        Visible part of the plane in output pixels (None: nothing visible).
    plane : int
        Current plane: stack index, or the current z for a 3D model.
    neighbours : int
        Also do the visible tiles of this many planes (slabs) on each side.
    fill : bool
        Then do the rest of the current plane, nearest the view first.
    skip : iterable of LiveJob
        Jobs known to be finished elsewhere (claimed by a worker).
    sketch : bool
        Start with a sketch of the current plane when it shows nothing
        denoised yet (:meth:`ProgressiveStore.wants_sketch`).

    Returns
    -------
    list of LiveJob

    """
    skip = set(skip)
    jobs: list[LiveJob] = []

    def add(job: LiveJob) -> None:
        if job not in skip and not store.is_done(job) and job not in seen:
            seen.add(job)
            jobs.append(job)

    seen: set[LiveJob] = set()
    current = store.plane_job_index(plane)
    order = [current]
    for d in range(1, neighbours + 1):
        order += [p for p in (current + d, current - d) if 0 <= p < store.n_job_planes]
    visible = store.grid.tiles_in_box(box) if box is not None else []
    if sketch and store.wants_sketch(current):
        add(LiveJob("sketch", current))
    for i, p in enumerate(order):
        add(LiveJob("preview", -1 if store.volume else p))
        for iy, ix in visible:
            add(LiveJob("tile", p, iy, ix))
        if i == 0 and fill:
            centre = box if box is not None else None
            rest = (
                store.grid.tiles_in_box(None)
                if centre is None
                else _all_by_distance(store.grid, centre)
            )
            for iy, ix in rest:
                add(LiveJob("tile", p, iy, ix))
    return jobs


def _by_distance(tiles: Iterable[tuple[int, int]], tile: int, box: Box) -> list[tuple[int, int]]:
    """Tiles sorted by the distance of their centre to the box's centre."""
    (y0, y1), (x0, x1) = box
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    return sorted(
        tiles, key=lambda k: ((k[0] + 0.5) * tile - cy) ** 2 + ((k[1] + 0.5) * tile - cx) ** 2
    )


def _all_by_distance(grid: ProgressiveGrid, box: Box) -> list[tuple[int, int]]:
    ny, nx = grid.counts
    return _by_distance(itertools.product(range(ny), range(nx)), grid.tile, box)


class Claims:
    """Jobs finished by some worker (a superset of what the store shows), thread-safe."""

    def __init__(self) -> None:
        self._jobs: set[LiveJob] = set()
        self._lock = threading.Lock()

    def __contains__(self, job: object) -> bool:
        with self._lock:
            return job in self._jobs

    def add(self, job: LiveJob) -> None:
        """Mark a job finished."""
        with self._lock:
            self._jobs.add(job)

    def discard_all(self, jobs: Sequence[LiveJob]) -> None:
        """Forget jobs (their output was evicted)."""
        with self._lock:
            self._jobs.difference_update(jobs)

    def snapshot(self) -> set[LiveJob]:
        """A copy of the set."""
        with self._lock:
            return set(self._jobs)
