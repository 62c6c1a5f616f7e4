"""Denoise / Cancel and the status line: start a whole-image job or the live view.

:class:`RunPanel` reads the form, gets the model (loaded in a worker the
first time) and starts the job the mode asks for; a running live view is
re-run shortly after a setting it depends on is edited. Its buttons and the
status line follow the shared :class:`~.state.DenoiseState`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import Label, PushButton
from qtpy.QtCore import QTimer

from ....errors import InputError
from ....types import DenoiserModel
from ...compute import check_model_fits, denoise_whole, read_only
from ...measure import full_resolution
from ...settings import MODE_LIVE, MODE_WHOLE, DenoiseSettings
from ..progress_line import fit_label
from . import notify
from .form_panel import DenoiseForm
from .jobs import JobRunner
from .live_panel import LiveControl
from .publish import ResultPublisher
from .state import DenoiseState

if TYPE_CHECKING:
    from napari.layers import Image
    from napari.viewer import Viewer

#: Wait after the last edit of a setting before a running live view re-runs (ms).
RERUN_DELAY_MS = 300


def removed_text(layer: Image) -> str:
    """What the status says when a layer being denoised is removed from the viewer."""
    return f"stopped: the layer '{layer.name}' was removed from the viewer"


class RunPanel:
    """The Denoise and Cancel buttons and the status line, bound to a :class:`DenoiseState`.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer the input layers are in.
    state : DenoiseState
        Observed for the buttons and the status text.
    form : DenoiseForm
        Read for the settings; its ``edited`` signal re-runs a live view.
    jobs : JobRunner
        Loads models and runs whole-image jobs.
    live : LiveControl
        Runs the live view.
    publisher : ResultPublisher
        Shows results.

    """

    def __init__(
        self,
        viewer: Viewer,
        state: DenoiseState,
        form: DenoiseForm,
        jobs: JobRunner,
        live: LiveControl,
        publisher: ResultPublisher,
    ) -> None:
        self.viewer = viewer
        self.state = state
        self.form = form
        self.jobs = jobs
        self.live = live
        self.publisher = publisher
        self.run_button = PushButton(text="Denoise")
        self.cancel_button = PushButton(text="Cancel")
        self.cancel_button.enabled = False
        self.status = Label(value="")
        #: The input of the whole-image job that runs, if any.
        self.whole_layer: Image | None = None
        fit_label(self.status)  # a long status wraps instead of widening the dock

        self._rerun_timer = QTimer()
        self._rerun_timer.setSingleShot(True)
        self._rerun_timer.setInterval(RERUN_DELAY_MS)
        self._rerun_timer.timeout.connect(self._rerun_live)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        form.edited.connect(self._on_edited)
        state.events.status.connect(self._show_status)
        state.events.job_running.connect(self._enable_buttons)
        state.events.live_running.connect(self._enable_buttons)

    def _show_status(self, text: str) -> None:
        self.status.value = text

    def _enable_buttons(self, *_: object) -> None:
        self.run_button.enabled = not self.state.job_running
        self.cancel_button.enabled = self.state.job_running or self.state.live_running

    def run(self, *_: object) -> None:
        """Denoise the chosen layer with the form's settings (starts workers, returns at once)."""
        layer = self.state.input
        if layer is None:
            notify.show_warning("open an image first (File > Open, or File > Open Sample)")
            return
        try:
            settings = self.form.settings()
        except (InputError, ValueError) as err:
            notify.show_error(str(err))
            return
        if self.jobs.busy:
            notify.show_warning("a denoising job is running; cancel it first")
            return
        self.jobs.with_model(settings, lambda model: self.start(layer, settings, model))

    def _on_edited(self) -> None:
        if self.live.active and self.form.mode.value == MODE_LIVE:
            self._rerun_timer.start()

    def _rerun_live(self) -> None:
        raw = self.state.raw_layer
        if self.live.active and raw is not None:
            try:
                settings = self.form.settings()
            except (InputError, ValueError) as err:
                notify.show_error(str(err))
                return
            self.jobs.with_model(
                settings, lambda model: self.start(raw, settings, model, update=True)
            )

    def start(
        self,
        layer: Image,
        settings: DenoiseSettings,
        model: DenoiserModel,
        *,
        update: bool | None = None,
    ) -> None:
        """Denoise ``layer`` with a loaded model, whole or live as ``settings.mode`` says."""
        if layer not in self.viewer.layers:
            self.state.status = removed_text(layer)
            return
        data = full_resolution(layer)
        try:
            stacked, volume = check_model_fits(model, data.ndim, data.shape)
        except InputError as err:
            notify.show_error(str(err))
            self.state.status = f"not started: {err}"  # not "loading MODEL..." for ever
            return
        if settings.mode == MODE_WHOLE:
            self._start_whole(layer, settings, model, stacked=stacked, update=update)
        else:
            self.live.start(
                layer,
                settings,
                model,
                stacked=stacked,
                volume=volume,
                update=self.form.update_last if update is None else update,
                fill=bool(self.form.fill.value),
            )

    def _start_whole(
        self,
        layer: Image,
        settings: DenoiseSettings,
        model: DenoiserModel,
        *,
        stacked: bool,
        update: bool | None,
    ) -> None:
        def done(result: np.ndarray) -> None:
            if layer not in self.viewer.layers:  # removed while its last tile was computed
                self.state.status = removed_text(layer)
                return
            last = self.form.update_last if update is None else update  # the choice now
            out = self.publisher.publish(
                layer, settings, model, result, stacked=stacked, update=last
            )
            self.state.status = f"done: {out.name}"

        def finished() -> None:
            if self.whole_layer is layer:
                self.whole_layer = None

        self.whole_layer = layer
        worker = self.jobs.launch(
            denoise_whole,
            read_only(full_resolution(layer)),
            model,
            settings,
            stacked=stacked,
            desc=f"denoise {layer.name}",
            text=f"denoising {layer.name}...",
            on_result=done,
        )
        worker.finished.connect(finished)

    def input_removed(self, layer: Image) -> None:
        """``layer`` left the viewer: stop the whole-image job that denoises it, if any."""
        if layer is self.whole_layer and self.jobs.busy:
            self.jobs.cancel(reason=removed_text(layer))

    def cancel(self, *_: object) -> None:
        """Cancel the running job and stop the live view."""
        self.jobs.cancel()
        if self.live.view is not None:
            self.live.stop()
            self.state.status = "live view stopped"

    def stop_timers(self) -> None:
        """No pending re-run (the widget is closing)."""
        self._rerun_timer.stop()
