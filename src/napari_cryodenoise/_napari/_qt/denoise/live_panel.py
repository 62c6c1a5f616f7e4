"""The live view of the Denoise widget: visible tiles first, a coarse preview at once.

:class:`LiveControl` sets up a :class:`~...live.LiveView` for a layer (tile
size, the cached tile store, the published result layer) and follows it: the
progress line, the preview's contrast, ``state.live_running``. The scheduling
itself is in :mod:`...live`, the tile planner and store in :mod:`...tiles`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ....types import DenoiserModel
from ...compute import LiveContext, PreparedCache, output_shape, overview_of, read_only
from ...measure import full_resolution
from ...results import data_key
from ...settings import DenoiseSettings
from ...tiles import StoreCache, TileStore, pyramid_depth
from ..live import LiveView, hold_last_result
from ..progress_line import ProgressLine
from ..workers import is_cpu
from .publish import ResultPublisher
from .state import DenoiseState

if TYPE_CHECKING:
    from napari.layers import Image
    from napari.viewer import Viewer


def memory_budget() -> int:
    """Live-view memory budget: a quarter of free memory, between 256 MiB and 4 GiB."""
    from ....engine import host_memory_share

    return host_memory_share(4 << 30, floor=256 << 20)


def sample_mean(data: np.ndarray) -> float:
    """Mean of a strided sample (cheap; a neutral grey before the preview arrives)."""
    step = max(1, int(math.ceil((np.prod(data.shape) / 65536) ** (1.0 / data.ndim))))
    sample = np.asarray(data[(slice(None, None, step),) * data.ndim], dtype=np.float64)
    value = float(np.nanmean(sample)) if sample.size else 0.0
    return value if math.isfinite(value) else 0.0


def tile_size(
    settings: DenoiseSettings,
    model: DenoiserModel,
    volume: bool = False,
    plane: Sequence[int] | None = None,
) -> int:
    """Live tile edge: the patch size if set, else ~1-2 s of work per tile; on the grid.

    Every tile is computed with the model's receptive halo around it (about 160 px per
    side for the U-Nets), so small tiles spend most of their work on context. Without a
    patch size the plane is split evenly into tiles of about 640 px (CPU) or 1024 px
    (GPU): a binned 1280 px plane then takes 2 x 2 tiles, not 3 x 3 with thin edge
    tiles, which finishes the whole plane about a third sooner for a first tile ~0.4 s
    later.
    """
    grid = max(1, int(getattr(model, "grid", 1)))
    if settings.patch_size:
        want = int(settings.patch_size)
    elif volume:
        want = 64 if is_cpu(settings.device) else 128
    else:
        want = 640 if is_cpu(settings.device) else 1024
        if plane:
            side = max(int(n) for n in plane[-2:])
            want = math.ceil(side / max(1, math.ceil(side / want)))
    return max(grid, int(math.ceil(want / grid)) * grid)


class LiveControl:
    """Start, follow and stop the Denoise widget's live view.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Where the live layer is shown.
    state : DenoiseState
        Read for the last result; receives ``live_running``.
    publisher : ResultPublisher
        Shows the live layer and fixes its contrast when the preview arrives.
    line : ProgressLine
        The dock's status line.
    on_error : callable
        Called with a worker's exception (main thread).

    """

    def __init__(
        self,
        viewer: Viewer,
        state: DenoiseState,
        publisher: ResultPublisher,
        line: ProgressLine,
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.viewer = viewer
        self.state = state
        self.publisher = publisher
        self.line = line
        self.on_error = on_error
        self.cache = StoreCache(memory_budget())
        self.prepared = PreparedCache()
        self.view: LiveView | None = None
        self._views: list[LiveView] = []  # with workers that may still be finishing
        #: Neighbouring slices (or 3D slabs) done after the current one.
        self.neighbours = 1

    @property
    def active(self) -> bool:
        """True while the live view runs."""
        return self.view is not None and self.view.active

    @property
    def running_workers(self) -> int:
        """Live workers still running (stopped views' included)."""
        return sum(v.running for v in self._views)

    def start(
        self,
        layer: Image,
        settings: DenoiseSettings,
        model: DenoiserModel,
        *,
        stacked: bool,
        volume: bool,
        update: bool,
        fill: bool,
    ) -> LiveView:
        """Denoise ``layer`` live into the last result layer (``update``) or a new one."""
        data = full_resolution(layer)
        dkey = data_key(data)
        shape = output_shape(data.shape, settings, stacked)
        tile = tile_size(settings, model, volume, plane=shape[-2:])
        slab = max(int(model.grid), 16) if volume else 1
        key = (dkey, settings.result_key(), tile, stacked, volume)
        store = self.cache.get(key)
        if store is None:
            store = self.cache.put(
                key,
                TileStore(
                    shape,
                    tile,
                    fill_value=sample_mean(data),
                    volume=volume,
                    slab=slab,
                    levels=pyramid_depth(shape),
                ),
            )
        self.stop()
        last = self.state.result_layer
        last = last if update and last in self.viewer.layers else None
        # the last result stays on screen until the new preview replaces it
        if last is not None:
            hold_last_result(store, self.viewer, last)
        out = self.publisher.publish(
            layer, settings, model, store, stacked=stacked, update=update, live=True
        )
        ctx = LiveContext(
            data=read_only(data),
            data_key=dkey,
            settings=settings,
            model=model,
            grid=store.grid,
            stacked=stacked,
            volume=volume,
            slab=slab,
            levels=len(store.level_shapes) - 1,
            overview=overview_of(layer.data) if getattr(layer, "multiscale", False) else None,
            prepared=self.prepared,
            claims=store.claims,
        )
        live = LiveView(
            self.viewer,
            out,
            ctx,
            store,
            self.cache,
            neighbours=self.neighbours,
            fill=fill,
            on_error=lambda err: self._on_failed(live, err),
        )
        live.status_changed.connect(self._on_status)
        live.preview_ready.connect(self._on_preview)
        self.view = live
        self._views = [v for v in self._views if v.running] + [live]
        self.state.live_running = True
        live.start()
        return live

    def _on_status(self, done: int, total: int, left: int) -> None:
        live = self.view
        if live is None:
            return
        line = self.line
        if left:
            if not line.running or line.prefix != "live":
                line.start("live", total, unit="tiles of this plane", done=done)
            planned = sum(1 for j in live.plan_left() if j.kind == "tile")
            line.update(done, total, steps=min(planned, max(0, total - done)) if planned else None)
        else:
            state = "done" if done >= total else "idle"
            line.stop(f"live: {done}/{total} tiles of this plane ({state})")
        self.state.live_running = live.active

    def _on_failed(self, live: LiveView, err: BaseException) -> None:
        if live is self.view:  # it stopped itself: so do the progress line and Cancel
            self.stop()
        self.on_error(err)

    def _on_preview(self, plane: int) -> None:
        live = self.view
        if live is not None:
            self.publisher.show_preview(live.layer, live.store, plane)

    def stop(self) -> None:
        """Stop the live view (its finished tiles stay in the layer and the cache)."""
        if self.view is not None:
            self.view.stop()
            self.view = None
        if self.line.running and self.line.prefix == "live":
            self.line.stop()  # else it goes on counting the seconds of a stopped view
        self.state.live_running = False

    def close(self) -> None:
        """Cancel every live worker and ignore their late results (the widget is closing)."""
        for view in [*self._views, self.view]:
            if view is not None:
                view.close()
        self.view = None
