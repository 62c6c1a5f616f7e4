"""Visible-first live denoising: camera -> visible tiles -> worker -> tiles on screen.

A :class:`LiveView` binds one output layer (showing a
:class:`~napari_cryodenoise.engine.progressive.ProgressiveStore`) to the
viewer's camera and dims. On every (debounced) pan, zoom, resize or slice
change it computes the visible box in output pixels, plans the jobs
(:func:`~napari_cryodenoise.engine.progressive.plan_jobs`: preview, visible
tiles nearest the centre first, neighbouring slices, then the rest) and, when
the plan changed, quits the old generator worker and starts a new one.
Workers yield ``(job, array)``; only this object, on the main thread, writes
into the store and refreshes the layer (immediately for a preview, otherwise
at most ``refresh_hz`` times a second).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from napari.qt.threading import GeneratorWorker, create_worker
from qtpy.QtCore import QObject, QThreadPool, QTimer, Signal

from ...engine.progressive import (
    Box,
    LiveJob,
    ProgressiveStore,
    StoreCache,
    clip_box,
    plan_jobs,
)
from ..compute import LiveContext, live_jobs

log = logging.getLogger(__name__)


def ensure_pool_threads(minimum: int = 4) -> None:
    """Let Qt's global pool run a finishing worker, its successor and a whole-image job."""
    pool = QThreadPool.globalInstance()
    if pool.maxThreadCount() < minimum:
        pool.setMaxThreadCount(minimum)


def wait_for_workers(timeout_ms: int = 10000) -> bool:
    """Block until Qt's global thread pool is idle (at most ``timeout_ms``); True if it is.

    For shutting down: a worker that is still running when Python tears the
    Qt objects down dies emitting on a deleted signal object ("wrapped C/C++
    object ... has been deleted", then an abort). Cancelled live and
    whole-image workers stop within a tile, so the wait is short.
    """
    return bool(QThreadPool.globalInstance().waitForDone(int(timeout_ms)))


def hold_last_result(store: ProgressiveStore, viewer: Any, layer: Any) -> bool:
    """Show ``layer``'s current plane in ``store`` until the store's own preview replaces it.

    For a settings change: without it the new (empty) store shows a uniform
    grey for the second or so the new preview takes. Returns True if held.
    """
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    if data is store or store.volume:
        return False
    plane = current_plane(viewer, layer) if data.ndim == 3 else 0
    if data.ndim == 3 and data.shape[0] != store.n_planes:
        return False
    try:
        image = data[plane] if data.ndim == 3 else data
        if isinstance(image, ProgressiveStore) or not isinstance(image, np.ndarray):
            image = np.asarray(image)
        return store.hold(plane, image)
    except (IndexError, ValueError, TypeError):
        return False


def camera_of(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` in napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    camera = getattr(scene, "camera", None)
    return camera if camera is not None else viewer.camera


def viewbox_size(viewer: Any) -> tuple[float, float]:
    """Height and width in screen pixels of the view showing one layer (grid-aware)."""
    canvas = getattr(viewer, "canvas", None)
    try:
        return tuple(float(v) for v in canvas.viewbox_size(viewer.layers))  # type: ignore
    except (AttributeError, TypeError, ValueError):
        pass
    size = getattr(canvas, "size", None) or getattr(viewer, "_canvas_size", (600, 800))
    return float(size[0]), float(size[1])


def visible_box(viewer: Any, layer: Any) -> Box | None:
    """The part of ``layer``'s last two data axes on screen, in its pixels (unclipped).

    Returns None when the view is 3D or the displayed axes are not the last
    two of the layer (then the whole plane counts as visible).
    """
    dims = viewer.dims
    if dims.ndisplay != 2 or tuple(dims.displayed) != (dims.ndim - 2, dims.ndim - 1):
        return None
    h, w = viewbox_size(viewer)
    camera = camera_of(viewer)
    zoom = float(camera.zoom)
    if zoom <= 0:
        return None
    cy, cx = (float(c) for c in camera.center[-2:])
    dy, dx = h / (2 * zoom), w / (2 * zoom)
    corners = []
    for y, x in ((cy - dy, cx - dx), (cy + dy, cx + dx)):
        point = list(dims.point)
        point[-2], point[-1] = y, x
        world = point[-layer.ndim :]
        corners.append(np.asarray(layer.world_to_data(world), float)[-2:])
    lo, hi = np.minimum(*corners), np.maximum(*corners)
    return (float(lo[0]), float(hi[0] + 1)), (float(lo[1]), float(hi[1] + 1))


def refresh_layer(layer: Any) -> None:
    """Redraw a layer whose array changed in place (single- or multiscale).

    napari 0.9 materialises the coarsest level of a 2D multiscale layer once
    and caches it (it is also the thumbnail); that cache must be dropped or a
    zoomed-out view keeps showing the old values.
    """
    if getattr(layer, "multiscale", False):
        reset = getattr(layer, "_reset_thumbnail_level_data", None)
        if callable(reset):
            reset()
        else:  # other napari versions: re-setting the data drops every cache
            layer.data = list(layer.data)
            return
    layer.refresh()


def current_plane(viewer: Any, layer: Any) -> int:
    """Index along the layer's first axis at the dims position (0 for 2D layers)."""
    if layer.ndim < 3:
        return 0
    world = list(viewer.dims.point)[-layer.ndim :]
    index = float(np.asarray(layer.world_to_data(world))[0])
    shape = layer.data[0].shape if layer.multiscale else layer.data.shape
    return int(np.clip(round(index), 0, shape[0] - 1))


class LiveView(QObject):
    """Drive a live output layer from the camera; see the module docstring.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose camera and dims decide what is visible.
    layer : napari.layers.Image
        Output layer; its data must be ``store.layer_data()``.
    ctx : LiveContext
        Frozen inputs for the workers (its ``claims`` are ``store.claims``).
    store : ProgressiveStore
        Where results go.
    cache : StoreCache
        Memory budget shared with other stores.
    neighbours : int
        Neighbouring planes (or slabs) done after the visible part of the current one.
    fill : bool
        Continue with the rest of the current plane when the visible part is done.
    sketch : bool
        Show a quick sketch of a plane first when it has nothing denoised yet
        (see :func:`~napari_cryodenoise.engine.preview.sketch_preview`), then its preview.
    refresh_hz : float
        Most layer refreshes per second while tiles arrive.
    on_error : callable, optional
        Called with the exception when a worker fails (main thread).

    """

    #: (tiles done on the current plane, tiles per plane, jobs left in the current plan)
    status_changed = Signal(int, int, int)
    #: emitted when the current plan is finished
    idle = Signal()
    #: emitted with the output plane index when a coarse preview (or sketch) was drawn
    preview_ready = Signal(int)
    #: emitted with the job when a full-resolution tile was stored
    tile_ready = Signal(object)

    def __init__(
        self,
        viewer: Any,
        layer: Any,
        ctx: LiveContext,
        store: ProgressiveStore,
        cache: StoreCache,
        *,
        neighbours: int = 1,
        fill: bool = True,
        sketch: bool = True,
        refresh_hz: float = 4.0,
        debounce_ms: int = 80,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        super().__init__()
        self.viewer, self.layer, self.ctx = viewer, layer, ctx
        self.store, self.cache = store, cache
        self.neighbours, self.fill, self.on_error = neighbours, fill, on_error
        self.sketch = sketch
        self._worker: GeneratorWorker | None = None
        self._cancel: threading.Event | None = None
        self._running: set[GeneratorWorker] = set()
        self._plan: list[LiveJob] = []
        self._dirty = False
        self._active = False
        self._closed = False
        self.plane = 0
        self.box: Box | None = None
        self.workers_started = 0
        self.t_start = time.perf_counter()
        self.t_first_view: float | None = None
        self.t_first_tile: float | None = None
        self.tiles_received = 0
        self._replan_timer = QTimer(self)
        self._replan_timer.setSingleShot(True)
        self._replan_timer.setInterval(debounce_ms)
        self._replan_timer.timeout.connect(self.replan)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(max(1, int(1000 / refresh_hz)))
        self._refresh_timer.timeout.connect(self._flush)
        ensure_pool_threads()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Connect to camera/dims events and plan the first jobs now."""
        if self._active:
            return
        self._active = True
        self.t_start = time.perf_counter()
        for emitter in self._emitters():
            emitter.connect(self.schedule_replan)
        self._refresh_timer.start()
        self.replan()

    def stop(self) -> None:
        """Cancel work and disconnect; finished tiles stay in the store."""
        if not self._active:
            return
        self._active = False
        for emitter in self._emitters():
            try:
                emitter.disconnect(self.schedule_replan)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._replan_timer.stop()
        self._cancel_worker()
        if not self._closed:
            self._flush()
        self._refresh_timer.stop()

    def close(self) -> None:
        """Stop for good (the viewer or the widget is closing).

        Workers are cancelled; whatever they still deliver (a last tile, their
        ``finished``) is ignored, so nothing touches a layer that is going away.
        """
        self._closed = True
        self.stop()

    @property
    def active(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._active

    @property
    def busy(self) -> bool:
        """True while the current worker is running."""
        return self._worker is not None

    @property
    def running(self) -> int:
        """Workers not yet finished, including cancelled ones finishing a tile."""
        return len(self._running)

    def _emitters(self) -> list[Any]:
        viewer = self.viewer
        camera = camera_of(viewer)
        out = [
            camera.events.center,
            camera.events.zoom,
            viewer.dims.events.current_step,
            viewer.dims.events.ndisplay,
        ]
        canvas = getattr(viewer, "canvas", None)
        if canvas is not None and hasattr(canvas.events, "size"):
            out.append(canvas.events.size)
        grid = getattr(canvas, "grid", None)
        if grid is not None:
            out.append(grid.events.enabled)
        return out

    # -- planning -------------------------------------------------------------------------
    def schedule_replan(self, *_: Any) -> None:
        """Debounced :meth:`replan` (connected to camera and dims events)."""
        if self._active:
            self._replan_timer.start()

    def replan(self) -> list[LiveJob]:
        """Recompute the visible box and restart the worker when the priorities changed."""
        if not self._active:
            return []
        layer = self.layer
        plane = current_plane(self.viewer, layer)
        raw_box = visible_box(self.viewer, layer)
        box = (
            clip_box(raw_box, self.store.shape[-2:])
            if raw_box is not None
            else ((0.0, float(self.store.shape[-2])), (0.0, float(self.store.shape[-1])))
        )
        self.plane, self.box = plane, box
        jobs = plan_jobs(
            self.store,
            box,
            plane,
            neighbours=self.neighbours,
            fill=self.fill,
            skip=self.store.claims.snapshot(),
            sketch=self.sketch,
        )
        if self._worker is not None and jobs == self._plan_left():
            return jobs  # same priorities: let the running worker go on
        self._cancel_worker()
        self._plan = list(jobs)
        self._emit_status()
        if jobs:
            self._start_worker(jobs)
        else:
            self.idle.emit()
        return jobs

    def plan_left(self) -> list[LiveJob]:
        """Jobs of the current plan not finished yet (by any worker)."""
        return self._plan_left()

    def _plan_left(self) -> list[LiveJob]:
        done = self.store.claims.snapshot()
        return [j for j in self._plan if j not in done and not self.store.is_done(j)]

    # -- workers --------------------------------------------------------------------------
    def _start_worker(self, jobs: list[LiveJob]) -> None:
        cancel = threading.Event()
        worker = create_worker(
            live_jobs, self.ctx, jobs, cancel, _start_thread=False, _ignore_errors=True
        )
        self._worker, self._cancel = worker, cancel
        self.workers_started += 1
        worker.yielded.connect(self._on_yielded)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(lambda: self._on_finished(worker))
        self._running.add(worker)
        worker.start()

    def _cancel_worker(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        if self._worker is not None:
            self._worker.quit()
        self._worker, self._cancel = None, None

    def _on_finished(self, worker: GeneratorWorker) -> None:
        self._running.discard(worker)
        if self._closed:
            return
        if worker is self._worker:
            self._worker, self._cancel = None, None
            self._flush()
            self._emit_status()
            if self._active and not self._plan_left():
                self.idle.emit()

    def _on_errored(self, err: BaseException) -> None:
        if self._closed:
            return
        log.error("live denoising failed: %s", err)
        self.stop()
        if self.on_error is not None:
            self.on_error(err)

    def _on_yielded(self, item: tuple[LiveJob, np.ndarray]) -> None:
        if self._closed:
            return
        job, result = item
        planes = self.store.put(job, result)
        now = time.perf_counter()
        if job.kind == "tile":
            self.tiles_received += 1
            if self.t_first_tile is None:
                self.t_first_tile = now - self.t_start
        pinned = {id(self.store): set(planes) | {self.plane}}
        self.cache.enforce(pinned)
        if not self.store.shows(self.layer.data):
            return  # a late result for a store that is no longer shown: kept, not drawn
        self._dirty = True
        if job.kind in ("sketch", "preview") and self.plane in planes:
            self._flush()  # the first view (or a better one): draw it now
            if self.t_first_view is None:
                self.t_first_view = time.perf_counter() - self.t_start
            self.preview_ready.emit(self.plane)
        elif job.kind == "tile":
            self.tile_ready.emit(job)
        self._emit_status()

    def _flush(self) -> None:
        if self._dirty and self.store.shows(self.layer.data):
            self._dirty = False
            refresh_layer(self.layer)

    def _emit_status(self) -> None:
        plane = self.store.plane_job_index(self.plane)
        first = self.store.slab_range(plane)[0] if self.store.volume else plane
        ny, nx = self.store.grid.counts
        done, total = self.store.tiles_done(first), ny * nx
        if self.store.plane_complete(first):
            done = total
        self.status_changed.emit(done, total, len(self._plan_left()))
