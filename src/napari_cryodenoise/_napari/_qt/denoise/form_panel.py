"""The Denoise settings form: image, model, mode, device, filters, output (magicgui).

:class:`DenoiseForm` owns the form's widgets, remembers them between sessions
and writes the chosen layer and the frozen :class:`~...settings.DenoiseSettings`
into the shared :class:`~.state.DenoiseState`; :attr:`DenoiseForm.edited`
tells that a setting the result depends on was edited (the live view re-runs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, FileEdit, FloatSpinBox, PushButton, SpinBox
from magicgui.widgets.bases import ValueWidget
from napari.layers import Image
from psygnal import Signal

from ....binning import AUTO, AUTO_TARGET, auto_bin, auto_bin_text
from ....errors import InputError
from ...measure import full_resolution, layer_pixel_size
from ...results import is_result
from ...settings import MODE_LIVE, MODES, PRECISIONS, DenoiseSettings
from ...tiles import TileStore
from ..form_memory import FormMemory
from ..workers import device_choices, model_choices, pretrained_ndim
from .state import DenoiseState

if TYPE_CHECKING:
    from napari.utils.events import Event
    from napari.viewer import Viewer

log = logging.getLogger(__name__)

FROM_FILE = "__file__"
OUTPUT_NEW = "add a new layer"
OUTPUT_UPDATE = "update the last result"
#: Explicit bin factors offered besides "auto".
BIN_CHOICES = (1, 2, 3, 4, 5, 6, 8)

Choices = list[tuple[str, object]]


class DenoiseForm:
    """The settings form of the Denoise widget, bound to a :class:`DenoiseState`.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Whose image layers are offered.
    state : DenoiseState
        Receives ``input`` and ``settings`` on every edit; a new ``input`` there
        (e.g. the source of a published result) is shown in the form.

    """

    #: A setting that the result depends on was edited (not the mode, image or output).
    edited = Signal()

    def __init__(self, viewer: Viewer, state: DenoiseState) -> None:
        self.viewer = viewer
        self.state = state
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
        self.ensemble = CheckBox(
            label="self-ensemble (8x slower)",
            value=False,
            tooltip="average the network over the 8 rotations and mirrors of the image "
            "(z kept for volumes): slightly cleaner, 8x the compute. Off by default",
        )
        self.output = ComboBox(
            label="output", choices=[OUTPUT_UPDATE, OUTPUT_NEW], value=OUTPUT_UPDATE
        )
        self.fill = CheckBox(label="live: fill the whole image", value=True)
        self.reset_button = PushButton(text="Reset settings")

        self.model.changed.connect(self._on_model_choice)
        for w in self.result_widgets():
            w.changed.connect(self._on_edit)
        self.input.changed.connect(self.bin_factor.reset_choices)
        self.input.changed.connect(self._fit_model)
        self.input.changed.connect(self._sync)
        self.output.changed.connect(self._sync)
        self.mode.changed.connect(self._sync)
        self.mode.changed.connect(self._on_mode)
        self.reset_button.changed.connect(self.reset_settings)
        state.events.input.connect(self._show_input)
        self._on_mode()
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
                "ensemble": self.ensemble,
                "output": self.output,
                "fill": self.fill,
            },
        )
        self.memory.restore()
        self.memory.connect()

    def result_widgets(self) -> tuple[ValueWidget, ...]:
        """The fields whose edits change the result (a live view re-runs on them)."""
        return (
            self.model,
            self.model_file,
            self.device,
            self.precision,
            self.patch_size,
            self.bin_factor,
            self.lowpass,
            self.gaussian,
            self.ensemble,
            self.fill,
        )

    # -- choices --------------------------------------------------------------------------
    def _image_layers(self, _widget: ComboBox | None = None) -> Choices:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and not layer.rgb
            and not isinstance(full_resolution(layer), TileStore)
        ]

    @staticmethod
    def _model_choices(_widget: ComboBox | None = None) -> Choices:
        try:
            choices = model_choices()
        except Exception as err:  # noqa: BLE001 - the file option still works
            log.warning("cannot list models: %s", err)
            choices = []
        return [*choices, ("load from file...", FROM_FILE)]

    def _bin_choices(self, _widget: ComboBox | None = None) -> Choices:
        return [(auto_bin_text(self._input_pixel_size()), AUTO)] + [
            (str(n), n) for n in BIN_CHOICES
        ]

    def on_layers_changed(self, event: Event | None = None) -> None:
        """Offer the viewer's image layers; pick a newly opened image or keep a valid choice."""
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
        self._sync()

    def _show_input(self, layer: Image | None) -> None:
        if layer is not None and self.input.value is not layer:
            self.input.value = layer

    def _on_mode(self, *_: object) -> None:
        live = self.mode.value == MODE_LIVE
        self.fill.enabled = live  # whole-image mode always does the whole image
        self.fill.tooltip = (
            "after the visible part, go on with the rest of the image"
            if live
            else "only for the live mode: whole-image mode always does the whole image"
        )

    def _fit_model(self, *_: object) -> None:
        """A 2D image chosen while a 3D (tomogram) model is: the 2D default instead.

        The remembered model of the last session (e.g. unet-3d, for a tomogram) can never
        denoise a micrograph; the switch is said in the status line.
        """
        layer, chosen = self.input.value, self.model.value
        if layer is None or full_resolution(layer).ndim != 2 or pretrained_ndim(chosen) != 3:
            return
        default = DenoiseSettings.model
        self.model.value = default
        self.state.status = (
            f"model {default}: {chosen} is a 3D (tomogram) model and {layer.name} is 2D"
        )

    def _on_model_choice(self, value: object) -> None:
        self.model_file.visible = value == FROM_FILE

    def _on_edit(self, *_: object) -> None:
        self._sync()
        self.edited.emit()

    def _sync(self, *_: object) -> None:
        """Write the chosen layer and the settings (None if incomplete) into the state."""
        self.state.input = self.input.value
        try:
            self.state.settings = self.settings()
        except (InputError, ValueError):
            self.state.settings = None

    def use_model_file(self, path: str | Path) -> None:
        """Select a model file (e.g. one just trained) as the model for the next run.

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
        self.state.status = f"model: {path.name}"

    # -- settings -------------------------------------------------------------------------
    def _input_pixel_size(self) -> float | None:
        layer = self.input.value if hasattr(self, "input") else None
        if layer is None:
            return None
        pixel, real = layer_pixel_size(layer)
        return pixel if real else None

    def bin_value(self) -> int:
        """The bin factor: the chosen one, or the automatic one for the input's pixel size."""
        value = self.bin_factor.value
        return auto_bin(self._input_pixel_size()) if value == AUTO else int(value)

    def reset_settings(self, *_: object) -> None:
        """Back to the default settings, and forget the remembered ones."""
        self.memory.reset()
        self.state.status = "settings reset to the defaults"

    def settings(self) -> DenoiseSettings:
        """The form as frozen settings.

        Raises
        ------
        InputError
            If "load from file..." is chosen without an existing model file.

        """
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
            ensemble=bool(self.ensemble.value),
        )

    @property
    def update_last(self) -> bool:
        """The "output" choice: update the last result layer (else add a new one)."""
        return self.output.value == OUTPUT_UPDATE
