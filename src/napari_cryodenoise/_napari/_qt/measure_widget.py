"""The "Measure SNR / FRC" dock widget: region SNR, gain over raw, FRC curves.

The user marks particles (a Points layer, or picks loaded from a STAR/box
file) or draws signal/background regions (a Shapes layer) over the raw and
denoised image layers. The widget shows each image's region SNR (the
Topaz-Denoise definition, in dB), its gain over a reference (raw) layer, and
optionally a noise estimate and PSNR/SSIM against a ground-truth layer. It
also plots the FRC of two layers with the resolution at 0.143 and half-bit.

Layers are read on the main thread into plain jobs (:mod:`.measure`); the
arithmetic runs in napari thread workers; results come back on the main
thread. Bad input gives a napari notification, never an exception.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Points, Shapes
from napari.qt.threading import create_worker
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...errors import CryoDenoiseError, InputError
from ...metrics import CROSSING_RULE
from ..measure import (
    FrcCurve,
    ImagePlane,
    LayerScores,
    PickRegions,
    ShapeRegions,
    SnrJob,
    SnrResult,
    format_resolution,
    frc_job,
    full_resolution,
    image_plane,
    is_volume,
    pair_shapes,
    picks_for,
    points_world_yx,
    run_frc,
    run_snr,
    shapes_world_yx,
)
from ..measure_frc import frc_warning
from ..results import is_result, source_facts, source_path
from .dock import fill_with_scroll_area
from .measure_table import ScoreTable
from .plot import make_frc_plot

log = logging.getLogger(__name__)

NONE = "(none)"
PAIRS_IN_ORDER = "alternate: signal, background, ..."
REGIONS_LAYER = "SNR regions"
PICK_FILTER = "Pick files (*.star *.box *.txt *.tsv *.csv *.coords);;All files (*)"
#: Marks Points layers this widget made (their size follows the radius).
MEASURE_KEY = "measure_picks"
AUTO_DELAY_MS = 400


class MeasureWidget(QWidget):
    """Dock widget measuring region SNR, gain in dB over a reference layer, and FRC.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer (napari passes it by this name when the widget is opened from the
        Plugins menu; its public proxy is unwrapped).
    parent : QWidget, optional

    """

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.viewer = viewer
        self.last_result: SnrResult | None = None
        self.last_curve: FrcCurve | None = None
        #: Why the last FRC's two layers are not independent (None when they seem to be).
        self.frc_warning: str | None = None
        self._frc_layers: tuple[Any, Any] = (None, None)
        #: True while the widget opens: the layers already there start ticked.
        self._opening = True
        self._snr_worker: Any = None
        self._frc_worker: Any = None
        self._pending: bool | None = None  # quiet flag of a measurement asked for while busy
        self._context: tuple = ()
        self._extras: dict[tuple, LayerScores] = {}
        self._watched: Any = None
        self._auto_timer = QTimer(self)
        self._auto_timer.setSingleShot(True)
        self._auto_timer.setInterval(AUTO_DELAY_MS)
        self._auto_timer.timeout.connect(lambda: self._start_snr(quiet=True))

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._regions_box())
        layout.addWidget(self._snr_box())
        layout.addWidget(self._frc_box())
        layout.addStretch(1)
        fill_with_scroll_area(self, content)

        events = viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered"):
            emitter = getattr(events, name, None)
            if emitter is not None:
                emitter.connect(self._on_layers_changed)
        for layer in viewer.layers:
            layer.events.name.connect(self._refresh_layers)
        self._refresh_layers()
        self._opening = False

    # ------------------------------------------------------------------------- building

    def _regions_box(self) -> QGroupBox:
        box = QGroupBox("Particles / regions")
        form = QFormLayout(box)
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
        self.region_shape.currentTextChanged.connect(lambda _: self._schedule_auto())
        shape_row = QHBoxLayout()
        shape_row.addWidget(self.radius)
        shape_row.addWidget(self.region_shape)
        form.addRow("Radius", shape_row)
        self.background_combo = QComboBox()
        self.background_combo.setToolTip(
            "For a Shapes layer: backgrounds are every second shape in drawing order, or the "
            "shapes of another Shapes layer (paired by drawing order)"
        )
        self.background_combo.currentTextChanged.connect(lambda _: self._schedule_auto())
        self._background_label = QLabel("Backgrounds")
        form.addRow(self._background_label, self.background_combo)
        return box

    def _snr_box(self) -> QGroupBox:
        box = QGroupBox("Region SNR (Topaz-Denoise definition)")
        outer = QVBoxLayout(box)
        form = QFormLayout()
        self.image_list = QListWidget()
        self.image_list.setMaximumHeight(84)
        self.image_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.image_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.image_list.setToolTip("Image layers to measure (the displayed plane of stacks)")
        form.addRow("Images", self.image_list)
        self.reference_combo = QComboBox()
        self.reference_combo.setToolTip(
            "Gain (dB) is each layer's SNR minus this layer's; "
            "backgrounds are chosen on its pixel grid"
        )
        self.reference_combo.currentTextChanged.connect(lambda _: self._schedule_auto())
        form.addRow("Reference", self.reference_combo)
        self.truth_combo = QComboBox()
        self.truth_combo.setToolTip(
            "Noise-free image (simulations): adds PSNR and SSIM after "
            "an affine fit of each image to it"
        )
        form.addRow("Ground truth", self.truth_combo)
        outer.addLayout(form)
        checks = QHBoxLayout()
        self.noise_check = QCheckBox("noise σ")
        self.noise_check.setToolTip(
            "Estimate the white-noise level of each image "
            "(Laplacian method) and its ratio to the image's std"
        )
        self.regions_check = QCheckBox("show regions")
        self.regions_check.setChecked(True)
        self.regions_check.setToolTip(
            f"Paint the measured regions into a {REGIONS_LAYER!r} "
            "labels layer (1 = signal, 2 = background)"
        )
        self.auto_check = QCheckBox("live")
        self.auto_check.setChecked(True)
        self.auto_check.setToolTip("Re-measure the SNR when the points or shapes change")
        for w in (self.noise_check, self.regions_check, self.auto_check):
            checks.addWidget(w)
        outer.addLayout(checks)
        buttons = QHBoxLayout()
        self.measure_button = QPushButton("Measure SNR")
        self.measure_button.clicked.connect(self.measure)
        self.copy_button = QPushButton("Copy table")
        self.copy_button.clicked.connect(self.copy_table)
        buttons.addWidget(self.measure_button)
        buttons.addWidget(self.copy_button)
        outer.addLayout(buttons)
        self.table = ScoreTable()
        outer.addWidget(self.table)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)
        return box

    def _frc_box(self) -> QGroupBox:
        box = QGroupBox("Fourier ring correlation")
        outer = QVBoxLayout(box)
        form = QFormLayout()
        self.frc_a = QComboBox()
        self.frc_b = QComboBox()
        tip = (
            "FRC needs two independent images of the same specimen: even/odd frame sums, "
            "or denoise(even) vs the raw odd half. Raw vs its own denoised image share their "
            "noise, so their FRC says little."
        )
        self.frc_a.setToolTip(tip)
        self.frc_b.setToolTip(tip)
        form.addRow("Image A", self.frc_a)
        form.addRow("Image B", self.frc_b)
        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setRange(0.0, 1000.0)
        self.pixel_size.setDecimals(3)
        self.pixel_size.setSpecialValueText("from layer")
        self.pixel_size.setSuffix(" Å")
        self.pixel_size.setToolTip(
            "Pixel size for the frequency axis; 'from layer' uses the "
            "layer's scale (pixels when the file had none)"
        )
        form.addRow("Pixel size", self.pixel_size)
        outer.addLayout(form)
        buttons = QHBoxLayout()
        self.frc_button = QPushButton("Compute FRC")
        self.frc_button.clicked.connect(self.compute_frc)
        self.clear_button = QPushButton("Clear plot")
        self.clear_button.clicked.connect(self._clear_plot)
        buttons.addWidget(self.frc_button)
        buttons.addWidget(self.clear_button)
        outer.addLayout(buttons)
        self.plot = make_frc_plot(self.viewer)
        outer.addWidget(self.plot)
        self.frc_label = QLabel("")
        self.frc_label.setWordWrap(True)
        self.frc_label.setToolTip(f"Resolution: the {CROSSING_RULE}.")
        outer.addWidget(self.frc_label)
        return box

    # ------------------------------------------------------------------------- layers

    def _layer(self, name: str) -> Any:
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def _image_layers(self) -> list[Any]:
        return [layer for layer in self.viewer.layers if isinstance(layer, Image)]

    def _on_layers_changed(self, event: Any = None) -> None:
        layer = getattr(event, "value", None)
        if getattr(event, "type", "") == "inserted" and layer is not None:
            layer.events.name.connect(self._refresh_layers)
        elif getattr(event, "type", "") == "removed" and layer is not None:
            layer.events.name.disconnect(self._refresh_layers)
        self._refresh_layers()

    @staticmethod
    def _fill(combo: QComboBox, names: list[str], default: str = "") -> None:
        current = combo.currentText()
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(names)
        keep = current if current in names else default
        if keep in names:
            combo.setCurrentText(keep)
        combo.blockSignals(False)

    def _refresh_layers(self, event: Any = None) -> None:
        images = [layer.name for layer in self._image_layers()]
        raw = [layer.name for layer in self._image_layers() if not is_result(layer)]
        regions = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, (Points, Shapes)) and not layer.name == REGIONS_LAYER
        ]
        old_regions = self.regions_combo.currentText()
        self._fill(self.regions_combo, regions, regions[-1] if regions else "")
        self._fill(self.reference_combo, images, (raw or images or [""])[0])
        self._fill(self.truth_combo, [NONE, *images], NONE)
        self._fill(self.frc_a, images, images[0] if images else "")
        self._fill(self.frc_b, images, images[1] if len(images) > 1 else "")
        items = [self.image_list.item(k) for k in range(self.image_list.count())]
        state = {item.data(Qt.ItemDataRole.UserRole): item.checkState() for item in items}
        ticked = {item.text() for item in items if item.checkState() == Qt.CheckState.Checked}
        self.image_list.clear()
        for layer in self._image_layers():
            item = QListWidgetItem(layer.name)
            item.setToolTip(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setData(Qt.ItemDataRole.UserRole, id(layer))
            new = self._new_layer_state(layer, ticked)
            item.setCheckState(state.get(id(layer), new))
            self.image_list.addItem(item)
        if self.regions_combo.currentText() != old_regions or self._watched is None:
            self._on_regions_changed(self.regions_combo.currentText())
        else:
            self._fill_backgrounds()

    def _new_layer_state(self, layer: Any, ticked: set[str]) -> Qt.CheckState:
        """Check state of a layer new to the list.

        Ticked: the layers there when the widget opens, the reference layer, and
        denoised results of a ticked or the reference layer. Other layers opened
        later stay unticked: they are often unrelated images.
        """
        reference = self.reference_combo.currentText()
        origin = source_facts(layer).get("source_layer") if is_result(layer) else None
        if self._opening or layer.name == reference or (origin and origin in {*ticked, reference}):
            return Qt.CheckState.Checked
        return Qt.CheckState.Unchecked

    def set_ticked(self, name: str, ticked: bool = True) -> None:
        """Tick (or untick) an image layer in the "Images" list, as a click does."""
        for k in range(self.image_list.count()):
            item = self.image_list.item(k)
            if item.text() == name:
                item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
                return
        raise KeyError(f"no image layer {name!r} in the Measure list")

    def ticked_names(self) -> list[str]:
        """Names of the ticked image layers, in list order."""
        return [layer.name for layer in self._checked_images()]

    def _fill_backgrounds(self) -> None:
        current = self._layer(self.regions_combo.currentText())
        others = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Shapes) and layer is not current
        ]
        self._fill(self.background_combo, [PAIRS_IN_ORDER, *others], PAIRS_IN_ORDER)
        for w in (self._background_label, self.background_combo):
            w.setVisible(isinstance(current, Shapes))

    def _on_regions_changed(self, name: str) -> None:
        layer = self._layer(name)
        if self._watched is not None and self._watched is not layer:
            try:
                self._watched.events.data.disconnect(self._schedule_auto)
            except (RuntimeError, TypeError, ValueError):
                pass
            self._watched = None
        if layer is not None and self._watched is None:
            layer.events.data.connect(self._schedule_auto)
            self._watched = layer
        self._fill_backgrounds()
        self._schedule_auto()

    def _schedule_auto(self, event: Any = None) -> None:
        if self.auto_check.isChecked() and self.last_result is not None:
            self._auto_timer.start()

    def _on_radius_changed(self, value: float) -> None:
        for layer in self.viewer.layers:
            if isinstance(layer, Points) and layer.metadata.get(MEASURE_KEY):
                layer.current_size = 2.0 * value
                if len(layer.data):
                    layer.size = 2.0 * value
        self._schedule_auto()

    def _checked_images(self) -> list[Any]:
        names = {
            self.image_list.item(k).text()
            for k in range(self.image_list.count())
            if self.image_list.item(k).checkState() == Qt.CheckState.Checked
        }
        return [layer for layer in self._image_layers() if layer.name in names]

    def reference_layer(self) -> Any:
        """Return the reference (raw) image layer, else the first image layer, else None."""
        layer = self._layer(self.reference_combo.currentText())
        if layer is None:
            images = self._image_layers()
            layer = images[0] if images else None
        return layer

    # ------------------------------------------------------------------------- picks

    @staticmethod
    def _points_geometry(ref: Any) -> dict[str, Any]:
        scale, translate = tuple(ref.scale[-2:]), tuple(ref.translate[-2:])
        kwargs: dict[str, Any] = {"scale": scale, "translate": translate}
        if getattr(ref, "units", None) is not None:
            kwargs["units"] = tuple(str(u) for u in ref.units[-2:])
        return kwargs

    def _add_points(self, data: np.ndarray, name: str, ref: Any) -> Points:
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
            **self._points_geometry(ref),
        )
        layer.current_size = size
        self.regions_combo.setCurrentText(layer.name)
        return layer

    def new_points_layer(self) -> Points | None:
        """Add an empty Points layer over the reference image, in add mode."""
        ref = self.reference_layer()
        if ref is None:
            show_warning("Open an image first: picks are placed on the reference image.")
            return None
        layer = self._add_points(np.zeros((0, 2)), "particles", ref)
        layer.mode = "add"
        return layer

    def _on_load_clicked(self) -> None:
        ref = self.reference_layer()
        start = str(Path(source_path(ref)).parent) if ref is not None and source_path(ref) else ""
        path, _ = QFileDialog.getOpenFileName(self, "Load particle picks", start, PICK_FILTER)
        if path:
            self.load_picks(path)

    def load_picks(self, path: str | os.PathLike) -> Points | None:
        """Read picks from a STAR/box/text file into a Points layer over the reference image.

        A STAR or Topaz file listing several micrographs is filtered to the
        reference layer's file (or name); problems become notifications.
        """
        ref = self.reference_layer()
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

    # ------------------------------------------------------------------------- SNR

    @property
    def busy(self) -> bool:
        """True while an SNR or FRC worker runs."""
        return self._snr_worker is not None or self._frc_worker is not None

    def measure(self) -> None:
        """Measure all ticked images now (button); recomputes noise and ground-truth scores."""
        self._extras.clear()
        self._start_snr(quiet=False)

    def _regions_job(self, world: tuple[float, ...]) -> PickRegions | ShapeRegions:
        layer = self._layer(self.regions_combo.currentText())
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
        if bg_name and bg_name != PAIRS_IN_ORDER and self._layer(bg_name) is not None:
            background = shapes_world_yx(self._layer(bg_name), world)
        return pair_shapes(shapes, background, layer.name)

    def _snr_job(self) -> SnrJob:
        world = tuple(self.viewer.dims.point)
        ref = self.reference_layer()
        layers = self._checked_images()
        if ref is not None and ref not in layers:
            layers = [ref, *layers]
        if not layers:
            raise InputError("open (and tick) at least one image layer to measure")
        regions = self._regions_job(world)
        planes = [image_plane(layer, world) for layer in layers]
        reference = layers.index(ref) if ref in layers else 0
        truth_layer = self._layer(self.truth_combo.currentText())
        truth = image_plane(truth_layer, world) if truth_layer is not None else None
        noise = self.noise_check.isChecked()
        self._context = (truth.key if truth is not None else None, noise)
        wanted = noise or truth is not None
        extras_for = frozenset(
            p.key for p in planes if wanted and (p.key, *self._context) not in self._extras
        )
        return SnrJob(
            planes, regions, reference, truth, noise, extras_for, self.regions_check.isChecked()
        )

    def _start_snr(self, quiet: bool) -> None:
        if self._snr_worker is not None:
            self._pending = quiet if self._pending is None else (self._pending and quiet)
            return
        try:
            job = self._snr_job()
        except CryoDenoiseError as err:
            self._report(err, quiet)
            return
        worker = create_worker(run_snr, job, _ignore_errors=True)
        worker.yielded.connect(self._on_snr_progress)
        worker.returned.connect(self._on_snr_done)
        worker.errored.connect(lambda err: self._report(err, quiet))
        worker.finished.connect(self._on_snr_finished)
        self._snr_worker = worker
        self.measure_button.setEnabled(False)
        self.status.setText("Measuring…")
        worker.start()

    def _on_snr_progress(self, step: tuple[int, int]) -> None:
        done, total = step
        self.status.setText(f"Measuring… {done}/{total} images")

    def _on_snr_finished(self) -> None:
        self._snr_worker = None
        self.measure_button.setEnabled(True)
        if self._pending is not None:
            quiet, self._pending = self._pending, None
            self._start_snr(quiet)

    def _on_snr_done(self, result: SnrResult) -> None:
        for row in result.rows:
            key = (row.key, *self._context)
            if row.noise_sigma is not None or row.psnr_db is not None:
                self._extras[key] = row
            elif key in self._extras:
                old = self._extras[key]
                row.noise_sigma, row.noise_rel = old.noise_sigma, old.noise_rel
                row.psnr_db, row.ssim = old.psnr_db, old.ssim
                row.note = row.note or old.note
        self.last_result = result
        self.table.show_result(result)
        kind = "picks" if isinstance(self._regions_kind(), Points) else "region pairs"
        text = f"{result.pairs} of {result.requested} {kind} measured on {result.reference!r}"
        if kind == "picks":
            text += f" (radius {self.radius.value():g} px, backgrounds chosen automatically)"
        self.status.setText("; ".join([text, *result.notes]) + ".")
        if result.labels is not None:
            self._show_regions(result.labels)

    def _regions_kind(self) -> Any:
        return self._layer(self.regions_combo.currentText())

    def _show_regions(self, labels: np.ndarray) -> None:
        ref = self._layer(self.last_result.reference) if self.last_result else None
        if ref is None:
            return
        geometry = self._points_geometry(ref)
        layer = self._layer(REGIONS_LAYER)
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

    def table_text(self) -> str:
        """Return the visible table as tab-separated text (header first)."""
        return self.table.text()

    def copy_table(self) -> None:
        """Copy the table to the clipboard as tab-separated text."""
        QApplication.clipboard().setText(self.table_text())

    def _report(self, err: BaseException, quiet: bool = False) -> None:
        msg = str(err) or type(err).__name__
        self.status.setText(msg)
        if quiet:
            return
        if isinstance(err, CryoDenoiseError):
            show_warning(msg)
        else:
            log.error("measurement failed", exc_info=err)
            show_error(f"Measurement failed: {msg}")

    # ------------------------------------------------------------------------- FRC

    def compute_frc(self) -> None:
        """Start the FRC (FSC for two volumes) of the chosen layers in a worker."""
        if self._frc_worker is not None:
            show_info("An FRC is already being computed.")
            return
        a, b = self._layer(self.frc_a.currentText()), self._layer(self.frc_b.currentText())
        try:
            if a is None or b is None:
                raise InputError("choose two image layers for the FRC")
            if a is b:
                raise InputError("choose two different layers for the FRC")
            world = tuple(self.viewer.dims.point)
            whole = is_volume(a) and is_volume(b)
            pa: ImagePlane = image_plane(a, world, whole=whole)
            pb: ImagePlane = image_plane(b, world, whole=whole)
            job = frc_job(pa, pb, self.pixel_size.value() or None)
        except CryoDenoiseError as err:
            show_warning(str(err))
            self.frc_label.setText(str(err))
            return
        threads = max(1, (os.cpu_count() or 2) - 1)
        worker = create_worker(run_frc, job, workers=threads, _ignore_errors=True)
        worker.returned.connect(self._on_frc_done)
        worker.errored.connect(self._on_frc_error)
        worker.finished.connect(self._on_frc_finished)
        self._frc_worker = worker
        self._frc_layers = (a, b)
        self.frc_button.setEnabled(False)
        self.frc_label.setText(f"Computing the FRC of {a.name!r} and {b.name!r}…")
        worker.start()

    def _on_frc_done(self, curve: FrcCurve) -> None:
        self.last_curve = curve
        self.plot.add(curve)
        kind = "FSC" if curve.volume else "FRC"
        text = (
            f"{kind} {curve.label}: resolution {format_resolution(curve.res_0143, curve.unit)} "
            f"at 0.143, {format_resolution(curve.res_halfbit, curve.unit)} at ½-bit"
            + ("" if curve.unit == "Å" else " (no pixel size: in pixels)")
        )
        a, b = self._frc_layers
        self.frc_warning = frc_warning(curve, a, b) if a is not None else None
        if self.frc_warning:
            text += f"\n⚠ {self.frc_warning}"
            show_warning(f"FRC: {self.frc_warning}")
        self.frc_label.setText(text)

    def _on_frc_error(self, err: BaseException) -> None:
        self.frc_label.setText(str(err))
        if isinstance(err, CryoDenoiseError):
            show_warning(str(err))
        else:
            log.error("FRC failed", exc_info=err)
            show_error(f"FRC failed: {err}")

    def _on_frc_finished(self) -> None:
        self._frc_worker = None
        self.frc_button.setEnabled(True)

    def _clear_plot(self) -> None:
        self.plot.clear()
        self.frc_label.setText("")

    # ------------------------------------------------------------------------- teardown

    def shutdown(self) -> None:
        """Stop the auto-update timer and ask running workers to quit."""
        self._auto_timer.stop()
        self._pending = None
        for worker in (self._snr_worker, self._frc_worker):
            if worker is not None:
                worker.quit()
