"""The data and settings part of the Train widget: layer choices, defaults, reading the form.

:class:`TrainForm` builds the form (magicgui widgets), keeps the layer
choices in step with the viewer, picks sensible defaults until the user makes
a choice (an even/odd pair by name, a movie, the preview layer, a model file
name in ``~/cryodenoise-models``), and reads the form on the main thread into
a frozen :class:`~..train_jobs.TrainData` and a
:class:`~napari_cryodenoise.training.TrainConfig`. Running, plotting and the
preview are :class:`~.widget.TrainWidget`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
from qtpy.QtWidgets import QComboBox, QWidget

from ....io.eer import DEFAULT_EER_GROUPING, EER_SUFFIXES
from ....training import TrainConfig
from ....training.config import PRECISIONS
from ...measure import full_resolution, is_volume
from ...results import source_facts
from ...tiles import TileStore
from ...train_jobs import (
    NETWORKS,
    SOURCE_HALF_FILES,
    SOURCE_LAYERS,
    SOURCE_MOVIE,
    SOURCE_MOVIE_FILES,
    SOURCE_SINGLE,
    SOURCES,
    TrainData,
    default_model_path,
)
from ..workers import device_choices
from .form_read import data_name, path_or_none, paths, read_config, read_data, source_layers
from .preview import PREVIEW_KEY

ADJUST_TO_MIN_LENGTH = QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
MOVIE_FILTER = "Movies (*.mrcs *.mrc *.st *.tif *.tiff *.eer);;All files (*)"
IMAGE_FILTER = "Images (*.mrc *.mrcs *.tif *.tiff *.map *.rec);;All files (*)"
#: The form, top to bottom (attribute names).
FORM_ROWS = (
    "source even odd movie movie_files even_files odd_files single frames eer_grouping align gain "
    "network "
    "_budget_row crop batch lr device precision preview preview_frames preview_every val_every "
    "checkpoint_every output "
    "_buttons use_button"
).split()
COMBOS = (
    "source even odd movie single network device precision preview preview_frames budget_unit"
).split()
#: How a movie (or stack) layer is previewed: the sum of its frames, or the frame shown.
PREVIEW_SUM, PREVIEW_FRAME = "sum of frames", "current frame"
#: Half tags in layer names (MotionCor2 -SplitSum 1 writes X_EVN / X_ODD).
HALF_TAGS = {"even": "(?:even|evn)", "odd": "odd"}


def _tag_pattern(word: str) -> str:
    """A half tag as a word of a layer name (``sim even``, ``mic_EVN``, ``odd-1``)."""
    return rf"(^|[\W_]){HALF_TAGS[word]}($|[\W_])"


#: Which form rows each data source shows.
SOURCE_ROWS = {
    SOURCE_LAYERS: ("even", "odd"),
    SOURCE_MOVIE: ("movie", "frames", "align", "gain"),
    SOURCE_MOVIE_FILES: ("movie_files", "frames", "align", "gain"),
    SOURCE_HALF_FILES: ("even_files", "odd_files"),
    SOURCE_SINGLE: ("single",),
}


class TrainForm(QWidget):
    """The Train widget's form: data source, settings and buttons (no running here).

    Parameters
    ----------
    viewer : napari.Viewer
        Whose image layers are offered.
    parent : QWidget, optional

    """

    def __init__(self, viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self._auto_output: Path | None = None
        self._touched: set[str] = set()  # choices the user made (not overridden by defaults)
        self._quiet = False
        self._layer_events: list[Any] = []
        self._preview_stack = False  # the preview layer has frames (or slices)
        self._build_form()
        self._connect_form()
        self._on_layers_changed()
        self._on_source_changed()

    def disconnect_viewer(self) -> None:
        """Stop following the viewer's layers (the widget is closing)."""
        for emitter in self._layer_events:
            emitter.disconnect(self._on_layers_changed)
        self._layer_events = []

    def _build_form(self) -> None:
        images = self._image_choices
        self.source = ComboBox(label="train on", choices=list(SOURCES), value=SOURCE_LAYERS)
        self.even = ComboBox(label="even layer", choices=images)
        self.odd = ComboBox(label="odd layer", choices=images)
        self.movie = ComboBox(label="movie layer", choices=self._movie_choices)
        self.movie_files = FileEdit(label="movies", mode="rm", filter=MOVIE_FILTER)
        self.even_files = FileEdit(label="even files", mode="rm", filter=IMAGE_FILTER)
        self.odd_files = FileEdit(label="odd files", mode="rm", filter=IMAGE_FILTER)
        for w in (self.even_files, self.odd_files):
            w.tooltip = "files in the same order, or type one folder each (matched by file name)"
        self.single = ComboBox(label="image layer", choices=images)
        self.frames = LineEdit(label="frames A:B", value="")
        self.frames.tooltip = "0-based, B exclusive, e.g. 2:40 drops frames 0-1; blank = all"
        self.eer_grouping = SpinBox(
            label="EER frames per fraction", min=1, max=100000, value=DEFAULT_EER_GROUPING
        )
        self.eer_grouping.tooltip = (
            "EER movies: raw frames summed into each frame (fraction) before the even/odd split"
        )
        self.align = CheckBox(label="align frames (global drift)", value=False)
        self.gain = FileEdit(label="gain reference", mode="r", filter=IMAGE_FILTER, nullable=True)
        self.network = ComboBox(label="network", choices=list(NETWORKS), value="init:")
        self.network.tooltip = (
            "fine-tuning the pretrained unet is best for short budgets (3D data: unet-3d); "
            "unet-fast is the quickest to train from scratch on a CPU"
        )
        self.budget = FloatSpinBox(min=0.1, max=100000, step=1, value=10.0)
        self.budget_unit = ComboBox(choices=["minutes", "steps"], value="minutes")
        budget_row = Container(
            label="train for",
            layout="horizontal",
            labels=False,
            widgets=[self.budget, self.budget_unit],
        )
        self.crop = SpinBox(label="crop (0 = auto)", min=0, max=2048, step=16, value=0)
        self.batch = SpinBox(label="batch (0 = auto)", min=0, max=256, value=0)
        self.lr = LineEdit(label="learning rate", value="")
        self.lr.tooltip = "blank = 1e-4 when fine-tuning, 1e-3 from scratch"
        self.device = ComboBox(label="device", choices=device_choices())
        self.precision = ComboBox(label="precision", choices=list(PRECISIONS), value="auto")
        self.precision.tooltip = (
            "auto: bf16 arithmetic where the CPU/GPU has it natively (about twice the steps "
            "in the same time; the weights stay fp32), else fp32"
        )
        self.preview = ComboBox(label="preview on", choices=images, nullable=True)
        self.preview_frames = ComboBox(
            label="preview frames", choices=[PREVIEW_SUM, PREVIEW_FRAME], value=PREVIEW_SUM
        )
        self.preview_frames.tooltip = (
            "a movie is previewed on the sum of its frames (one raw frame has a fraction of "
            "the dose and looks blotchy)"
        )
        self.preview_every = SpinBox(label="preview every (steps)", min=0, max=100000, value=5)
        self.val_every = SpinBox(label="validate every (steps)", min=1, max=100000, value=10)
        self.checkpoint_every = SpinBox(
            label="checkpoint every (steps)", min=0, max=1000000, value=100
        )
        self.checkpoint_every.tooltip = "0: only at the end and on cancel"
        self.output = FileEdit(label="save model as", mode="w", filter="Models (*.pt)")
        self.start_button = PushButton(text="Start training")
        self.cancel_button = PushButton(text="Cancel")
        self.cancel_button.enabled = False
        buttons = Container(
            layout="horizontal", labels=False, widgets=[self.start_button, self.cancel_button]
        )
        self.use_button = PushButton(text="Use this model in Denoise")
        self.use_button.enabled = False
        self.status = Label(value="")
        self.note = Label(value="")
        for row in (budget_row, buttons):
            row.margins = (0, 0, 0, 0)
        for label in (self.status, self.note):
            label.native.setWordWrap(True)
        for combo in (getattr(self, n) for n in COMBOS):
            combo.native.setSizeAdjustPolicy(ADJUST_TO_MIN_LENGTH)
            combo.native.setMinimumContentsLength(8)
        self._budget_row, self._buttons = budget_row, buttons
        self.form = Container(labels=True, widgets=[getattr(self, n) for n in FORM_ROWS])

    def _show_budget_unit(self, *_) -> None:
        """Whole steps (``40 steps``, not ``40.0``); minutes to a tenth."""
        self.budget.native.setDecimals(0 if self.budget_unit.value == "steps" else 1)

    def _connect_form(self) -> None:
        self.source.changed.connect(self._on_source_changed)
        for name in ("source", "even", "odd", "movie", "single", "preview", "preview_frames"):
            getattr(self, name).changed.connect(lambda *_, n=name: self._touch(n))
        for w in (self.even, self.movie, self.movie_files, self.even_files, self.single):
            w.changed.connect(self._on_data_changed)
        self.output.changed.connect(lambda *_: self._touch("output"))
        self.budget_unit.changed.connect(self._show_budget_unit)
        self._show_budget_unit()
        self.preview.changed.connect(self._update_preview_frames)
        self._layer_events = [
            getattr(self.viewer.layers.events, n) for n in ("inserted", "removed", "reordered")
        ]
        for emitter in self._layer_events:
            emitter.connect(self._on_layers_changed)

    def _touch(self, name: str) -> None:
        if not self._quiet:
            self._touched.add(name)

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        """Changes made inside do not count as the user's choices."""
        before, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = before

    def _set(self, widget: Any, value: Any) -> None:
        with self._quietly():
            widget.value = value

    # -- layer choices -------------------------------------------------------------------
    def _layers(self, ndims: tuple[int, ...]) -> list[tuple[str, Any]]:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and not layer.rgb
            and PREVIEW_KEY not in source_facts(layer)
            and not isinstance(full_resolution(layer), TileStore)
            and full_resolution(layer).ndim in ndims
        ]

    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return self._layers((2, 3))

    def _movie_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(n, v) for n, v in self._layers((3,)) if not is_volume(v)]

    def _on_layers_changed(self, *_: Any) -> None:
        with self._quietly():
            for combo in (self.even, self.odd, self.movie, self.single, self.preview):
                combo.reset_choices()
        layers = [v for _, v in self._image_choices()]
        if layers and not {"even", "odd"} & self._touched:
            even, odd = self._half_pair(layers)
            self._set(self.even, even or layers[0])
            self._set(self.odd, odd or layers[-1])
        if layers and "single" not in self._touched:
            self._set(self.single, layers[-1])
        if "source" not in self._touched:
            self._set(self.source, self._default_source(layers))
        self._on_data_changed()

    @staticmethod
    def _named(layers: list[Any], word: str) -> list[Any]:
        """Layers whose name has the half tag ``word`` (even: also MotionCor2's ``EVN``)."""
        return [v for v in layers if re.search(_tag_pattern(word), v.name, re.I)]

    def _half_pair(self, layers: list[Any]) -> tuple[Any, Any]:
        """The even and odd layer by name (``X_EVN``/``X_ODD``, ``... even``/``... odd``).

        An odd layer with the same name up to the tag is preferred (several
        micrographs' halves open at once).
        """
        evens, odds = self._named(layers, "even"), self._named(layers, "odd")
        for even in evens:
            base = re.sub(_tag_pattern("even"), r"\1\2", even.name, flags=re.I)
            for odd in odds:
                if re.sub(_tag_pattern("odd"), r"\1\2", odd.name, flags=re.I) == base:
                    return even, odd
        return (evens[0] if evens else None), (odds[0] if odds else None)

    def _default_source(self, layers: list[Any]) -> str:
        even, odd = self._half_pair(layers)
        if even is not None and odd is not None and even.data.shape == odd.data.shape:
            return SOURCE_LAYERS
        if self._movie_choices():
            return SOURCE_MOVIE
        return SOURCE_MOVIE_FILES

    def _on_source_changed(self, *_: Any) -> None:
        shown = set(SOURCE_ROWS[self.source.value])
        for name in {n for rows in SOURCE_ROWS.values() for n in rows}:
            getattr(self, name).visible = name in shown
        self._on_data_changed()

    def _on_data_changed(self, *_: Any) -> None:
        """Follow the data with the preview layer, the default model file name, EER rows."""
        self.eer_grouping.visible = self.source.value == SOURCE_MOVIE_FILES and any(
            p.suffix.lower() in EER_SUFFIXES for p in paths(self.movie_files.value)
        )
        if "preview" not in self._touched:
            layer = {
                SOURCE_LAYERS: self.even.value,
                SOURCE_MOVIE: self.movie.value,
                SOURCE_SINGLE: self.single.value,
            }.get(self.source.value)
            choices = [v for _, v in self._image_choices()]
            self._set(self.preview, layer if layer in choices else None)
        self._update_preview_frames()
        current = path_or_none(self.output.value)
        if "output" not in self._touched or current is None or current == self._auto_output:
            self._auto_output = default_model_path(self._data_name())
            self._set(self.output, self._auto_output)
            self._touched.discard("output")

    def _update_preview_frames(self, *_: Any) -> None:
        """Offer "sum of frames" for a movie preview layer, and default to it for movies."""
        layer = self.preview.value
        stack = layer is not None and full_resolution(layer).ndim == 3 and not is_volume(layer)
        self.preview_frames.visible = self._preview_stack = stack
        if stack and "preview_frames" not in self._touched:
            self._set(self.preview_frames, PREVIEW_SUM if self._is_movie(layer) else PREVIEW_FRAME)

    def _is_movie(self, layer: Any) -> bool:
        """A layer of frames of one exposure (not a stack of independent images)."""
        if self.source.value == SOURCE_MOVIE and layer is self.movie.value:
            return True
        return source_facts(layer).get("kind") == "movie"

    def trained_layer(self) -> Any:
        """The layer whose data the form trains on (even, movie or single), or None."""
        return {
            SOURCE_LAYERS: self.even.value,
            SOURCE_MOVIE: self.movie.value,
            SOURCE_SINGLE: self.single.value,
        }.get(self.source.value)

    def preview_sum(self) -> bool:
        """Preview on the sum of the preview layer's frames."""
        return self._preview_stack and self.preview_frames.value == PREVIEW_SUM

    # -- reading the form (see :mod:`.form_read`) -------------------------------------
    def _data_name(self) -> str:
        return data_name(self)

    def source_layers(self) -> tuple[Image | None, ...]:
        """The layers the chosen data source reads (none for file sources)."""
        return source_layers(self)

    def data(self) -> TrainData:
        """The data selection as frozen, checked :class:`TrainData` (main thread)."""
        return read_data(self)

    def config(self, data: TrainData) -> TrainConfig:
        """The settings as a :class:`TrainConfig` (raises InputError for bad values)."""
        return read_config(self, data)
