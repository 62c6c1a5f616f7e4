"""Live preview of a network being trained: the visible part of a layer, denoised.

:class:`TrainingPreview` receives network snapshots (CPU copies, from the
training core's ``on_snapshot``) on the main thread, reads the camera there,
and denoises the visible part of its source layer (at most
:data:`~..train_jobs.PREVIEW_MAX` px square around the view centre) in
a napari worker with the engine's region API. Snapshots that arrive while a
preview is computed are coalesced: only the newest is used. The result goes
into one ``<layer> [training preview]`` layer placed exactly over its source
region; panning or zooming recomputes it (debounced) with the latest snapshot.
A movie layer is previewed on the sum of its frames (computed once, in the
first preview's worker): one raw frame has a fraction of the dose.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, QTimer, Signal

from ...compute import Prepared, PreparedCache, read_only
from ...layers import METADATA_KEY
from ...measure import full_resolution
from ...results import contrast_limits_for, data_key
from ...train_jobs import PREVIEW_MAX, PREVIEW_MAX_3D, compute_preview, preview_region
from ..live import camera_of, current_plane, visible_box

#: Key in ``layer.metadata["cryodenoise"]`` of preview layers.
PREVIEW_KEY = "training_preview"
VIEW_DEBOUNCE_MS = 400


def frame_sum(movie: Any) -> np.ndarray:
    """Sum of the frames of a ``(frames, y, x)`` array, as float32, one frame at a time."""
    out = np.zeros(tuple(movie.shape[1:]), np.float32)
    for i in range(int(movie.shape[0])):
        out += np.asarray(movie[i], dtype=np.float32)
    return out


class FrameSum(Prepared):
    """A :class:`Prepared` movie frame sum, computed on first use (in a worker), thread-safe."""

    def __init__(self, movie: Any) -> None:  # noqa: D107 - no super(): ``image`` is lazy
        self._movie = movie
        self._sum: np.ndarray | None = None
        self._sum_lock = threading.Lock()
        self._stats = None
        self._lock = threading.Lock()

    @property
    def image(self) -> np.ndarray:  # type: ignore[override]
        """The frame sum."""
        with self._sum_lock:
            if self._sum is None:
                self._sum = read_only(frame_sum(self._movie))
            return self._sum


def preview_name(source_name: str) -> str:
    """Name of the preview layer of a source layer."""
    return f"{source_name} [training preview]"


class TrainingPreview(QObject):
    """Denoise the visible part of one layer with network snapshots, off the GUI thread.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose camera decides the region and where the preview layer goes.

    """

    #: A preview could not be computed (message).
    failed = Signal(str)

    def __init__(self, viewer: Any) -> None:
        super().__init__()
        self.viewer = viewer
        self.source: Any = None
        self.layer: Any = None
        self.device = "cpu"
        self.sum_frames = False
        self.model: Any = None
        self.step = 0
        self._pending: Any = None
        self._worker: Any = None
        self._prepared = PreparedCache(max_items=2)
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(VIEW_DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        camera = camera_of(viewer)
        self._events = [camera.events.center, camera.events.zoom, viewer.dims.events.current_step]
        for emitter in self._events:
            emitter.connect(self._on_view_changed)

    @property
    def running(self) -> bool:
        """True while a preview is computed."""
        return self._worker is not None

    def reset(self, source: Any, device: str, *, sum_frames: bool = False) -> None:
        """Preview ``source`` (an image layer, or None for no preview) from now on.

        With ``sum_frames``, a 3D (frames, y, x) source is previewed on its frame sum.
        """
        self.source, self.device = source, device
        self.sum_frames = bool(sum_frames)
        self.model = self._pending = None
        self.step = 0

    def submit(self, model: Any, step: int) -> Any:
        """A new snapshot: preview it now, or as soon as the running preview is done."""
        self.model = self._pending = model
        self.step = step
        return self._start()

    def refresh(self) -> Any:
        """Denoise the current view again with the latest snapshot; returns the worker."""
        if self.model is None:
            return None
        if self._pending is None:
            self._pending = self.model
        return self._start()

    def stop(self) -> None:
        """Disconnect from the viewer and drop the snapshots (the widget is closing)."""
        for emitter in self._events:
            emitter.disconnect(self._on_view_changed)
        self._events = []
        if self._worker is not None:
            self._worker.quit()
        self.model = self._pending = None
        try:
            self._timer.stop()
        except RuntimeError:
            pass

    def _on_view_changed(self, *_: Any) -> None:
        if self.model is not None:
            self._timer.start()

    def _start(self) -> Any:
        layer = self.source
        if self._worker is not None or self._pending is None:
            return None
        if layer is None or layer not in self.viewer.layers:
            return None
        model, self._pending = self._pending, None
        arr = full_resolution(layer)
        model3d = int(getattr(model, "ndim", 2)) == 3
        if model3d and arr.ndim != 3:
            self.failed.emit("no preview: a 3D network needs a volume layer to preview on")
            return None
        plane = current_plane(self.viewer, layer) if arr.ndim == 3 else None
        stacked = arr.ndim == 3 and not model3d
        summed = stacked and self.sum_frames
        if summed:
            prepared = self._prepared.get((data_key(arr), "sum"), lambda: FrameSum(arr))
        else:
            image = arr[plane] if stacked else arr
            prepared = self._prepared.get(
                (data_key(arr), plane if stacked else -1), lambda: Prepared(read_only(image))
            )
        cap = PREVIEW_MAX_3D if model3d else PREVIEW_MAX
        region = preview_region(arr.shape[-2:], visible_box(self.viewer, layer), cap)
        step = self.step
        worker = create_worker(
            compute_preview,
            prepared,
            model,
            region,
            plane=plane if model3d else None,
            device=self.device,
            _start_thread=False,
            _ignore_errors=True,
        )
        worker.returned.connect(lambda out: self.show(layer, out, region, step, summed=summed))
        worker.errored.connect(lambda err: self.failed.emit(f"preview failed: {err}"))
        worker.finished.connect(lambda: self._done(worker))
        self._worker = worker
        worker.start()
        return worker

    def _done(self, worker: Any) -> None:
        if self._worker is worker:
            self._worker = None
            self._start()  # a newer snapshot may be waiting

    def show(
        self,
        source: Any,
        out: np.ndarray,
        region: tuple[slice, slice],
        step: int,
        *,
        summed: bool = False,
    ) -> Any:
        """Put a preview into the preview layer over its source region (main thread)."""
        if source not in self.viewer.layers:
            return None
        scale = np.asarray(source.scale, float)[-2:]
        offset = np.array([region[0].start, region[1].start], float)
        translate = np.asarray(source.translate, float)[-2:] + scale * offset
        facts = {
            "source_layer": source.name,
            PREVIEW_KEY: {
                "step": step,
                "region": [[s.start, s.stop] for s in region],
                "frames": "sum" if summed else "current",
            },
            "denoise": {"model": "training snapshot", "mode": "training preview"},
        }
        target = self.layer
        if target is not None and target in self.viewer.layers:
            target.data = out
            target.scale, target.translate = tuple(scale), tuple(translate)
            target.contrast_limits = contrast_limits_for(out)
            target.metadata = {METADATA_KEY: facts}
            target.name = preview_name(source.name)
            return target
        self.layer = self.viewer.add_image(
            out,
            name=preview_name(source.name),
            scale=tuple(scale),
            translate=tuple(translate),
            units=tuple(source.units)[-2:],
            contrast_limits=contrast_limits_for(out),
            metadata={METADATA_KEY: facts},
        )
        return self.layer
