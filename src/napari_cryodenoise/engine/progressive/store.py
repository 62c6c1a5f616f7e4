"""The progressive store behind a live layer: previews, then tiles, with display levels.

No Qt, no napari, no torch. A live denoised layer shows a
:class:`ProgressiveStore`: an array-like (``shape``, ``dtype``,
``__getitem__``, ``__array__``) whose planes are allocated when first
written, start as a smooth coarse preview (matched to the tiles, see
:class:`~napari_cryodenoise.engine.preview.PreviewMatch`) and are overwritten
tile by tile with full-resolution results. The main thread owns it; workers
only compute and hand back arrays.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import preview as _preview
from ..preview import CoarsePreview, PreviewMatch
from .levels import halve, resample_nearest
from .plan import Claims, LiveJob, ProgressiveGrid


class ProgressiveStore:
    """Array-like output of a live view, filled by previews and tiles.

    Parameters
    ----------
    shape : tuple of int
        Output shape: ``(H, W)``, or ``(N, H, W)`` for a stack or a volume.
    tile : int
        Tile edge (a multiple of the model's grid).
    fill_value : float
        Shown where nothing has been computed yet (the input's mean).
    volume : bool
        3D output of a 3D model: tiles are slabs of ``slab`` planes.
    slab : int
        Slab thickness for 3D models (a multiple of the model's grid).
    levels : int
        Extra display levels (2x block means of the last two axes), kept up
        to date as tiles arrive; :meth:`layer_data` gives napari the pyramid.

    """

    def __init__(
        self,
        shape: Sequence[int],
        tile: int,
        *,
        fill_value: float = 0.0,
        volume: bool = False,
        slab: int = 32,
        levels: int = 0,
    ) -> None:
        self.shape = tuple(int(n) for n in shape)
        if len(self.shape) not in (2, 3):
            raise ValueError(f"a tile store is 2D or 3D, got shape {self.shape}")
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)
        self.grid = ProgressiveGrid(self.shape[-2:], int(tile))  # type: ignore[arg-type]
        self.fill_value = float(fill_value)
        self.volume = bool(volume and self.ndim == 3)
        self.slab = int(slab)
        h, w = self.shape[-2:]
        self.level_shapes = [(h, w)]
        for _ in range(int(levels)):
            h, w = h // 2, w // 2
            self.level_shapes.append((h, w))
        #: plane index -> [full resolution, 2x, 4x, ...] arrays
        self._planes: OrderedDict[int, list[np.ndarray]] = OrderedDict()
        self._done: dict[int, np.ndarray] = {}
        self._preview: set[int] = set()
        self._sketch: set[int] = set()  # planes showing a sketch (a quicker first preview)
        self._preview3d: np.ndarray | None = None
        #: plane -> intensity match of its coarse preview to its finished tiles
        self._match: dict[int, PreviewMatch] = {}
        self.version = 0  # bumped on every write (cheap change detection)
        #: Jobs finished by workers (shared with them; see :class:`Claims`).
        self.claims = Claims()
        self._views = [self] + [LevelView(self, k) for k in range(1, len(self.level_shapes))]

    # -- array protocol -------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def n_planes(self) -> int:
        """Planes along the first axis (1 for a single image)."""
        return self.shape[0] if self.ndim == 3 else 1

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        return self._get(key, 0)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[(slice(None),) * self.ndim]
        return np.array(out, dtype=dtype or self.dtype, copy=True)

    def layer_data(self) -> ProgressiveStore | list[Any]:
        """What to give napari: the store, or ``[store, 2x, 4x, ...]`` when it has levels."""
        return self._views[0] if len(self._views) == 1 else list(self._views)

    def shows(self, data: Any) -> bool:
        """True if a layer's ``data`` is this store (single- or multiscale)."""
        if data is self:
            return True
        try:
            return len(self._views) > 1 and data[0] is self
        except (TypeError, IndexError, KeyError):
            return False

    def _get(self, key: Any, level: int) -> np.ndarray:
        key = _normalise_key(key, self.ndim)
        if self.ndim == 2:
            return self._plane_view(0, level)[key]
        first, rest = key[0], key[1:]
        if isinstance(first, (int, np.integer)):
            return self._plane_view(int(first) % self.shape[0], level)[rest]
        indices = range(*first.indices(self.shape[0]))
        parts = [self._plane_view(i, level)[rest] for i in indices]
        if not parts:
            dummy = np.zeros(self.level_shapes[level], self.dtype)[rest]
            return np.zeros((0, *dummy.shape), self.dtype)
        return np.stack(parts)

    def _plane_view(self, index: int, level: int = 0) -> np.ndarray:
        planes = self._planes.get(index)
        if planes is not None:
            return planes[level]
        if self._preview3d is not None:
            return self._upsampled_preview(index, level)
        return np.broadcast_to(np.float32(self.fill_value), self.level_shapes[level])

    def _upsampled_preview(self, index: int, level: int = 0) -> np.ndarray:
        """Nearest-neighbour plane of the coarse 3D preview (cheap, main thread)."""
        small = self._preview3d
        assert small is not None
        d = self.shape[0]
        h, w = self.level_shapes[level]
        z = min(small.shape[0] - 1, int(index * small.shape[0] / d))
        rows = np.minimum((np.arange(h) * small.shape[1]) // h, small.shape[1] - 1)
        cols = np.minimum((np.arange(w) * small.shape[2]) // w, small.shape[2] - 1)
        return small[z][np.ix_(rows, cols)]

    # -- bookkeeping ----------------------------------------------------------------------
    @property
    def preview_is_exact(self) -> bool:
        """True when the "coarse" preview is computed at full resolution (small images)."""
        if self.volume:
            return max(self.shape) <= _preview.PREVIEW_SIZE_3D
        return max(self.shape[-2:]) <= _preview.PREVIEW_SIZE

    def wants_sketch(self, plane: int) -> bool:
        """True when a sketch of 2D plane ``plane`` would be its first denoised view."""
        if self.volume or self.preview_is_exact or not 0 <= plane < self.n_planes:
            return False
        return not self.is_done(LiveJob("sketch", plane))

    @property
    def n_job_planes(self) -> int:
        """Number of job planes: slabs for 3D models, else planes."""
        if self.volume:
            return math.ceil(self.shape[0] / self.slab)
        return self.n_planes

    def plane_job_index(self, plane: int) -> int:
        """Job plane (slab for 3D models) that holds output plane ``plane``."""
        return plane // self.slab if self.volume else plane

    def slab_range(self, slab: int) -> tuple[int, int]:
        """Output planes ``[z0, z1)`` of a 3D slab."""
        return slab * self.slab, min(self.shape[0], (slab + 1) * self.slab)

    def planes_of(self, job: LiveJob) -> range:
        """Output planes a job writes."""
        if job.kind == "preview" and self.volume:
            return range(self.shape[0])
        if self.volume:
            return range(*self.slab_range(job.plane))
        return range(job.plane, job.plane + 1)

    def is_done(self, job: LiveJob) -> bool:
        """True when the job's result is in the store."""
        if job.kind == "sketch":  # done once anything denoised shows on the plane
            return (
                job.plane in self._sketch
                or job.plane in self._preview
                or self._any_tile(job.plane)
            )
        if job.kind == "preview":
            if self.volume:
                return self._preview3d is not None
            return job.plane in self._preview or self._all_tiles_done(job.plane)
        return all(self._tile_done(p, job.iy, job.ix) for p in self.planes_of(job))

    def _tile_done(self, plane: int, iy: int, ix: int) -> bool:
        done = self._done.get(plane)
        return bool(done is not None and done[iy, ix])

    def _any_tile(self, plane: int) -> bool:
        done = self._done.get(plane)
        return bool(done is not None and done.any())

    def _all_tiles_done(self, plane: int) -> bool:
        done = self._done.get(plane)
        return bool(done is not None and done.all())

    def plane_complete(self, plane: int) -> bool:
        """True when every tile of output plane ``plane`` is finished."""
        return self._all_tiles_done(plane)

    def tiles_done(self, plane: int | None = None) -> int:
        """Finished tiles, on one plane or in total."""
        if plane is not None:
            done = self._done.get(plane)
            return int(done.sum()) if done is not None else 0
        return int(sum(d.sum() for d in self._done.values()))

    def is_complete(self) -> bool:
        """True when every tile of every plane is finished (a final result)."""
        return all(self._all_tiles_done(p) for p in range(self.n_planes))

    @property
    def nbytes(self) -> int:
        """Bytes held by allocated planes (all levels) and the preview."""
        extra = self._preview3d.nbytes if self._preview3d is not None else 0
        return sum(a.nbytes for planes in self._planes.values() for a in planes) + extra

    def planes_lru(self) -> list[int]:
        """Allocated planes, least recently written first."""
        return list(self._planes)

    # -- writes (main thread) -------------------------------------------------------------
    def _allocate(
        self, index: int, image: np.ndarray | list[np.ndarray], *, owned: bool = False
    ) -> list[np.ndarray]:
        """Make a plane (all levels) from ``image``; ``owned`` arrays are used without a copy."""
        if isinstance(image, list) and [a.shape for a in image] == self.level_shapes and owned:
            levels = [np.asarray(a, dtype=np.float32) for a in image]
        else:
            base = image[0] if isinstance(image, list) else image
            levels = [np.array(base, dtype=np.float32, copy=True)]
            for _ in self.level_shapes[1:]:
                levels.append(halve(levels[-1]))
        self._planes[index] = levels
        self._done[index] = np.zeros(self.grid.counts, bool)
        return levels

    def _ensure_plane(self, index: int) -> list[np.ndarray]:
        planes = self._planes.get(index)
        if planes is None:
            return self._allocate(index, self._plane_view(index))
        self._planes.move_to_end(index)
        return planes

    def _update_levels(self, planes: list[np.ndarray], ys: slice, xs: slice) -> None:
        """Recompute the block means over a changed full-resolution region."""
        y0, y1, x0, x1 = ys.start, ys.stop, xs.start, xs.stop
        for k in range(1, len(planes)):
            h, w = planes[k].shape
            y0, x0 = y0 // 2, x0 // 2
            y1, x1 = min(h, -(-y1 // 2)), min(w, -(-x1 // 2))
            if y1 > y0 and x1 > x0:
                planes[k][y0:y1, x0:x1] = halve(planes[k - 1][2 * y0 : 2 * y1, 2 * x0 : 2 * x1])

    def put(
        self, job: LiveJob, result: np.ndarray | list[np.ndarray] | CoarsePreview
    ) -> list[int]:
        """Write a job's result; returns the output planes it changed.

        A sketch is put like a preview of its plane unless something denoised
        shows there already (then it is dropped and nothing changes); it does
        not mark the preview done. A 2D preview may come as
        :func:`~.levels.display_levels` or a
        :class:`CoarsePreview` (then its arrays are taken over, not copied: the
        caller must not reuse them). A preview never overwrites finished tiles;
        with its detail band it is matched to them (:class:`PreviewMatch`) and
        re-matched as tiles arrive.
        """
        changed = list(self.planes_of(job))
        sketch = job.kind == "sketch"
        if sketch:
            if self.volume:
                raise ValueError("a sketch is a 2D plane's first preview; this store is a volume")
            if self.is_done(job):
                return []  # a preview or tiles are there already: a late sketch is dropped
            job = LiveJob("preview", job.plane)
        if isinstance(result, CoarsePreview):
            self._match.pop(job.plane, None)
            if result.detail is not None and not self.preview_is_exact and not self.volume:
                self._match[job.plane] = PreviewMatch(result.detail)
            result = result.levels
        if job.kind == "preview" and not self.volume and isinstance(result, list):
            if result[0].shape != self.shape[-2:]:
                raise ValueError(f"preview shape {result[0].shape} != plane {self.shape[-2:]}")
            self._paste_preview(job.plane, result)
            self._mark_preview(job.plane, sketch)
            self.version += 1
            return changed
        result = np.asarray(result, dtype=np.float32)
        if job.kind == "preview" and self.volume:
            self._preview3d = result.copy()
            exact = self.preview_is_exact and result.shape == self.shape
            for z in range(self.shape[0]) if exact else list(self._planes):
                self._paste_preview(z, self._upsampled_preview(z))  # where no tile has been
                if exact:
                    self._done[z][...] = True
        elif job.kind == "preview":
            if result.shape != self.shape[-2:]:
                raise ValueError(f"preview shape {result.shape} != plane {self.shape[-2:]}")
            self._paste_preview(job.plane, result)
            self._mark_preview(job.plane, sketch)
        else:
            ys, xs = self.grid.slices(job.iy, job.ix)
            for i, z in enumerate(changed):
                part = result[i] if self.volume else result
                if part.shape != (ys.stop - ys.start, xs.stop - xs.start):
                    raise ValueError(f"tile {job} has shape {part.shape}")
                planes = self._ensure_plane(z)
                match = self._match.get(z)
                fresh = match is not None and not self._done[z][job.iy, job.ix]
                if fresh and z in self._preview:
                    match.add(planes[0][ys, xs], part, ys, xs)
                planes[0][ys, xs] = part
                self._update_levels(planes, ys, xs)
                self._done[z][job.iy, job.ix] = True
                if fresh:
                    self._rematch(z)
        self.version += 1
        return changed

    def _mark_preview(self, plane: int, sketch: bool) -> None:
        if sketch:
            self._sketch.add(plane)
            return
        self._sketch.discard(plane)
        self._preview.add(plane)
        if self.preview_is_exact:
            self._done[plane][...] = True

    def _rematch(self, index: int) -> None:
        """Refit plane ``index``'s preview to its tiles; repaint the unfinished part if needed."""
        match, done = self._match.get(index), self._done.get(index)
        if match is None or done is None:
            return
        if done.all():
            del self._match[index]  # nothing left to match: free the detail band
            return
        change = match.refit()
        if change is None:
            return
        planes = self._planes[index]
        for iy, ix in zip(*np.nonzero(~done), strict=True):
            ys, xs = self.grid.slices(int(iy), int(ix))
            match.apply(planes[0][ys, xs], ys, xs, change)
            self._update_levels(planes, ys, xs)

    def _paste_preview(self, index: int, image: np.ndarray | list[np.ndarray]) -> None:
        done = self._done.get(index)
        if done is None or not done.any():
            self._allocate(index, image, owned=isinstance(image, list))
            return
        if isinstance(image, list):
            image = image[0]
        planes = self._ensure_plane(index)
        match = self._match.get(index)
        if match is not None:  # fit the new preview to the tiles already there
            for iy, ix in zip(*np.nonzero(done), strict=True):
                ys, xs = self.grid.slices(int(iy), int(ix))
                match.add(image[ys, xs], planes[0][ys, xs], ys, xs)
        for iy, ix in zip(*np.nonzero(~done), strict=True):
            ys, xs = self.grid.slices(int(iy), int(ix))
            planes[0][ys, xs] = image[ys, xs]
            self._update_levels(planes, ys, xs)
        if match is not None:
            self._rematch(index)

    def coarsest(self, plane: int) -> np.ndarray:
        """Output plane ``plane`` at its coarsest display level (what a zoomed-out view shows)."""
        return self._plane_view(
            int(plane) % self.shape[0] if self.ndim == 3 else 0, len(self._views) - 1
        )

    def hold(self, plane: int, image: Any) -> bool:
        """Show ``image`` on an empty 2D plane until its preview arrives (nothing is marked done).

        Used when the settings change: the last result stays on screen
        instead of a uniform grey, and is resampled (nearest neighbour) when
        the new output has another shape (binning). Returns False when the
        plane already has content (or for 3D-model stores).
        """
        if self.volume or plane in self._planes or not 0 <= plane < self.n_planes:
            return False
        image = np.asarray(image)
        if image.ndim != 2 or image.size == 0:
            return False
        self._allocate(plane, resample_nearest(image, self.shape[-2:]))
        self.version += 1
        return True

    def evict(self, plane: int) -> list[LiveJob]:
        """Drop an allocated plane; returns the jobs that must be redone to restore it."""
        self._planes.pop(plane, None)
        self._match.pop(plane, None)
        done = self._done.pop(plane, None)
        self._preview.discard(plane)
        self._sketch.discard(plane)
        self.version += 1
        jobs = [] if self.volume else [LiveJob("preview", plane)]
        if done is not None:
            job_plane = self.plane_job_index(plane)
            jobs += [
                LiveJob("tile", job_plane, int(iy), int(ix))
                for iy, ix in zip(*np.nonzero(done), strict=True)
            ]
        self.claims.discard_all([*jobs, LiveJob("sketch", plane)])
        return jobs


class LevelView:
    """A read-only 2x-downsampled display level of a :class:`ProgressiveStore` (for napari)."""

    def __init__(self, store: ProgressiveStore, level: int) -> None:
        self.store, self.level = store, level
        self.dtype = store.dtype
        self.ndim = store.ndim
        self.shape = (*store.shape[:-2], *store.level_shapes[level])

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.store._get(key, self.level)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[(slice(None),) * self.ndim]
        return np.array(out, dtype=dtype or self.dtype, copy=True)


def _normalise_key(key: Any, ndim: int) -> tuple:
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (ndim - len(key) + 1)
        key = key[:i] + fill + key[i + 1 :]
    if len(key) < ndim:
        key = key + (slice(None),) * (ndim - len(key))
    if len(key) > ndim:
        raise IndexError(f"too many indices for a {ndim}D tile store: {key}")
    return key
