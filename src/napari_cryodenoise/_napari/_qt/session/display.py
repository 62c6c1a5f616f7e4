"""Show a session's current micrograph raw | denoised, with the Denoise widget's live engine.

:class:`SessionDisplay` owns two layers: the raw micrograph (its data, name,
scale and contrast replaced on every step) and the denoised one, a
:class:`~...live.LiveView` on a progressive store per micrograph (kept in a
memory-bounded :class:`~napari_cryodenoise.engine.progressive.StoreCache`, so
going back is instant), published by the Denoise widget's
:class:`~..denoise.publish.ResultPublisher`. A micrograph that
``cryodenoise watch`` already denoised (``OUTDIR/<stem>.mrc``) is shown from
its file instead. When the view is idle, :class:`~.prefetch.Prefetcher`
denoises the neighbours ahead into their stores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, Signal

from ....options import auto_bin
from ...compare import SideBySide
from ...compute import LiveContext, ModelCache, PreparedCache, output_shape, overview_of
from ...layers import replace_layer
from ...session import Session, SessionItem, find_output
from ...session_data import Display, DisplayCache, load_display
from ...settings import DenoiseSettings
from ...tiles import Job, StoreCache, TileStore, pyramid_depth
from ..denoise.live_panel import memory_budget, sample_mean, tile_size
from ..denoise.publish import ResultPublisher
from ..denoise.state import DenoiseState
from ..live import LiveView, ensure_pool_threads, refresh_layer
from .prefetch import Prefetcher


class SessionDisplay(QObject):
    """The raw and denoised layers of a session and the live view between them.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Where the two layers are shown (side by side).
    models : ModelCache
        The shared model cache.
    report : callable
        Receives one-line status texts (main thread).

    """

    #: emitted with the session index once its denoised view (preview or output) is drawn
    shown = Signal(int)

    def __init__(self, viewer: Any, models: ModelCache, report: Callable[[str], None]) -> None:
        super().__init__()
        self.viewer, self.models, self.report = viewer, models, report
        self.model_name, self.device = "unet", "auto"
        self.outdir: str | None = None
        self.radius = 1
        self.displays = DisplayCache()
        self.stores = StoreCache(min(memory_budget(), 2 << 30))
        self.prepared = PreparedCache(max_items=4)
        self.lock = threading.Lock()  # one computation at a time: the view's and the prefetch's
        self.publisher = ResultPublisher(viewer, DenoiseState())
        self.side_by_side = SideBySide(viewer)
        self.prefetcher = Prefetcher(self)
        self.raw_layer: Any = None
        self.view: LiveView | None = None
        self._views: list[LiveView] = []
        self._loading: Any = None
        self._refit = False  # the micrograph's extent changed: fit the view once it is shown
        self.session: Session | None = None
        self.index = -1
        ensure_pool_threads()

    # -- what the live view and the prefetcher share ----------------------------------------
    @property
    def out_layer(self) -> Any:
        """The denoised layer (None before the first view)."""
        layer = self.publisher.state.result_layer
        return layer if layer is not None and layer in self.viewer.layers else None

    def model(self) -> Any | None:
        """The loaded model (None until loaded)."""
        return self.models.peek(self.model_name)

    def settings_for(self, display: Display) -> DenoiseSettings:
        """Live settings for a micrograph: the model, and the bin for its pixel size."""
        return DenoiseSettings(
            model=self.model_name, device=self.device, bin_factor=auto_bin(display.pixel_size)
        )

    def store_for(self, display: Display, settings: DenoiseSettings, model: Any) -> TileStore:
        """The micrograph's store (made on first use; kept in the memory-bounded cache)."""
        tile = tile_size(settings, model)
        key = (display.key, settings.result_key(), tile)
        store = self.stores.get(key)
        if store is None:
            shape = output_shape(display.data.shape, settings, stacked=False)
            store = TileStore(
                shape, tile, fill_value=sample_mean(display.data), levels=pyramid_depth(shape)
            )
            self.stores.put(key, store)
        return store

    def context_for(
        self, display: Display, settings: DenoiseSettings, model: Any, store: TileStore
    ) -> LiveContext:
        """The frozen inputs of a worker denoising ``display`` into ``store``."""
        return LiveContext(
            data=display.data,
            data_key=display.key,
            settings=settings,
            model=model,
            grid=store.grid,
            levels=len(store.level_shapes) - 1,
            overview=overview_of(display.levels),
            prepared=self.prepared,
            compute_lock=self.lock,
            claims=store.claims,
        )

    def output_for(self, item: SessionItem) -> Any:
        """The watch output of ``item`` if it is there whole, else None."""
        return find_output(item, self.outdir)

    def display_of(self, item: SessionItem) -> Display:
        """The item's display, from the cache or read now (main thread)."""
        key = item.key
        return self.displays.get(key) or self.displays.put(load_display(item.path, key))

    # -- showing --------------------------------------------------------------------------
    def show(self, session: Session) -> None:
        """Show ``session.current`` raw | denoised (a no-op for an empty session)."""
        self.session = session
        item = session.current
        self.prefetcher.cancel()
        self._stop_view()
        if item is None:
            return
        self.index = session.index
        display = self.display_of(item)
        before = self._raw_extent()
        raw = self._show_raw(display)
        after = self._raw_extent()
        if before is None or before.shape != after.shape or not np.allclose(before, after):
            # the first micrograph (the camera fits the raw layer alone, not two cells), or
            # another size or pixel size: the old view may miss it all
            self._refit = True
        out = self.out_layer
        if not display.is_micrograph:  # a stack or a tomogram: shown raw, not denoised
            if out is not None:
                out.visible = False
            self._fit_view()
            shape = " x ".join(str(n) for n in display.data.shape)
            self.report(
                f"{item.name} is not a 2D micrograph ({shape}); the Session browser denoises "
                "micrographs: use the Denoise widget for stacks and tomograms"
            )
            return
        if out is not None:
            out.visible = True
        output = self.output_for(item)
        if output is not None:
            self._show_output(raw, load_display(output, (str(output),)))
            self.shown.emit(session.index)
            self.prefetcher.start(session)
            return
        model = self.model()
        if model is None:
            self._load_model_then_show(session)
            return
        self._show_live(raw, display, model)

    def _show_raw(self, display: Display) -> Any:
        kwargs = dict(display.kwargs)
        kwargs.pop("multiscale", None)
        layer = self.raw_layer
        layers = self.viewer.layers
        multiscale = isinstance(display.levels, list)
        if layer is None or layer not in layers or bool(layer.multiscale) != multiscale:
            old = layer if layer is not None and layer in layers else None
            layer = self.viewer.add_image(display.levels, multiscale=multiscale, **kwargs)
            replace_layer(layers, old, layer)
            self.raw_layer = layer
            return layer
        lo, hi = display.kwargs["metadata"]["cryodenoise"].get("data_range", (0.0, 1.0))
        old = (layer.metadata or {}).get("cryodenoise") or {}
        kept = {k: old[k] for k in ("session", "session_adopted") if k in old}
        kwargs["metadata"] = {"cryodenoise": {**kwargs["metadata"]["cryodenoise"], **kept}}
        layer.data = display.levels
        for name in ("name", "scale", "translate", "metadata"):
            setattr(layer, name, kwargs[name])
        limits = kwargs["contrast_limits"]
        layer.contrast_limits_range = (min(lo, limits[0]), max(hi, limits[1]))
        layer.contrast_limits = limits
        return layer

    def _show_live(self, raw: Any, display: Display, model: Any) -> None:
        settings = self.settings_for(display)
        store = self.store_for(display, settings, model)
        out = self.publisher.publish(raw, settings, model, store, update=True, live=True)
        if store.is_done(Job("sketch", 0)):  # a preview (or a sketch) is there already
            self.publisher.show_preview(out, store, 0)
            refresh_layer(out)
            self.shown.emit(self.index)
        live = LiveView(
            self.viewer,
            out,
            self.context_for(display, settings, model, store),
            store,
            self.stores,
            neighbours=0,
            fill=False,
            on_error=lambda err: self.report(f"denoising failed: {err}"),
        )
        live.preview_ready.connect(lambda _p, i=self.index: self._on_preview(live, i))
        live.status_changed.connect(self._on_status)
        live.idle.connect(self._on_idle)
        self.view = live
        self._views = [v for v in self._views if v.running] + [live]
        self._enter_side_by_side(raw, out)
        self._fit_view()
        live.start()

    def _show_output(self, raw: Any, display: Display) -> None:
        out = output_layer(self.viewer, raw, self.out_layer, display)
        self.publisher.state.result_layer = out
        self._enter_side_by_side(raw, out)
        self._fit_view()
        self.report(f"{raw.name}: shown from the watch output {display.info.name}")

    def _raw_extent(self) -> np.ndarray | None:
        """World extent of the raw layer (None before the first micrograph)."""
        layer = self.raw_layer
        if layer is None or layer not in self.viewer.layers:
            return None
        return np.array(layer.extent.world, dtype=float)

    def _fit_view(self) -> None:
        """Fit the view to the micrographs if their extent changed (same size: zoom kept)."""
        if self._refit:
            self._refit = False
            self.viewer.reset_view()

    def _enter_side_by_side(self, raw: Any, out: Any) -> None:
        if not self.side_by_side.active:
            self.side_by_side.enter(raw, out)

    def _load_model_then_show(self, session: Session) -> None:
        if self._loading is not None:
            return
        name = self.model_name
        self.report(f"loading model {name}...")
        worker = create_worker(
            self.models.load, name, warm=(self.device, "fp32"), _start_thread=False
        )

        def loaded(_model: Any) -> None:
            self._loading = None
            if self.session is session and session.current is not None:
                self.show(session)

        def failed(err: BaseException) -> None:
            self._loading = None
            self.report(f"model {name}: {err}")

        worker.returned.connect(loaded)
        worker.errored.connect(failed)
        self._loading = worker
        worker.start()

    # -- live view events -------------------------------------------------------------------
    def _on_preview(self, live: LiveView, index: int) -> None:
        if live is self.view:
            self.publisher.show_preview(live.layer, live.store, 0)
            self.shown.emit(index)

    def _on_status(self, done: int, total: int, left: int) -> None:
        if left:
            self.prefetcher.cancel()
        self.report(f"{done}/{total} tiles in view" + (" (denoising...)" if left else ""))

    def _on_idle(self) -> None:
        if self.session is not None and self.view is not None and self.view.active:
            self.prefetcher.start(self.session)

    def _stop_view(self) -> None:
        if self.view is not None:
            self.view.stop()
            self.view = None

    @property
    def running_workers(self) -> int:
        """Workers still running (live, prefetch, model load)."""
        loading = 1 if self._loading is not None else 0
        return sum(v.running for v in self._views) + self.prefetcher.running + loading

    def close(self) -> None:
        """Cancel everything; late results are ignored."""
        self.prefetcher.close()
        for view in [*self._views, self.view]:
            if view is not None:
                view.close()
        self.view = None


def output_layer(viewer: Any, raw: Any, out: Any, display: Display) -> Any:
    """Show a watch output in ``out`` (or a new layer), placed over ``raw``; returns the layer."""
    kwargs = dict(display.kwargs)
    multiscale = isinstance(display.levels, list)
    px = display.pixel_size or float(raw.scale[-1]) * raw.data.shape[-1] / display.data.shape[-1]
    geometry = {"scale": (px, px), "translate": tuple(raw.translate)}
    geometry.update({name: getattr(raw, name) for name in ("units", "axis_labels")})
    name = f"{raw.name} [watch output]"
    if out is not None and bool(out.multiscale) == multiscale:
        out.data = display.levels
        for key, value in geometry.items():
            setattr(out, key, value)
        out.name, out.metadata = name, kwargs["metadata"]
        out.contrast_limits = kwargs["contrast_limits"]
        return out
    new = viewer.add_image(
        display.levels,
        name=name,
        multiscale=multiscale,
        contrast_limits=kwargs["contrast_limits"],
        metadata=kwargs["metadata"],
        **geometry,
    )
    replace_layer(viewer.layers, out, new)
    return new
