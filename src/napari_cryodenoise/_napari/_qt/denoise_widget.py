"""The "Denoise" dock widget: settings form, run/cancel, live view, compare, save.

Everything slow runs in napari workers (model download/loading, whole-image
denoising, live tiles); this module only reads the form into a frozen
:class:`~.settings.DenoiseSettings`, starts workers and, on the main thread,
turns their results into layers.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils import cancelable_progress
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer

from ...binning import AUTO, AUTO_TARGET, auto_bin, auto_bin_text
from ...errors import Cancelled, CryoDenoiseError, InputError
from ..compare import SideBySide, flick
from ..compute import (
    LiveContext,
    ModelCache,
    PreparedCache,
    check_model_fits,
    denoise_whole,
    output_shape,
    read_only,
)
from ..contrast import LiveContrast, apply_preview, union
from ..live import LiveView, ensure_pool_threads, hold_last_result, wait_for_workers
from ..measure import layer_pixel_size
from ..result_info import provenance_text
from ..results import (
    contrast_limits_for,
    data_key,
    is_result,
    result_geometry,
    result_metadata,
    result_name,
    source_facts,
    source_path,
)
from ..save_guard import check_save
from ..settings import (
    MODE_LIVE,
    MODE_WHOLE,
    MODES,
    PRECISIONS,
    DenoiseSettings,
    cli_command,
    default_output_path,
)
from ..tiles import StoreCache, TileStore, pyramid_depth
from .form_memory import FormMemory
from .progress_line import ProgressLine, fit_label
from .workers import Relay, bar_updater, device_choices, is_cpu, model_choices, shutdown_quietly

log = logging.getLogger(__name__)

FROM_FILE = "__file__"
OUTPUT_NEW = "add a new layer"
OUTPUT_UPDATE = "update the last result"
FLICK_KEY = "Shift-F"
#: Explicit bin factors offered besides "auto".
BIN_CHOICES = (1, 2, 3, 4, 5, 6, 8)


def source_array(layer: Any) -> Any:
    """The full-resolution array of an image layer (level 0 of a multiscale one)."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def _budget() -> int:
    """Live-view memory budget: a quarter of free memory, between 256 MiB and 4 GiB."""
    try:
        from ...engine import available_memory, resolve_device

        free = available_memory(resolve_device("cpu"))
    except Exception:  # noqa: BLE001
        free = 4 << 30
    return int(min(4 << 30, max(256 << 20, free // 4)))


class DenoiseWidget(Container):
    """Dock widget that denoises an image layer, live or whole, and compares it with the raw one.

    When it opens, the chosen pretrained model is loaded and the engine set up
    in a background worker if its weights are already on this machine (never
    a download), so the first click answers fast; :attr:`PRELOAD` turns that off.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer it is docked in (napari passes it by this name).

    """

    #: Load the default model in the background when the widget opens.
    PRELOAD = True

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(labels=True)
        # napari hands plugins a public-only proxy; identity checks (layer is layer)
        # need the real objects
        viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.viewer = viewer
        self.models = ModelCache()
        self.cache = StoreCache(_budget())
        self.prepared = PreparedCache()
        self.live: LiveView | None = None
        self._live_views: list[LiveView] = []  # with workers that may still be finishing
        self.result_layer: Any = None
        self.raw_layer: Any = None
        self.side_by_side = SideBySide(viewer)
        self._worker: Any = None
        self._preload: tuple[str, Any] | None = None  # (model name, worker)
        self._cancel: threading.Event | None = None
        self._relays: list[Relay] = []
        self._busy_bar: Any = None
        self._contrast: dict[int, LiveContrast] = {}  # id(live layer) -> its contrast policy
        #: Live view: neighbouring slices (or 3D slabs) done after the current one.
        self.neighbours = 1
        ensure_pool_threads()

        self.input = ComboBox(label="image", choices=self._image_layers, nullable=True)
        self.model = ComboBox(label="model", choices=self._model_choices)
        self.model_file = FileEdit(
            label="model file", mode="r", filter="Models (*.pt *.pth *.sav *.ckpt);;All files (*)"
        )
        self.model_file.visible = False
        self.mode = ComboBox(label="mode", choices=list(MODES), value=MODE_LIVE)
        self.device = ComboBox(label="device", choices=device_choices())
        self.precision = ComboBox(label="precision", choices=list(PRECISIONS), value="fp32")
        self.patch_size = SpinBox(label="patch/tile (0=auto)", min=0, max=8192, step=32, value=0)
        self.bin_factor = ComboBox(
            label="bin",
            choices=self._bin_choices,
            value=AUTO,
            tooltip="Fourier-bin the image by this factor first. auto: from the header pixel "
            f"size towards ~{AUTO_TARGET:g} A/px (the general models were trained at ~2-3 A/px)",
        )
        self.lowpass = FloatSpinBox(
            label="low-pass",
            min=1.0,
            max=64.0,
            step=0.5,
            value=1.0,
            tooltip="hard Fourier low-pass factor in pixels (1 = off)",
        )
        self.gaussian = FloatSpinBox(
            label="gaussian",
            min=0.0,
            max=32.0,
            step=0.5,
            value=0.0,
            tooltip="Gaussian pre-filter sigma in pixels (0 = off)",
        )
        self.output = ComboBox(
            label="output", choices=[OUTPUT_UPDATE, OUTPUT_NEW], value=OUTPUT_UPDATE
        )
        self.fill = CheckBox(label="live: fill the whole image", value=True)
        self.run_button = PushButton(text="Denoise")
        self.cancel_button = PushButton(text="Cancel")
        self.cancel_button.enabled = False
        self.side_button = PushButton(text="raw | denoised side by side")
        self.flick_button = PushButton(text=f"flick raw / denoised ({FLICK_KEY})")
        self.save_button = PushButton(text="Save denoised as MRC...")
        self.command = LineEdit(label="command")
        self.command.native.setReadOnly(True)
        self.copy_button = PushButton(text="Copy command")
        self.status = Label(value="")
        self.info = Label(value="")  # provenance of the selected result layer
        self.info.native.setWordWrap(True)
        self.reset_button = PushButton(text="Reset settings")
        fit_label(self.status)  # a long status wraps instead of widening the dock
        self.progress_line = ProgressLine(self.status)
        self.extend(
            [
                self.input,
                self.model,
                self.model_file,
                self.mode,
                self.device,
                self.precision,
                self.patch_size,
                self.bin_factor,
                self.lowpass,
                self.gaussian,
                self.output,
                self.fill,
                self.run_button,
                self.cancel_button,
                self.side_button,
                self.flick_button,
                self.save_button,
                self.command,
                self.copy_button,
                self.status,
                self.info,
                self.reset_button,
            ]
        )

        self._rerun_timer = QTimer()
        self._rerun_timer.setSingleShot(True)
        self._rerun_timer.setInterval(300)
        self._rerun_timer.timeout.connect(self._rerun_live)

        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.side_button.changed.connect(self.toggle_side_by_side)
        self.flick_button.changed.connect(self.flick)
        self.save_button.changed.connect(self._save_dialog)
        self.copy_button.changed.connect(self._copy_command)
        self.model.changed.connect(self._on_model_choice)
        for w in (
            self.model,
            self.model_file,
            self.device,
            self.precision,
            self.patch_size,
            self.bin_factor,
            self.lowpass,
            self.gaussian,
            self.fill,
        ):
            w.changed.connect(self._on_settings_changed)
        self.input.changed.connect(self.bin_factor.reset_choices)
        self.input.changed.connect(self._update_command)
        self.reset_button.changed.connect(self.reset_settings)
        self.mode.changed.connect(self._update_command)
        self.mode.changed.connect(self._on_mode)
        self._on_mode()
        events = viewer.layers.events
        for name in ("inserted", "removed", "reordered"):
            getattr(events, name).connect(self._on_layers_changed)
        events.removed.connect(self._on_layer_removed)
        try:
            viewer.bind_key(FLICK_KEY, self._flick_key, overwrite=True)
        except Exception:  # noqa: BLE001 - keybindings are a convenience
            log.debug("could not bind %s", FLICK_KEY)
        self.memory = FormMemory(
            "denoise",
            {
                "model_file": self.model_file,
                "model": self.model,
                "mode": self.mode,
                "device": self.device,
                "precision": self.precision,
                "patch_size": self.patch_size,
                "bin": self.bin_factor,
                "lowpass": self.lowpass,
                "gaussian": self.gaussian,
                "output": self.output,
                "fill": self.fill,
            },
        )
        self.memory.restore()
        self.memory.connect()
        self._saved: dict[int, str] = {}  # id(result layer) -> file it was saved to
        self._info_layer: Any = None
        viewer.layers.selection.events.active.connect(self._show_provenance)
        self._on_layers_changed()
        self._update_command()
        self.native.destroyed.connect(lambda *_: shutdown_quietly(self))
        if self.PRELOAD:
            QTimer.singleShot(0, self.preload)

    def preload(self) -> Any:
        """Load the selected pretrained model and set up the engine in the background.

        Only when its weights are local; returns the worker, or None.
        """
        name = self.model.value
        if not isinstance(name, str) or name == FROM_FILE or self.models.peek(name) is not None:
            return None
        try:
            from ...models import find_weights

            if find_weights(name) is None:
                return None
        except Exception:  # noqa: BLE001 - not a zoo alias: load it on demand
            return None
        worker = create_worker(
            self.models.load,
            name,
            warm=(self.device.value, "fp32"),
            _start_thread=False,
            _ignore_errors=True,
        )
        self._preload = (name, worker)

        def finished() -> None:
            if self._preload is not None and self._preload[1] is worker:
                self._preload = None

        worker.finished.connect(finished)
        worker.start()
        return worker

    # -- choices --------------------------------------------------------------------------
    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Any]]:
        out = []
        for layer in self.viewer.layers:
            if (
                isinstance(layer, Image)
                and not layer.rgb
                and not isinstance(source_array(layer), TileStore)
            ):
                out.append((layer.name, layer))
        return out

    @staticmethod
    def _model_choices(_widget: Any = None) -> list[tuple[str, Any]]:
        try:
            choices = model_choices()
        except Exception as err:  # noqa: BLE001 - the file option still works
            log.warning("cannot list models: %s", err)
            choices = []
        return [*choices, ("load from file...", FROM_FILE)]

    def _on_layers_changed(self, event: Any = None) -> None:
        current = self.input.value
        self.input.reset_choices()
        values = [v for _, v in self._image_layers()]
        new = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
        if new is not None and new in values and not is_result(new):
            self.input.value = new  # a newly opened image is what the user wants to denoise
        elif current is None or current not in values:
            selected = self.viewer.layers.selection.active
            inputs = [v for v in values if not is_result(v)]  # never a result or a preview
            if selected in inputs:
                self.input.value = selected
            elif inputs or values:
                self.input.value = (inputs or values)[-1]

    def _on_layer_removed(self, event: Any) -> None:
        layer = event.value
        if self.live is not None and layer in (self.live.layer, self.raw_layer):
            self.stop_live()
        if layer is self.result_layer:
            self.result_layer = None
        if layer is self.raw_layer:
            self.raw_layer = None

    def _on_mode(self, *_: Any) -> None:
        live = self.mode.value == MODE_LIVE
        self.fill.enabled = live  # whole-image mode always does the whole image
        self.fill.tooltip = (
            "after the visible part, go on with the rest of the image"
            if live
            else "only for the live mode: whole-image mode always does the whole image"
        )

    def _on_model_choice(self, value: Any) -> None:
        self.model_file.visible = value == FROM_FILE

    def use_model_file(self, path: str | Path) -> None:
        """Select a model file (e.g. one just trained) as the model for the next run.

        A running live view is re-run with it.

        Raises
        ------
        InputError
            If ``path`` is not a file.

        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such model file")
        self.model.value = FROM_FILE
        self.model_file.value = path
        self.status.value = f"model: {path.name}"

    # -- settings -------------------------------------------------------------------------
    def _input_pixel_size(self) -> float | None:
        layer = getattr(self, "input", None)
        layer = layer.value if layer is not None else None
        if layer is None:
            return None
        pixel, real = layer_pixel_size(layer)
        return pixel if real else None

    def _bin_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(auto_bin_text(self._input_pixel_size()), AUTO)] + [
            (str(n), n) for n in BIN_CHOICES
        ]

    def bin_value(self) -> int:
        """The bin factor: the chosen one, or the automatic one for the input's pixel size."""
        value = self.bin_factor.value
        return auto_bin(self._input_pixel_size()) if value == AUTO else int(value)

    def reset_settings(self, *_: Any) -> None:
        """Back to the default settings, and forget the remembered ones."""
        self.memory.reset()
        self.status.value = "settings reset to the defaults"

    def settings(self) -> DenoiseSettings:
        """The form as frozen settings."""
        model = self.model.value
        if model == FROM_FILE:
            path = self.model_file.value
            if not path or not Path(path).is_file():
                raise InputError(
                    "choose a model file (a native checkpoint or a Topaz .sav) "
                    "or pick a pretrained model"
                )
            model = str(path)
        return DenoiseSettings(
            model=str(model),
            device=str(self.device.value),
            precision=str(self.precision.value),
            patch_size=int(self.patch_size.value) or None,
            gaussian=float(self.gaussian.value),
            lowpass=float(self.lowpass.value),
            bin_factor=self.bin_value(),
            mode=str(self.mode.value),
        )

    def _on_settings_changed(self, *_: Any) -> None:
        self._update_command()
        if self.live is not None and self.live.active and self.mode.value == MODE_LIVE:
            self._rerun_timer.start()

    def _update_command(self, *_: Any) -> None:
        layer = self.input.value
        try:
            settings = self.settings()
        except (InputError, ValueError):
            self.command.value = ""
            return
        stacked = (
            layer is not None
            and source_array(layer).ndim == 3
            and self._model_ndim(settings.model) == 2
        )
        path = source_path(layer) if layer is not None else None
        self.command.value = cli_command(settings, path, stack=stacked)

    def _model_ndim(self, name: str) -> int:
        model = self.models.peek(name)
        if model is not None:
            return int(getattr(model, "ndim", 2))
        return 3 if name.startswith("unet-3d") else 2

    def _copy_command(self, *_: Any) -> None:
        from qtpy.QtWidgets import QApplication

        QApplication.clipboard().setText(self.command.value)
        show_info("command copied to the clipboard")

    # -- running --------------------------------------------------------------------------
    def run(self, *_: Any) -> None:
        """Denoise the chosen layer with the form's settings (starts workers, returns at once)."""
        layer = self.input.value
        if layer is None:
            show_warning("open an image first (File > Open, or File > Open Sample)")
            return
        try:
            settings = self.settings()
        except (InputError, ValueError) as err:
            show_error(str(err))
            return
        if self._worker is not None:
            show_warning("a denoising job is running; cancel it first")
            return
        self._with_model(settings, lambda model: self._start(layer, settings, model))

    def _rerun_live(self) -> None:
        if self.live is not None and self.live.active and self.raw_layer is not None:
            try:
                settings = self.settings()
            except (InputError, ValueError) as err:
                show_error(str(err))
                return
            raw = self.raw_layer
            self._with_model(
                settings, lambda model: self._start(raw, settings, model, update=True)
            )

    def _with_model(self, settings: DenoiseSettings, then: Any) -> None:
        model = self.models.peek(settings.model)
        if model is not None:
            then(model)
            return
        if self._preload is not None and self._preload[0] == settings.model:
            worker = self._preload[1]  # being loaded already: continue when it is
            self.status.value = f"loading {settings.model_label}..."
            worker.returned.connect(then)
            worker.errored.connect(self._report)
            return
        label = settings.model_label
        self._launch(
            self.models.load,
            settings.model,
            desc=f"loading model {label}",
            text=f"loading {label}...",
            on_result=then,
            unit="steps",
            warm=(settings.device, settings.precision),
        )

    def _launch(
        self,
        fn: Any,
        *args: Any,
        desc: str,
        text: str,
        on_result: Any,
        unit: str = "tiles",
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, progress=, cancel=, **kwargs)`` in a worker with a progress bar.

        Progress shows in napari's activity panel and, with the time left, in
        the widget's status line. ``on_result(value)`` runs on the main
        thread; errors become notifications.
        """
        cancel = threading.Event()
        pbar = cancelable_progress(total=0, desc=desc, cancel_callback=cancel.set)
        bar = bar_updater(pbar)
        line = self.progress_line

        def progressed(done: int, total: int) -> None:
            bar(done, total)
            if self._worker is worker:
                line.update(done, total)

        relay = Relay(progressed)
        worker = create_worker(
            fn,
            *args,
            progress=relay.emit,
            cancel=cancel.is_set,
            _start_thread=False,
            _ignore_errors=True,
            **kwargs,
        )
        self._worker, self._cancel = worker, cancel
        self._relays.append(relay)
        self.cancel_button.enabled = True
        self.run_button.enabled = False
        line.start(text.rstrip(". "), total=0, unit=unit)

        def stop_line(*_: Any) -> None:
            if self._worker is worker:
                line.stop()

        def finished() -> None:
            pbar.close()
            stop_line()
            if relay in self._relays:
                self._relays.remove(relay)
            if self._worker is worker:
                self._worker, self._cancel = None, None
                self.run_button.enabled = True
                self.cancel_button.enabled = self.live is not None and self.live.active

        worker.returned.connect(stop_line)
        worker.returned.connect(on_result)
        worker.errored.connect(stop_line)
        worker.errored.connect(self._report)
        worker.finished.connect(finished)
        worker.start()
        return worker

    def _start(
        self, layer: Any, settings: DenoiseSettings, model: Any, *, update: bool | None = None
    ) -> None:
        if layer not in self.viewer.layers:
            return
        data = source_array(layer)
        try:
            stacked, volume = check_model_fits(model, data.ndim, data.shape)
        except InputError as err:
            show_error(str(err))
            return
        if settings.mode == MODE_WHOLE:
            self._start_whole(layer, settings, model, stacked, update)
        else:
            self._start_live(layer, settings, model, stacked, volume, update)

    def _start_whole(
        self, layer: Any, settings: DenoiseSettings, model: Any, stacked: bool, update: bool | None
    ) -> None:
        def done(result: np.ndarray) -> None:
            out = self.publish(layer, settings, model, result, stacked=stacked, update=update)
            self.status.value = f"done: {out.name}"

        self._launch(
            denoise_whole,
            read_only(source_array(layer)),
            model,
            settings,
            stacked=stacked,
            desc=f"denoise {layer.name}",
            text=f"denoising {layer.name}...",
            on_result=done,
        )

    def _start_live(
        self,
        layer: Any,
        settings: DenoiseSettings,
        model: Any,
        stacked: bool,
        volume: bool,
        update: bool | None,
    ) -> None:
        data = source_array(layer)
        dkey = data_key(data)
        shape = output_shape(data.shape, settings, stacked)
        tile = self.tile_size(settings, model, volume)
        slab = max(int(model.grid), 16) if volume else 1
        key = (dkey, settings.result_key(), tile, stacked, volume)
        store = self.cache.get(key)
        if store is None:
            store = self.cache.put(
                key,
                TileStore(
                    shape,
                    tile,
                    fill_value=_sample_mean(data),
                    volume=volume,
                    slab=slab,
                    levels=pyramid_depth(shape),
                ),
            )
        self.stop_live()
        if update is None:
            update = self.output.value == OUTPUT_UPDATE
        last = self.result_layer if update and self.result_layer in self.viewer.layers else None
        # the last result stays on screen until the new preview replaces it
        if last is not None:
            hold_last_result(store, self.viewer, last)
        out = self.publish(
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
            fill=bool(self.fill.value),
            on_error=self._report,
        )
        live.status_changed.connect(self._on_live_status)
        live.preview_ready.connect(self._on_preview)
        self.live = live
        self._live_views = [v for v in self._live_views if v.running] + [live]
        self.cancel_button.enabled = True
        live.start()

    def tile_size(self, settings: DenoiseSettings, model: Any, volume: bool = False) -> int:
        """Live tile edge: the patch size if set, else ~1-2 s of work per tile; on the grid."""
        grid = max(1, int(getattr(model, "grid", 1)))
        if settings.patch_size:
            want = int(settings.patch_size)
        elif volume:
            want = 64 if is_cpu(settings.device) else 128
        else:
            want = 512 if is_cpu(settings.device) else 1024
        return max(grid, int(math.ceil(want / grid)) * grid)

    def _on_live_status(self, done: int, total: int, left: int) -> None:
        live = self.live
        if live is None:
            return
        line = self.progress_line
        if left:
            if not line.running or line.prefix != "live":
                line.start("live", total, unit="tiles of this plane", done=done)
            planned = sum(1 for j in live.plan_left() if j.kind == "tile")
            line.update(done, total, steps=min(planned, max(0, total - done)) if planned else None)
        else:
            state = "done" if done >= total else "idle"
            line.stop(f"live: {done}/{total} tiles of this plane ({state})")
        self.cancel_button.enabled = self._worker is not None or live.active

    def _on_preview(self, plane: int) -> None:
        """A coarse preview of the current plane is on screen: the one intensity mapping."""
        live = self.live
        if live is None:
            return
        layer = live.layer
        policy = self._contrast.get(id(layer))
        if policy is None:
            return
        apply_preview(layer, policy, live.store.coarsest(plane))

    def stop_live(self) -> None:
        """Stop the live view (its finished tiles stay in the layer and the cache)."""
        if self.live is not None:
            self.live.stop()
            self.live = None
        self.cancel_button.enabled = self._worker is not None

    def cancel(self, *_: Any) -> None:
        """Cancel the running job and stop the live view."""
        if self._cancel is not None:
            self._cancel.set()
        if self._worker is not None:
            self._worker.quit()
        if self.live is not None:
            self.stop_live()
            self.status.value = "live view stopped"

    @property
    def busy(self) -> bool:
        """True while a model load or a whole-image job runs (live work not counted)."""
        return self._worker is not None

    @property
    def running_workers(self) -> int:
        """Workers still running (whole-image and live, cancelled ones included)."""
        live = sum(v.running for v in self._live_views)
        return live + (self._worker is not None) + (self._preload is not None)

    def shutdown(self, wait_ms: int = 10000) -> None:
        """Cancel everything (the viewer or the widget is closing); touches no widget.

        Workers are cancelled, their late results ignored, and the thread pool
        is given up to ``wait_ms`` to finish the tile in progress, so that no
        worker outlives the Qt objects it reports to.
        """
        self._rerun_timer.stop()
        self.progress_line.stop()
        if self._cancel is not None:
            self._cancel.set()
        if self._worker is not None:
            self._worker.quit()
        for view in [*self._live_views, self.live]:
            if view is not None:
                view.close()
        self.live = None
        if self.running_workers:
            wait_for_workers(wait_ms)

    def _report(self, err: BaseException) -> None:
        if isinstance(err, Cancelled):
            self.status.value = "cancelled"
            show_info("denoising cancelled")
            return
        if isinstance(err, CryoDenoiseError):
            message = str(err)
        elif isinstance(err, MemoryError):
            message = (
                f"out of memory ({err}); try a smaller patch size, bin 2, "
                "precision bf16 or the live mode"
            )
        else:
            message = (
                f"{type(err).__name__}: {err}. If this persists, report it with the "
                "command shown in the widget."
            )
        self.status.value = "failed: " + message.splitlines()[0][:120]
        show_error(f"Denoise failed: {message}")

    # -- results --------------------------------------------------------------------------
    def publish(
        self,
        source: Any,
        settings: DenoiseSettings,
        model: Any,
        data: Any,
        *,
        stacked: bool = False,
        update: bool | None = None,
        live: bool = False,
    ) -> Any:
        """Show a result: update the last result layer or add a new one (main thread).

        Parameters
        ----------
        source : napari.layers.Image
            The input layer.
        settings : DenoiseSettings
            What produced the result (recorded in the layer metadata and name).
        model : torch.nn.Module
            The network (its name and alias go into the metadata).
        data : numpy.ndarray or TileStore
            The result (a live store fills in later).
        stacked : bool
            The first axis is a stack of independent images.
        update : bool, optional
            Replace the last result layer; default from the "output" choice.
        live : bool
            The result is a live (visible-first) view.

        Returns
        -------
        napari.layers.Image

        """
        if update is None:
            update = self.output.value == OUTPUT_UPDATE
        geometry = result_geometry(source, tuple(data.shape))
        metadata = result_metadata(source, settings, model=model, stacked=stacked, live=live)
        name = result_name(source.name, settings)
        target = self.result_layer if update else None
        if live and target is not None and target in self.viewer.layers:
            limits = tuple(target.contrast_limits)  # kept until the new preview (one mapping)
        elif live:
            limits = self._live_limits(source)
        else:
            limits = contrast_limits_for(data)
        shown = data.layer_data() if isinstance(data, TileStore) else data
        multiscale = isinstance(shown, list)
        if (
            target is not None
            and target in self.viewer.layers
            and target.ndim == data.ndim
            and bool(target.multiscale) == multiscale
        ):
            target.data = shown
            target.scale = geometry["scale"]
            target.translate = geometry["translate"]
            target.metadata = metadata
            target.name = name
            target.contrast_limits = limits
        else:
            old = target if target is not None and target in self.viewer.layers else None
            index = list(self.viewer.layers).index(old) if old is not None else None
            target = self.viewer.add_image(
                shown,
                name=name,
                contrast_limits=limits,
                metadata=metadata,
                multiscale=multiscale,
                **geometry,
            )
            if old is not None:  # replace a layer that cannot take the new data in place
                self.viewer.layers.remove(old)
                self.viewer.layers.move(list(self.viewer.layers).index(target), index)
        if live:
            policy = self._contrast.setdefault(id(target), LiveContrast())
            policy.new_result()
            if not policy.check_user(target.contrast_limits):
                policy.accept(target.contrast_limits)
            # the slider may be widened up to the input's range
            raw_range = tuple(getattr(source, "contrast_limits_range", limits))
            target.contrast_limits_range = union(union(raw_range, limits), target.contrast_limits)
        self.result_layer, self.raw_layer = target, source
        self.input.value = source
        return target

    def _live_limits(self, source: Any) -> tuple[float, float]:
        lo, hi = contrast_limits_for(source_array(source))
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        return mid - half / 3, mid + half / 3  # denoised contrast is narrower; fixed on preview

    # -- compare --------------------------------------------------------------------------
    def _pair(self) -> tuple[Any, Any] | None:
        raw, out = self.raw_layer, self.result_layer
        if (
            raw is None
            or out is None
            or raw not in self.viewer.layers
            or out not in self.viewer.layers
        ):
            show_warning("denoise an image first: compare needs a raw and a denoised layer")
            return None
        return raw, out

    def toggle_side_by_side(self, *_: Any) -> bool:
        """Raw | denoised in a two-cell grid with one camera, and back."""
        pair = self._pair()
        if pair is None:
            return False
        state = self.side_by_side.toggle(*pair)
        self.side_button.text = "back to a single view" if state else "raw | denoised side by side"
        return state

    def flick(self, *_: Any) -> Any:
        """Swap raw and denoised at the same place (in grid mode: swap the cells)."""
        pair = self._pair()
        if pair is None:
            return None
        shown = flick(self.viewer, *pair)
        self.status.value = f"showing {shown.name}"
        return shown

    def _flick_key(self, _viewer: Any = None) -> None:
        self.flick()

    # -- saving ---------------------------------------------------------------------------
    def _show_provenance(self, *_: Any) -> None:
        """Info line and tooltip: how the selected (or last) result layer was made."""
        layer = self.viewer.layers.selection.active
        if layer is None or not is_result(layer):
            layer = self.result_layer if self.result_layer in self.viewer.layers else None
        if layer is not self._info_layer:  # follow in-place updates of this layer
            for old in (self._info_layer, layer):
                if old is not None:
                    old.events.metadata.disconnect(self._show_provenance)
            if layer is not None:
                layer.events.metadata.connect(self._show_provenance)
            self._info_layer = layer
        text, tip = provenance_text(layer, self._saved.get(id(layer)) if layer else None)
        try:
            self.info.value, self.info.tooltip = text, tip
        except RuntimeError:  # the widget is closed; the viewer still tells it
            pass

    def _save_dialog(self, *_: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        layer = self._save_target()
        if layer is None:
            return
        src = source_facts(layer).get("source_path")
        start = str(default_output_path(src)) if src else f"{layer.name}.mrc"
        path, _ = QFileDialog.getSaveFileName(
            self.native, "Save denoised image", start, "MRC (*.mrc *.mrcs *.map *.rec)"
        )
        if path:
            self.save_result(path, layer)

    def _save_target(self) -> Any:
        active = self.viewer.layers.selection.active
        if active is not None and is_result(active):
            return active
        if self.result_layer is not None and self.result_layer in self.viewer.layers:
            return self.result_layer
        show_warning("nothing to save yet: denoise an image first")
        return None

    def save_result(self, path: str | Path, layer: Any = None) -> Any:
        """Write a result layer to MRC (never over its input).

        A live layer that is not complete is first denoised whole, in a
        worker, with the same settings; the returned worker (or None when the
        file was written at once) lets callers wait for it.
        """
        layer = layer or self._save_target()
        if layer is None:
            return None
        try:  # before any work: never over the files the result or its input came from
            check_save(path, layer, self.raw_layer)
        except CryoDenoiseError as err:
            self.status.value = f"not saved: {err}"
            show_error(f"Save refused: {err}")
            return None
        data = source_array(layer)
        if isinstance(data, TileStore) and not data.is_complete():
            return self._save_after_whole(path, layer)
        self._write(path, layer, np.asarray(data))
        return None

    def _write(self, path: str | Path, layer: Any, data: np.ndarray) -> None:
        from ..writer import write_mrc_layer

        meta = {
            "scale": tuple(layer.scale),
            "translate": tuple(layer.translate),
            "metadata": layer.metadata,
        }
        try:
            (out,) = write_mrc_layer(str(path), data, meta)
        except (ValueError, OSError, CryoDenoiseError) as err:
            show_error(f"Save failed: {err}")
            return
        self.status.value = f"saved {out}"
        self._saved[id(layer)] = str(out)
        self._show_provenance()
        show_info(f"saved {out}")

    def _save_after_whole(self, path: str | Path, layer: Any) -> Any:
        raw = self.raw_layer if layer is self.result_layer else None
        facts = source_facts(layer)
        stored = facts.get("settings", {})
        if raw is None or raw not in self.viewer.layers:
            show_error(
                "the live view is incomplete and its input layer is gone; "
                "re-run in whole-image mode"
            )
            return None
        settings = DenoiseSettings(
            **{**stored, "lowpass": stored.get("lowpass") or 1.0, "mode": MODE_WHOLE}
        )
        model = self.models.peek(settings.model)
        if model is None:
            show_error("the model of this layer is no longer loaded; re-run Denoise")
            return None
        stacked = bool(facts.get("denoise", {}).get("stacked"))
        # binned results stay at the binned pixel size, like the live layer
        return self._launch(
            denoise_whole,
            read_only(source_array(raw)),
            model,
            settings,
            stacked=stacked,
            desc=f"denoise {raw.name} for saving",
            text="finishing the whole image before saving...",
            on_result=lambda result: self._write(path, layer, result),
        )


def _sample_mean(data: Any) -> float:
    """Mean of a strided sample (cheap; a neutral grey before the preview arrives)."""
    arr = data
    step = max(1, int(math.ceil((np.prod(arr.shape) / 65536) ** (1.0 / arr.ndim))))
    sample = np.asarray(arr[(slice(None, None, step),) * arr.ndim], dtype=np.float64)
    value = float(np.nanmean(sample)) if sample.size else 0.0
    return value if math.isfinite(value) else 0.0
