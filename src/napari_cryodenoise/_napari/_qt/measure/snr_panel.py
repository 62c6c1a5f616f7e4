"""The "Region SNR" box of the Measure widget: images, reference, table, live re-measure.

:class:`SnrPanel` reads the ticked image layers and the regions on the
current plane into a plain :class:`~...measure.SnrJob` (main thread), runs it
in a napari worker and shows the scores (SNR, gain over the reference, noise,
PSNR/SSIM against a ground truth) in a table. With "live" ticked, an edit of
the regions re-measures after a short pause.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from napari.layers import Image
from napari.qt.threading import FunctionWorker, create_worker
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from ....errors import CryoDenoiseError, InputError
from ...measure import LayerScores, SnrJob, SnrResult, image_plane, run_snr
from ...results import is_result, source_facts
from ..measure_table import ScoreTable
from .regions_panel import REGIONS_LAYER, RegionsPanel
from .state import MeasureState, fill_combo, image_layers, layer_named, reference_layer

if TYPE_CHECKING:
    from napari.viewer import Viewer

log = logging.getLogger(__name__)

NONE = "(none)"
AUTO_DELAY_MS = 400


class SnrPanel(QGroupBox):
    """Region SNR of the ticked image layers, their gain over a reference, optional extras."""

    def __init__(self, viewer: Viewer, state: MeasureState, regions: RegionsPanel) -> None:
        super().__init__("Region SNR (Topaz-Denoise definition)")
        self.viewer = viewer
        self.state = state
        self.regions = regions
        self.last_result: SnrResult | None = None
        #: True while the widget opens: the layers already there start ticked.
        self.opening = True
        self._worker: FunctionWorker | None = None
        self._pending: bool | None = None  # quiet flag of a measurement asked for while busy
        self._context: tuple = ()
        self._extras: dict[tuple, LayerScores] = {}
        self._auto_timer = QTimer(self)
        self._auto_timer.setSingleShot(True)
        self._auto_timer.setInterval(AUTO_DELAY_MS)
        self._auto_timer.timeout.connect(lambda: self._start(quiet=True))
        self._build()
        regions.edited.connect(self.schedule_auto)

    def _build(self) -> None:
        outer = QVBoxLayout(self)
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
        self.reference_combo.currentTextChanged.connect(self._on_reference)
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

    # -- layers ---------------------------------------------------------------------------
    def fill(self) -> None:
        """Offer the image layers; keep ticks, tick new layers that belong to the ticked ones."""
        images = [layer.name for layer in image_layers(self.viewer)]
        raw = [layer.name for layer in image_layers(self.viewer) if not is_result(layer)]
        fill_combo(self.reference_combo, images, (raw or images or [""])[0])
        self.state.reference = self.reference_combo.currentText()
        fill_combo(self.truth_combo, [NONE, *images], NONE)

    def fill_list(self) -> None:
        """Rebuild the "Images" list, keeping each layer's tick."""
        items = [self.image_list.item(k) for k in range(self.image_list.count())]
        state = {item.data(Qt.ItemDataRole.UserRole): item.checkState() for item in items}
        ticked = {item.text() for item in items if item.checkState() == Qt.CheckState.Checked}
        self.image_list.clear()
        for layer in image_layers(self.viewer):
            item = QListWidgetItem(layer.name)
            item.setToolTip(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setData(Qt.ItemDataRole.UserRole, id(layer))
            item.setCheckState(state.get(id(layer), self._new_layer_state(layer, ticked)))
            self.image_list.addItem(item)

    def _new_layer_state(self, layer: Image, ticked: set[str]) -> Qt.CheckState:
        """Check state of a layer new to the list.

        Ticked: the layers there when the widget opens, the reference layer, and
        denoised results of a ticked or the reference layer. Other layers opened
        later stay unticked: they are often unrelated images.
        """
        reference = self.reference_combo.currentText()
        origin = source_facts(layer).get("source_layer") if is_result(layer) else None
        if self.opening or layer.name == reference or (origin and origin in {*ticked, reference}):
            return Qt.CheckState.Checked
        return Qt.CheckState.Unchecked

    def _on_reference(self, name: str) -> None:
        self.state.reference = name
        self.schedule_auto()

    def set_ticked(self, name: str, ticked: bool = True) -> None:
        """Tick (or untick) an image layer in the "Images" list, as a click does."""
        for k in range(self.image_list.count()):
            item = self.image_list.item(k)
            if item.text() == name:
                item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
                return
        raise KeyError(f"no image layer {name!r} in the Measure list")

    def checked_images(self) -> list[Image]:
        """The ticked image layers, in layer order."""
        names = {
            self.image_list.item(k).text()
            for k in range(self.image_list.count())
            if self.image_list.item(k).checkState() == Qt.CheckState.Checked
        }
        return [layer for layer in image_layers(self.viewer) if layer.name in names]

    # -- measuring ------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while the SNR worker runs."""
        return self._worker is not None

    def schedule_auto(self, *_: object) -> None:
        """Re-measure shortly (live), if a measurement was made and "live" is ticked."""
        if self.auto_check.isChecked() and self.last_result is not None:
            self._auto_timer.start()

    def measure(self) -> None:
        """Measure all ticked images now (button); recomputes noise and ground-truth scores."""
        self._extras.clear()
        self._start(quiet=False)

    def _job(self) -> SnrJob:
        world = tuple(self.viewer.dims.point)
        ref = reference_layer(self.viewer, self.state)
        layers = self.checked_images()
        if ref is not None and ref not in layers:
            layers = [ref, *layers]
        if not layers:
            raise InputError("open (and tick) at least one image layer to measure")
        regions = self.regions.regions_job(world)
        planes = [image_plane(layer, world) for layer in layers]
        reference = layers.index(ref) if ref in layers else 0
        truth_layer = layer_named(self.viewer, self.truth_combo.currentText())
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

    def _start(self, quiet: bool) -> None:
        if self._worker is not None:
            self._pending = quiet if self._pending is None else (self._pending and quiet)
            return
        try:
            job = self._job()
        except CryoDenoiseError as err:
            self._report(err, quiet)
            return
        worker = create_worker(run_snr, job, _ignore_errors=True)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_done)
        worker.errored.connect(lambda err: self._report(err, quiet))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.measure_button.setEnabled(False)
        self.status.setText("Measuring…")
        worker.start()

    def _on_progress(self, step: tuple[int, int]) -> None:
        done, total = step
        self.status.setText(f"Measuring… {done}/{total} images")

    def _on_finished(self) -> None:
        self._worker = None
        self.measure_button.setEnabled(True)
        if self._pending is not None:
            quiet, self._pending = self._pending, None
            self._start(quiet)

    def _on_done(self, result: SnrResult) -> None:
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
        picks = self.regions.picks()
        kind = "picks" if picks else "region pairs"
        text = f"{result.pairs} of {result.requested} {kind} measured on {result.reference!r}"
        if picks:
            radius = self.regions.radius.value()
            text += f" (radius {radius:g} px, backgrounds chosen automatically)"
        self.status.setText("; ".join([text, *result.notes]) + ".")
        if result.labels is not None:
            self.regions.show_regions(result.labels, layer_named(self.viewer, result.reference))

    def copy_table(self) -> None:
        """Copy the table to the clipboard as tab-separated text."""
        QApplication.clipboard().setText(self.table.text())

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

    def shutdown(self) -> None:
        """Stop the live re-measure timer and ask the worker to quit."""
        self._auto_timer.stop()
        self._pending = None
        if self._worker is not None:
            self._worker.quit()
