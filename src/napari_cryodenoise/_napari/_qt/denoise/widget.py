"""The "Denoise" dock widget: a thin container of small panels over one evented state.

- :mod:`.state`: :class:`DenoiseState`, what the panels share (input, settings,
  status, last result, running job / live view), each field evented.
- :mod:`.form_panel`: the settings form (remembered between sessions).
- :mod:`.run_panel`: Denoise / Cancel and the status line; :mod:`.jobs` runs model
  loads and whole-image jobs in workers, :mod:`.live_panel` the live view,
  :mod:`.publish` turns results into layers.
- :mod:`.compare_panel`: side by side and flick; :mod:`.save_panel`: save as MRC,
  the equivalent command, the provenance line.

Everything slow runs in napari workers (model download/loading, whole-image
denoising, live tiles); the panels only read the form into a frozen
:class:`~...settings.DenoiseSettings`, start workers and, on the main thread,
turn their results into layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import Container
from napari.qt.threading import FunctionWorker
from qtpy.QtCore import QTimer

from ....types import DenoiserModel
from ...compute import ModelCache
from ...settings import DenoiseSettings
from ...tiles import TileStore
from ..live import ensure_pool_threads, wait_for_workers
from ..progress_line import ProgressLine
from ..workers import shutdown_quietly
from .compare_panel import FLICK_KEY, ComparePanel
from .form_panel import FROM_FILE, OUTPUT_NEW, OUTPUT_UPDATE, DenoiseForm
from .jobs import JobRunner
from .live_panel import LiveControl, tile_size
from .publish import ResultPublisher
from .run_panel import RunPanel, removed_text
from .save_panel import SavePanel
from .state import DenoiseState, StatusSink

if TYPE_CHECKING:
    import numpy as np
    from napari.layers import Image
    from napari.utils.events import Event
    from napari.viewer import Viewer

    from ..live import LiveView

__all__ = ["FLICK_KEY", "FROM_FILE", "OUTPUT_NEW", "OUTPUT_UPDATE", "DenoiseWidget"]


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

    def __init__(self, napari_viewer: Viewer) -> None:
        super().__init__(labels=True)
        # napari hands plugins a public-only proxy; identity checks (layer is layer)
        # need the real objects
        viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.viewer = viewer
        self.state = state = DenoiseState()
        self.models = ModelCache()
        self.progress_line = line = ProgressLine(StatusSink(state))
        self.jobs = JobRunner(state, self.models, line)
        self.publisher = ResultPublisher(viewer, state)
        self.live_control = LiveControl(viewer, state, self.publisher, line, self.jobs.report)
        ensure_pool_threads()
        self.form = form = DenoiseForm(viewer, state)
        self.runner = RunPanel(viewer, state, form, self.jobs, self.live_control, self.publisher)
        self.compare = ComparePanel(viewer, state)
        self.saver = SavePanel(viewer, state, self.jobs, self.models)
        self.saver.dialog_parent = self.native
        # the widgets napari tests and scripts reach by name, in the dock's order
        self.input, self.model, self.model_file = form.input, form.model, form.model_file
        self.mode, self.device, self.precision = form.mode, form.device, form.precision
        self.patch_size, self.bin_factor = form.patch_size, form.bin_factor
        self.lowpass, self.gaussian, self.ensemble = form.lowpass, form.gaussian, form.ensemble
        self.output, self.fill, self.reset_button = form.output, form.fill, form.reset_button
        self.run_button, self.cancel_button = self.runner.run_button, self.runner.cancel_button
        self.side_button, self.flick_button = self.compare.side_button, self.compare.flick_button
        self.save_button, self.command = self.saver.save_button, self.saver.command
        self.copy_button, self.info = self.saver.copy_button, self.saver.info
        self.status = self.runner.status
        self.memory = form.memory
        self.extend(
            [
                *(self.input, self.model, self.model_file, self.mode, self.device),
                *(self.precision, self.patch_size, self.bin_factor, self.lowpass),
                *(self.gaussian, self.ensemble, self.output, self.fill),
                *(self.run_button, self.cancel_button),
                *(self.side_button, self.flick_button, self.save_button, self.command),
                *(self.copy_button, self.status, self.info, self.reset_button),
            ]
        )
        events = viewer.layers.events
        for name in ("inserted", "removed", "reordered"):
            getattr(events, name).connect(form.on_layers_changed)
        events.removed.connect(self._on_layer_removed)
        form.on_layers_changed()
        self.saver.update_command()
        self.native.destroyed.connect(lambda *_: shutdown_quietly(self))
        if self.PRELOAD:
            QTimer.singleShot(0, self.preload)

    def _on_layer_removed(self, event: Event) -> None:
        layer = event.value
        self.runner.input_removed(layer)
        live = self.live
        if live is not None and layer in (live.layer, self.state.raw_layer):
            running = live.active
            self.stop_live()
            if running:  # else its last count stays on the status line, frozen
                self.state.status = removed_text(layer)
        if layer is self.state.result_layer:
            self.state.result_layer = None
        if layer is self.state.raw_layer:
            self.state.raw_layer = None

    # -- what scripts, tests and the Train widget use ----------------------------------------
    @property
    def live(self) -> LiveView | None:
        """The running (or last, until stopped) live view."""
        return self.live_control.view

    @property
    def result_layer(self) -> Image | None:
        """The last result layer."""
        return self.state.result_layer

    @property
    def raw_layer(self) -> Image | None:
        """The input of the last result."""
        return self.state.raw_layer

    @property
    def neighbours(self) -> int:
        """Live view: neighbouring slices (or 3D slabs) done after the current one."""
        return self.live_control.neighbours

    @neighbours.setter
    def neighbours(self, value: int) -> None:
        self.live_control.neighbours = value

    @property
    def busy(self) -> bool:
        """True while a model load or a whole-image job runs (live work not counted)."""
        return self.jobs.busy

    @property
    def running_workers(self) -> int:
        """Workers still running (whole-image and live, cancelled ones included)."""
        return self.live_control.running_workers + self.jobs.running_workers

    def preload(self) -> FunctionWorker | None:
        """Load the selected pretrained model and set up the engine in the background.

        Only when its weights are local; returns the worker, or None.
        """
        name = self.model.value
        if not isinstance(name, str) or name == FROM_FILE:
            return None
        return self.jobs.preload(name, self.device.value)

    def settings(self) -> DenoiseSettings:
        """The form as frozen settings (see :meth:`DenoiseForm.settings`)."""
        return self.form.settings()

    def bin_value(self) -> int:
        """The bin factor: the chosen one, or the automatic one for the input's pixel size."""
        return self.form.bin_value()

    def use_model_file(self, path: str | Path) -> None:
        """Select a model file (e.g. one just trained) for the next run; a live view re-runs."""
        self.form.use_model_file(path)

    def reset_settings(self, *_: object) -> None:
        """Back to the default settings, and forget the remembered ones."""
        self.form.reset_settings()

    def run(self, *_: object) -> None:
        """Denoise the chosen layer with the form's settings (starts workers, returns at once)."""
        self.runner.run()

    def cancel(self, *_: object) -> None:
        """Cancel the running job and stop the live view."""
        self.runner.cancel()

    def stop_live(self) -> None:
        """Stop the live view (its finished tiles stay in the layer and the cache)."""
        self.live_control.stop()

    def tile_size(
        self,
        settings: DenoiseSettings,
        model: DenoiserModel,
        volume: bool = False,
        plane: Sequence[int] | None = None,
    ) -> int:
        """Live tile edge: the patch size if set, else ~1-2 s of work per tile; on the grid."""
        return tile_size(settings, model, volume, plane)

    def publish(
        self,
        source: Image,
        settings: DenoiseSettings,
        model: DenoiserModel,
        data: np.ndarray | TileStore,
        *,
        stacked: bool = False,
        update: bool | None = None,
        live: bool = False,
    ) -> Image:
        """Show a result (see :meth:`ResultPublisher.publish`); ``update`` defaults to the form."""
        update = self.form.update_last if update is None else update
        return self.publisher.publish(
            source, settings, model, data, stacked=stacked, update=update, live=live
        )

    def toggle_side_by_side(self, *_: object) -> bool:
        """Raw | denoised in a two-cell grid with one camera, and back."""
        return self.compare.toggle_side_by_side()

    def flick(self, *_: object) -> Image | None:
        """Swap raw and denoised at the same place (in grid mode: swap the cells)."""
        return self.compare.flick()

    def save_result(self, path: str | Path, layer: Image | None = None) -> FunctionWorker | None:
        """Write a result layer to MRC (never over its input): :meth:`SavePanel.save_result`."""
        return self.saver.save_result(path, layer)

    def shutdown(self, wait_ms: int = 10000) -> None:
        """Cancel everything (the viewer or the widget is closing); touches no widget.

        Workers are cancelled, their late results ignored, and the thread pool
        is given up to ``wait_ms`` to finish the tile in progress, so that no
        worker outlives the Qt objects it reports to.
        """
        # the dock's Qt widgets may already be deleted: no state change reaches them now
        self.state.events.block()
        self.runner.stop_timers()
        self.progress_line.stop()
        self.jobs.close()
        self.live_control.close()
        if self.running_workers:
            wait_for_workers(wait_ms)
