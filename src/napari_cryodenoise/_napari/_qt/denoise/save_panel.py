"""Save the result as MRC, show the equivalent command and how a result was made.

:class:`SavePanel` holds the "Save denoised as MRC..." button, the read-only
``cryodenoise denoise ...`` command for the current form (with a copy
button) and the info line describing the selected result layer. A live
result that is not complete is denoised whole (same settings) before saving.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import Label, LineEdit, PushButton
from napari.qt.threading import FunctionWorker

from ....errors import CryoDenoiseError
from ...compute import ModelCache, denoise_whole, read_only
from ...measure import full_resolution
from ...result_info import provenance_text
from ...results import is_result, source_facts, source_path
from ...save_guard import check_save
from ...settings import MODE_WHOLE, DenoiseSettings, cli_command, default_output_path
from ...tiles import TileStore
from . import notify
from .jobs import JobRunner
from .state import DenoiseState

if TYPE_CHECKING:
    from napari.layers import Image
    from napari.viewer import Viewer
    from qtpy.QtWidgets import QWidget


class SavePanel:
    """Save button, command line with copy button, provenance info line.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Whose selected layer is described and saved.
    state : DenoiseState
        Observed for the input and settings (the command) and the last result.
    jobs : JobRunner
        Runs the whole-image job that completes a live result before saving.
    models : ModelCache
        Loaded models (for the model's dimension and to finish a live result).

    """

    def __init__(
        self, viewer: Viewer, state: DenoiseState, jobs: JobRunner, models: ModelCache
    ) -> None:
        self.viewer = viewer
        self.state = state
        self.jobs = jobs
        self.models = models
        self.save_button = PushButton(text="Save denoised as MRC...")
        self.command = LineEdit(label="command")
        self.command.native.setReadOnly(True)
        self.copy_button = PushButton(text="Copy command")
        self.info = Label(value="")  # provenance of the selected result layer
        self.info.native.setWordWrap(True)
        self._saved: dict[int, str] = {}  # id(result layer) -> file it was saved to
        self._info_layer: Image | None = None
        #: The Qt widget the file dialog belongs to (the dock's widget).
        self.dialog_parent: QWidget | None = None
        self.save_button.changed.connect(self._save_dialog)
        self.copy_button.changed.connect(self._copy_command)
        state.events.input.connect(self.update_command)
        state.events.settings.connect(self.update_command)
        viewer.layers.selection.events.active.connect(self.show_provenance)

    # -- command --------------------------------------------------------------------------
    def update_command(self, *_: object) -> None:
        """The ``cryodenoise denoise`` command that does what the form says."""
        layer, settings = self.state.input, self.state.settings
        if settings is None:
            self.command.value = ""
            return
        stacked = (
            layer is not None
            and full_resolution(layer).ndim == 3
            and self._model_ndim(settings.model) == 2
        )
        path = source_path(layer) if layer is not None else None
        self.command.value = cli_command(settings, path, stack=stacked)

    def _model_ndim(self, name: str) -> int:
        model = self.models.peek(name)
        if model is not None:
            return int(getattr(model, "ndim", 2))
        return 3 if name.startswith("unet-3d") else 2

    def _copy_command(self, *_: object) -> None:
        from qtpy.QtWidgets import QApplication

        QApplication.clipboard().setText(self.command.value)
        notify.show_info("command copied to the clipboard")

    # -- provenance -----------------------------------------------------------------------
    def show_provenance(self, *_: object) -> None:
        """Info line and tooltip: how the selected (or last) result layer was made."""
        layer = self.viewer.layers.selection.active
        if layer is None or not is_result(layer):
            last = self.state.result_layer
            layer = last if last in self.viewer.layers else None
        if layer is not self._info_layer:  # follow in-place updates of this layer
            for old in (self._info_layer, layer):
                if old is not None:
                    old.events.metadata.disconnect(self.show_provenance)
            if layer is not None:
                layer.events.metadata.connect(self.show_provenance)
            self._info_layer = layer
        text, tip = provenance_text(layer, self._saved.get(id(layer)) if layer else None)
        try:
            self.info.value, self.info.tooltip = text, tip
        except RuntimeError:  # the widget is closed; the viewer still tells it
            pass

    # -- saving ---------------------------------------------------------------------------
    def _save_dialog(self, *_: object) -> None:
        from qtpy.QtWidgets import QFileDialog

        layer = self._save_target()
        if layer is None:
            return
        src = source_facts(layer).get("source_path")
        start = str(default_output_path(src)) if src else f"{layer.name}.mrc"
        path, _ = QFileDialog.getSaveFileName(
            self.dialog_parent, "Save denoised image", start, "MRC (*.mrc *.mrcs *.map *.rec)"
        )
        if path:
            self.save_result(path, layer)

    def _save_target(self) -> Image | None:
        active = self.viewer.layers.selection.active
        if active is not None and is_result(active):
            return active
        last = self.state.result_layer
        if last is not None and last in self.viewer.layers:
            return last
        notify.show_warning("nothing to save yet: denoise an image first")
        return None

    def save_result(self, path: str | Path, layer: Image | None = None) -> FunctionWorker | None:
        """Write a result layer to MRC (never over its input).

        A live layer that is not complete is first denoised whole, in a
        worker, with the same settings; the returned worker (or None when the
        file was written at once) lets callers wait for it.
        """
        layer = layer or self._save_target()
        if layer is None:
            return None
        try:  # before any work: never over the files the result or its input came from
            check_save(path, layer, self.state.raw_layer)
        except CryoDenoiseError as err:
            self.state.status = f"not saved: {err}"
            notify.show_error(f"Save refused: {err}")
            return None
        data = full_resolution(layer)
        if isinstance(data, TileStore) and not data.is_complete():
            return self._save_after_whole(path, layer)
        self._write(path, layer, np.asarray(data))
        return None

    def _write(self, path: str | Path, layer: Image, data: np.ndarray) -> None:
        from ...writer import write_mrc_layer

        meta = {
            "scale": tuple(layer.scale),
            "translate": tuple(layer.translate),
            "metadata": layer.metadata,
        }
        try:
            (out,) = write_mrc_layer(str(path), data, meta)
        except (ValueError, OSError, CryoDenoiseError) as err:
            notify.show_error(f"Save failed: {err}")
            return
        self.state.status = f"saved {out}"
        self._saved[id(layer)] = str(out)
        self.show_provenance()
        notify.show_info(f"saved {out}")

    def _save_after_whole(self, path: str | Path, layer: Image) -> FunctionWorker | None:
        raw = self.state.raw_layer if layer is self.state.result_layer else None
        facts = source_facts(layer)
        stored = facts.get("settings", {})
        if raw is None or raw not in self.viewer.layers:
            notify.show_error(
                "the live view is incomplete and its input layer is gone; "
                "re-run in whole-image mode"
            )
            return None
        settings = DenoiseSettings(
            **{**stored, "lowpass": stored.get("lowpass") or 1.0, "mode": MODE_WHOLE}
        )
        model = self.models.peek(settings.model)
        if model is None:
            notify.show_error("the model of this layer is no longer loaded; re-run Denoise")
            return None
        stacked = bool(facts.get("denoise", {}).get("stacked"))
        # binned results stay at the binned pixel size, like the live layer
        return self.jobs.launch(
            denoise_whole,
            read_only(full_resolution(raw)),
            model,
            settings,
            stacked=stacked,
            desc=f"denoise {raw.name} for saving",
            text="finishing the whole image before saving...",
            on_result=lambda result: self._write(path, layer, result),
        )
