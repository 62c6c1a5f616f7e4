"""Denoise-ahead: the neighbours of the shown micrograph, computed while the user looks.

When the live view of micrograph k is idle, :class:`Prefetcher` plans (main
thread) for k+1 then k-1: their displays, their coarse previews, then the
tiles that will be visible (the current view's box), and runs them in one
generator worker (:func:`~napari_cryodenoise._napari.session_data.prefetch_steps`).
Results come back to the main thread, which files them in the display cache
and the stores. It is cancelled as soon as the view has work again or the
user steps; what was finished stays.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from napari.qt.threading import GeneratorWorker, create_worker
from qtpy.QtCore import QObject

from ...session import Session
from ...session_data import Display, PrefetchStep, prefetch_steps
from ...tiles import Box, clip_box, plan_jobs
from ..live import visible_box

if TYPE_CHECKING:
    from .display import SessionDisplay


def scaled_box(box: Box | None, old: tuple[int, ...], new: tuple[int, ...]) -> Box | None:
    """The same fraction of another plane (micrographs of one session share a shape)."""
    if box is None:
        return None
    (y0, y1), (x0, x1) = box
    fy, fx = new[-2] / max(1, old[-2]), new[-1] / max(1, old[-1])
    return clip_box(((y0 * fy, y1 * fy), (x0 * fx, x1 * fx)), new[-2:])


class Prefetcher(QObject):
    """Runs denoise-ahead for a :class:`SessionDisplay` (main thread object)."""

    def __init__(self, owner: SessionDisplay) -> None:
        super().__init__()
        self.owner = owner
        self._worker: GeneratorWorker | None = None
        self._cancel: threading.Event | None = None
        self._running: set[GeneratorWorker] = set()
        self._closed = False
        self.steps_done = 0
        #: id(store.claims) -> store, for the results of the steps planned
        self._targets: dict[int, Any] = {}

    @property
    def running(self) -> int:
        """Workers not finished yet (a cancelled one may finish a tile)."""
        return len(self._running)

    @property
    def busy(self) -> bool:
        """True while the current worker runs."""
        return self._worker is not None

    def plan(self, session: Session) -> list[PrefetchStep]:
        """Steps for the neighbours: displays, then previews, then visible tiles."""
        owner = self.owner
        model = owner.model()
        view = owner.view
        box = None
        shape: tuple[int, ...] = ()
        if view is not None and owner.out_layer is not None:
            shape = view.store.shape
            raw = visible_box(owner.viewer, owner.out_layer)
            box = clip_box(raw, shape[-2:]) if raw is not None else None
        if len(self._targets) > 32:  # stores of micrographs long gone
            self._targets = dict(list(self._targets.items())[-16:])
        displays, previews, tiles = [], [], []
        for k in session.prefetch_plan(owner.radius):
            item = session.items[k]
            key = item.key
            if owner.displays.get(key) is None:
                displays.append(PrefetchStep(k, item.path, key))
            if model is None or owner.output_for(item) is not None:
                continue
            try:  # the header only (memory-mapped): cheap
                display = owner.displays.get(key) or _header_display(item.path, key)
            except Exception:  # noqa: BLE001 - reported when the user steps to it
                continue
            if not display.is_micrograph:  # shown raw, not denoised (SessionDisplay.show)
                continue
            settings = owner.settings_for(display)
            store = owner.store_for(display, settings, model)
            ctx = owner.context_for(display, settings, model, store)
            self._targets[id(store.claims)] = store
            own = scaled_box(box, shape, store.shape) if shape else None
            jobs = plan_jobs(store, own, 0, fill=False, skip=store.claims.snapshot())
            first = tuple(j for j in jobs if j.kind == "preview")
            rest = tuple(j for j in jobs if j.kind != "preview")
            if first:
                previews.append(PrefetchStep(k, item.path, key, ctx, first))
            if rest:
                tiles.append(PrefetchStep(k, item.path, key, ctx, rest))
        return displays + previews + tiles

    def start(self, session: Session) -> bool:
        """Plan and start denoise-ahead (replacing a running one); True if there is work."""
        if self._closed:
            return False
        self.cancel()
        steps = self.plan(session)
        if not steps:
            return False
        cancel = threading.Event()
        worker = create_worker(
            prefetch_steps, steps, cancel, _start_thread=False, _ignore_errors=True
        )
        self._worker, self._cancel = worker, cancel
        worker.yielded.connect(self._on_yielded)
        worker.finished.connect(lambda: self._on_finished(worker))
        self._running.add(worker)
        worker.start()
        return True

    def cancel(self) -> None:
        """Stop the running denoise-ahead (finished results stay)."""
        if self._cancel is not None:
            self._cancel.set()
        if self._worker is not None:
            self._worker.quit()
        self._worker, self._cancel = None, None

    def close(self) -> None:
        """Cancel for good; late results are ignored."""
        self._closed = True
        self.cancel()

    def _on_finished(self, worker: GeneratorWorker) -> None:
        self._running.discard(worker)
        if worker is self._worker:
            self._worker, self._cancel = None, None

    def _on_yielded(self, item: tuple[PrefetchStep, Any]) -> None:
        if self._closed:
            return
        step, result = item
        owner = self.owner
        self.steps_done += 1
        if isinstance(result, Display):
            owner.displays.put(result)
            return
        job, array = result
        claims = step.ctx.claims if step.ctx is not None else None
        store = self._targets.get(id(claims))
        if store is None or store.claims is not claims:
            if claims is not None:
                claims.discard_all([job])  # not stored: to be computed again
            return
        store.put(job, array)
        view = owner.view
        pinned = {id(view.store): {0}} if view is not None else {}
        owner.stores.enforce(pinned)


def _header_display(path: Any, key: tuple) -> Display:
    """A display with data and header but no levels yet (for planning)."""
    from ....io import read_image

    data, info = read_image(path)
    return Display(key, data, info, data, {})
