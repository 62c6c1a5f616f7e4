"""The "Particles / regions" box of the Measure widget: picks or drawn regions, radius, shape.

:class:`RegionsPanel` chooses the Points or Shapes layer the SNR is measured
in, loads pick files into Points layers on the reference image, and turns
the layer into a regions job for the current plane. It paints the measured
regions into a labels layer. ``edited`` tells that the regions changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels, Layer, Points, Shapes
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_info, show_warning
from psygnal import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
)

from ....errors import CryoDenoiseError, InputError
from ...measure import (
    PickRegions,
    ShapeRegions,
    full_resolution,
    pair_shapes,
    picks_for,
    points_world_yx,
    shapes_world_yx,
)
from ...results import source_path
from .state import MeasureState, fill_combo, layer_named, reference_layer

if TYPE_CHECKING:
    from napari.viewer import Viewer

PAIRS_IN_ORDER = "alternate: signal, background, ..."
REGIONS_LAYER = "SNR regions"
PICK_FILTER = "Pick files (*.star *.box *.txt *.tsv *.csv *.coords);;All files (*)"
#: Marks Points layers this widget made (their size follows the radius).
MEASURE_KEY = "measure_picks"


def points_geometry(ref: Layer) -> dict[str, Any]:
    """``scale``/``translate`` (and ``units``) of a 2D layer drawn over ``ref``'s last two axes."""
    scale, translate = tuple(ref.scale[-2:]), tuple(ref.translate[-2:])
    kwargs: dict[str, Any] = {"scale": scale, "translate": translate}
    if getattr(ref, "units", None) is not None:
        kwargs["units"] = tuple(str(u) for u in ref.units[-2:])
    return kwargs


class RegionsPanel(QGroupBox):
    """Where the SNR is measured: a Points layer (discs) or a Shapes layer (pairs)."""

    #: The regions changed (layer, its data, radius, shape or backgrounds).
    edited = Signal()

    def __init__(self, viewer: Viewer, state: MeasureState) -> None:
        super().__init__("Particles / regions")
        self.viewer = viewer
        self.state = state
        self._watched: Points | Shapes | None = None
        form = QFormLayout(self)
        self.regions_combo = QComboBox()
        self.regions_combo.setToolTip(
            "Points: one disc per particle, with a background disc chosen automatically "
            "nearby (at least 3 radii from every pick).\nShapes: draw signal and background "
            "regions in pairs (signal first)."
        )
        self.regions_combo.currentTextChanged.connect(self._on_regions_changed)
        form.addRow("Layer", self.regions_combo)
        row = QHBoxLayout()
        self.load_button = QPushButton("Load picks…")
        self.load_button.setToolTip(
            "Read particle picks from a RELION .star, EMAN .box, "
            "Topaz .txt or plain x y file into a Points layer"
        )
        self.load_button.clicked.connect(self._on_load_clicked)
        self.new_points_button = QPushButton("New picks layer")
        self.new_points_button.setToolTip(
            "Add an empty Points layer over the reference image; click on particles to mark them"
        )
        self.new_points_button.clicked.connect(self.new_points_layer)
        row.addWidget(self.load_button)
        row.addWidget(self.new_points_button)
        form.addRow(row)
        self.radius = QDoubleSpinBox()
        self.radius.setRange(1.0, 2000.0)
        self.radius.setDecimals(1)
        self.radius.setValue(12.0)
        self.radius.setSuffix(" px")
        self.radius.setToolTip(
            "Radius of the particle and background discs, in pixels of the reference image"
        )
        self.radius.valueChanged.connect(self._on_radius_changed)
        self.region_shape = QComboBox()
        self.region_shape.addItems(["disc", "box"])
        self.region_shape.currentTextChanged.connect(lambda _: self.edited.emit())
        shape_row = QHBoxLayout()
        shape_row.addWidget(self.radius)
        shape_row.addWidget(self.region_shape)
        form.addRow("Radius", shape_row)
        self.background_combo = QComboBox()
        self.background_combo.setToolTip(
            "For a Shapes layer: backgrounds are every second shape in drawing order, or the "
            "shapes of another Shapes layer (paired by drawing order)"
        )
        self.background_combo.currentTextChanged.connect(lambda _: self.edited.emit())
        self._background_label = QLabel("Backgrounds")
        form.addRow(self._background_label, self.background_combo)

    # -- layers ---------------------------------------------------------------------------
    def layer(self) -> Points | Shapes | None:
        """The chosen Points or Shapes layer."""
        return layer_named(self.viewer, self.regions_combo.currentText())

    def fill(self) -> str:
        """Offer the Points and Shapes layers; return the choice before (see :meth:`follow`)."""
        regions = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, (Points, Shapes)) and not layer.name == REGIONS_LAYER
        ]
        old = self.regions_combo.currentText()
        fill_combo(self.regions_combo, regions, regions[-1] if regions else "")
        return old

    def follow(self, old: str) -> None:
        """After :meth:`fill`: watch a newly chosen layer, or just update the backgrounds."""
        if self.regions_combo.currentText() != old or self._watched is None:
            self._on_regions_changed(self.regions_combo.currentText())
        else:
            self._fill_backgrounds()

    def _fill_backgrounds(self) -> None:
        current = self.layer()
        others = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Shapes) and layer is not current
        ]
        fill_combo(self.background_combo, [PAIRS_IN_ORDER, *others], PAIRS_IN_ORDER)
        for w in (self._background_label, self.background_combo):
            w.setVisible(isinstance(current, Shapes))

    def _on_regions_changed(self, name: str) -> None:
        layer = layer_named(self.viewer, name)
        if self._watched is not None and self._watched is not layer:
            try:
                self._watched.events.data.disconnect(self._on_data)
            except (RuntimeError, TypeError, ValueError):
                pass
            self._watched = None
        if layer is not None and self._watched is None:
            layer.events.data.connect(self._on_data)
            self._watched = layer
        self._fill_backgrounds()
        self.edited.emit()

    def _on_data(self, *_: object) -> None:
        self.edited.emit()

    def _on_radius_changed(self, value: float) -> None:
        for layer in self.viewer.layers:
            if isinstance(layer, Points) and layer.metadata.get(MEASURE_KEY):
                layer.current_size = 2.0 * value
                if len(layer.data):
                    layer.size = 2.0 * value
        self.edited.emit()

    # -- picks ----------------------------------------------------------------------------
    def _add_points(self, data: np.ndarray, name: str, ref: Image) -> Points:
        size = 2.0 * self.radius.value()
        layer = self.viewer.add_points(
            data,
            ndim=2,
            name=name,
            size=size,
            face_color="transparent",
            border_color="#ffd400",
            border_width=0.08,
            metadata={MEASURE_KEY: True},
            **points_geometry(ref),
        )
        layer.current_size = size
        self.regions_combo.setCurrentText(layer.name)
        return layer

    def new_points_layer(self) -> Points | None:
        """Add an empty Points layer over the reference image, in add mode."""
        ref = reference_layer(self.viewer, self.state)
        if ref is None:
            show_warning("Open an image first: picks are placed on the reference image.")
            return None
        layer = self._add_points(np.zeros((0, 2)), "particles", ref)
        layer.mode = "add"
        return layer

    def _on_load_clicked(self) -> None:
        ref = reference_layer(self.viewer, self.state)
        start = str(Path(source_path(ref)).parent) if ref is not None and source_path(ref) else ""
        path, _ = QFileDialog.getOpenFileName(self, "Load particle picks", start, PICK_FILTER)
        if path:
            self.load_picks(path)

    def load_picks(self, path: str | os.PathLike) -> Points | None:
        """Read picks from a STAR/box/text file into a Points layer over the reference image.

        A STAR or Topaz file listing several micrographs is filtered to the
        reference layer's file (or name); problems become notifications.
        """
        ref = reference_layer(self.viewer, self.state)
        if ref is None:
            show_warning("Open the micrograph first: picks are placed on the reference image.")
            return None
        path = Path(path)
        try:
            xy = picks_for(path, source_path(ref) or ref.name)
        except CryoDenoiseError as err:
            show_warning(f"Cannot load picks: {err}")
            return None
        data = xy[:, ::-1]
        h, w = full_resolution(ref).shape[-2:]
        outside = int(
            np.sum(
                (data[:, 0] < 0) | (data[:, 1] < 0) | (data[:, 0] > h - 1) | (data[:, 1] > w - 1)
            )
        )
        layer = self._add_points(data, path.stem, ref)
        msg = f"Loaded {len(xy)} picks from {path.name} onto {ref.name!r}."
        if outside:
            msg += (
                f" {outside} lie outside the image: were they picked on a binned or "
                "different micrograph?"
            )
            show_warning(msg)
        else:
            show_info(msg)
        return layer

    # -- regions for a measurement --------------------------------------------------------
    def regions_job(self, world: tuple[float, ...]) -> PickRegions | ShapeRegions:
        """The regions on the plane at ``world``, as the SNR job takes them.

        Raises
        ------
        InputError
            If no regions layer is chosen or it has no picks on this plane.

        """
        layer = self.layer()
        if layer is None:
            raise InputError(
                "choose a Points layer with particle picks or a Shapes layer with regions "
                "(or use 'Load picks…' / 'New picks layer')"
            )
        if isinstance(layer, Points):
            picks = points_world_yx(layer, world)
            if not len(picks):
                raise InputError(
                    f"no picks in {layer.name!r} on this plane: click on particles (add mode) "
                    "or load a pick file"
                )
            return PickRegions(picks, self.radius.value(), self.region_shape.currentText())
        shapes = shapes_world_yx(layer, world)
        bg_name = self.background_combo.currentText()
        background = None
        if bg_name and bg_name != PAIRS_IN_ORDER and layer_named(self.viewer, bg_name):
            background = shapes_world_yx(layer_named(self.viewer, bg_name), world)
        return pair_shapes(shapes, background, layer.name)

    def picks(self) -> bool:
        """True if the regions are particle picks (a Points layer), not drawn shapes."""
        return isinstance(self.layer(), Points)

    def show_regions(self, labels: np.ndarray, ref: Layer | None) -> None:
        """Paint measured regions (1 signal, 2 background) into the regions labels layer."""
        if ref is None:
            return
        geometry = points_geometry(ref)
        layer = layer_named(self.viewer, REGIONS_LAYER)
        if isinstance(layer, Labels) and layer.data.shape == labels.shape:
            layer.data = labels
            layer.scale, layer.translate = geometry["scale"], geometry["translate"]
            layer.refresh()
            return
        if layer is not None:
            self.viewer.layers.remove(layer)
        active = self.viewer.layers.selection.active
        colors = DirectLabelColormap(color_dict={1: "#ffd400", 2: "#2ee6ff", None: "transparent"})
        self.viewer.add_labels(
            labels, name=REGIONS_LAYER, opacity=0.35, colormap=colors, **geometry
        )
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active
