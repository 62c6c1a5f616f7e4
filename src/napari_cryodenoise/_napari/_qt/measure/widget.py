"""The "Measure SNR / FRC" dock widget: region SNR, gain over raw, FRC curves.

The user marks particles (a Points layer, or picks loaded from a STAR/box
file) or draws signal/background regions (a Shapes layer) over the raw and
denoised image layers. The widget shows each image's region SNR (the
Topaz-Denoise definition, in dB), its gain over a reference (raw) layer, and
optionally a noise estimate and PSNR/SSIM against a ground-truth layer. It
also plots the FRC of two layers with the resolution at 0.143 and half-bit.

It is a thin container of three panels sharing one :class:`~.state.MeasureState`:
:mod:`.regions_panel` (picks or regions), :mod:`.snr_panel` (SNR table),
:mod:`.frc_panel` (FRC plot). Layers are read on the main thread into plain
jobs (:mod:`...measure`); the arithmetic runs in napari thread workers; results
come back on the main thread. Bad input gives a napari notification, never an
exception.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from napari.layers import Image, Points
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ...measure import SnrResult
from ...measure_frc import FrcCurve
from ..dock import fill_with_scroll_area
from .frc_panel import FrcPanel
from .regions_panel import REGIONS_LAYER, RegionsPanel
from .snr_panel import SnrPanel
from .state import MeasureState, reference_layer

if TYPE_CHECKING:
    from napari.utils.events import Event
    from napari.viewer import Viewer

__all__ = ["REGIONS_LAYER", "MeasureWidget"]


class MeasureWidget(QWidget):
    """Dock widget measuring region SNR, gain in dB over a reference layer, and FRC.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer (napari passes it by this name when the widget is opened from the
        Plugins menu; its public proxy is unwrapped).
    parent : QWidget, optional

    """

    def __init__(self, napari_viewer: Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.viewer = viewer
        self.state = MeasureState()
        self.regions = RegionsPanel(viewer, self.state)
        self.snr = SnrPanel(viewer, self.state, self.regions)
        self.frc = FrcPanel(viewer)
        # the controls tests and scripts reach by name
        self.regions_combo, self.radius = self.regions.regions_combo, self.regions.radius
        self.background_combo = self.regions.background_combo
        self.reference_combo, self.truth_combo = self.snr.reference_combo, self.snr.truth_combo
        self.noise_check, self.table, self.status = (
            self.snr.noise_check,
            self.snr.table,
            self.snr.status,
        )
        self.frc_a, self.frc_b, self.pixel_size = (
            self.frc.frc_a,
            self.frc.frc_b,
            self.frc.pixel_size,
        )
        self.plot, self.frc_label = self.frc.plot, self.frc.frc_label

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        for panel in (self.regions, self.snr, self.frc):
            layout.addWidget(panel)
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
        self.snr.opening = False

    def _on_layers_changed(self, event: Event | None = None) -> None:
        layer = getattr(event, "value", None)
        if getattr(event, "type", "") == "inserted" and layer is not None:
            layer.events.name.connect(self._refresh_layers)
        elif getattr(event, "type", "") == "removed" and layer is not None:
            layer.events.name.disconnect(self._refresh_layers)
        self._refresh_layers()

    def _refresh_layers(self, event: Event | None = None) -> None:
        old_regions = self.regions.fill()
        self.snr.fill()
        self.frc.fill()
        self.snr.fill_list()
        self.regions.follow(old_regions)

    # -- what scripts and tests use -------------------------------------------------------
    @property
    def last_result(self) -> SnrResult | None:
        """The last SNR measurement."""
        return self.snr.last_result

    @property
    def last_curve(self) -> FrcCurve | None:
        """The last FRC curve."""
        return self.frc.last_curve

    @property
    def frc_warning(self) -> str | None:
        """Why the last FRC's two layers are not independent (None when they seem to be)."""
        return self.frc.frc_warning

    @property
    def busy(self) -> bool:
        """True while an SNR or FRC worker runs."""
        return self.snr.busy or self.frc.busy

    def reference_layer(self) -> Image | None:
        """Return the reference (raw) image layer, else the first image layer, else None."""
        return reference_layer(self.viewer, self.state)

    def set_ticked(self, name: str, ticked: bool = True) -> None:
        """Tick (or untick) an image layer in the "Images" list, as a click does."""
        self.snr.set_ticked(name, ticked)

    def ticked_names(self) -> list[str]:
        """Names of the ticked image layers, in list order."""
        return [layer.name for layer in self.snr.checked_images()]

    def new_points_layer(self) -> Points | None:
        """Add an empty Points layer over the reference image, in add mode."""
        return self.regions.new_points_layer()

    def load_picks(self, path: str | os.PathLike) -> Points | None:
        """Read picks from a STAR/box/text file into a Points layer over the reference image."""
        return self.regions.load_picks(path)

    def measure(self) -> None:
        """Measure all ticked images now (button); recomputes noise and ground-truth scores."""
        self.snr.measure()

    def table_text(self) -> str:
        """Return the visible table as tab-separated text (header first)."""
        return self.table.text()

    def copy_table(self) -> None:
        """Copy the table to the clipboard as tab-separated text."""
        self.snr.copy_table()

    def compute_frc(self) -> None:
        """Start the FRC (FSC for two volumes) of the chosen layers in a worker."""
        self.frc.compute_frc()

    def _clear_plot(self) -> None:
        self.frc.clear_plot()

    def shutdown(self) -> None:
        """Stop the auto-update timer and ask running workers to quit."""
        self.snr.shutdown()
        self.frc.shutdown()
