"""The "Fourier ring correlation" box of the Measure widget: FRC/FSC of two layers, plotted.

:class:`FrcPanel` reads the two chosen layers' displayed planes (or whole
volumes) into an :class:`~...measure.FrcJob`, computes it in a worker and adds
the curve to the plot with the resolution at 0.143 and half-bit; it warns
when the two layers share their noise (see :mod:`...measure_frc`).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from napari.layers import Layer
from napari.qt.threading import FunctionWorker, create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from ....errors import CryoDenoiseError, InputError
from ....metrics import CROSSING_RULE
from ...measure import ImagePlane, image_plane, is_volume
from ...measure_frc import FrcCurve, format_resolution, frc_job, frc_warning, run_frc
from ..plot import make_frc_plot
from .state import fill_combo, image_layers, layer_named

if TYPE_CHECKING:
    from napari.viewer import Viewer

log = logging.getLogger(__name__)


class FrcPanel(QGroupBox):
    """FRC (FSC for two volumes) of two image layers, with the curves plotted."""

    def __init__(self, viewer: Viewer) -> None:
        super().__init__("Fourier ring correlation")
        self.viewer = viewer
        self.last_curve: FrcCurve | None = None
        #: Why the last FRC's two layers are not independent (None when they seem to be).
        self.frc_warning: str | None = None
        self._layers: tuple[Layer | None, Layer | None] = (None, None)
        self._note = ""  # the running job's note (its layers' pixel sizes differ)
        self._worker: FunctionWorker | None = None
        outer = QVBoxLayout(self)
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
        self.clear_button.clicked.connect(self.clear_plot)
        buttons.addWidget(self.frc_button)
        buttons.addWidget(self.clear_button)
        outer.addLayout(buttons)
        self.plot = make_frc_plot(viewer)
        outer.addWidget(self.plot)
        self.frc_label = QLabel("")
        self.frc_label.setWordWrap(True)
        self.frc_label.setToolTip(f"Resolution: the {CROSSING_RULE}.")
        outer.addWidget(self.frc_label)

    @property
    def busy(self) -> bool:
        """True while the FRC worker runs."""
        return self._worker is not None

    def fill(self) -> None:
        """Offer the image layers (the first two by default)."""
        images = [layer.name for layer in image_layers(self.viewer)]
        fill_combo(self.frc_a, images, images[0] if images else "")
        fill_combo(self.frc_b, images, images[1] if len(images) > 1 else "")

    def compute_frc(self) -> None:
        """Start the FRC (FSC for two volumes) of the chosen layers in a worker."""
        if self._worker is not None:
            show_info("An FRC is already being computed.")
            return
        a = layer_named(self.viewer, self.frc_a.currentText())
        b = layer_named(self.viewer, self.frc_b.currentText())
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
        self._note = job.note
        threads = max(1, (os.cpu_count() or 2) - 1)
        worker = create_worker(run_frc, job, workers=threads, _ignore_errors=True)
        worker.returned.connect(self._on_done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._layers = (a, b)
        self.frc_button.setEnabled(False)
        self.frc_label.setText(f"Computing the FRC of {a.name!r} and {b.name!r}…")
        worker.start()

    def _on_done(self, curve: FrcCurve) -> None:
        self.last_curve = curve
        self.plot.add(curve)
        kind = "FSC" if curve.volume else "FRC"
        text = (
            f"{kind} {curve.label}: resolution {format_resolution(curve.res_0143, curve.unit)} "
            f"at 0.143, {format_resolution(curve.res_halfbit, curve.unit)} at ½-bit"
            + ("" if curve.unit == "Å" else " (no pixel size: in pixels)")
        )
        a, b = self._layers
        if self._note:
            text += f"\n⚠ {self._note}"
            show_warning(f"FRC: {self._note}")
        self.frc_warning = frc_warning(curve, a, b) if a is not None else None
        if self.frc_warning:
            text += f"\n⚠ {self.frc_warning}"
            show_warning(f"FRC: {self.frc_warning}")
        self.frc_label.setText(text)

    def _on_error(self, err: BaseException) -> None:
        self.frc_label.setText(str(err))
        if isinstance(err, CryoDenoiseError):
            show_warning(str(err))
        else:
            log.error("FRC failed", exc_info=err)
            show_error(f"FRC failed: {err}")

    def _on_finished(self) -> None:
        self._worker = None
        self.frc_button.setEnabled(True)

    def clear_plot(self) -> None:
        """Remove every curve and the resolution text."""
        self.plot.clear()
        self.frc_label.setText("")

    def shutdown(self) -> None:
        """Ask a running FRC worker to quit."""
        if self._worker is not None:
            self._worker.quit()
