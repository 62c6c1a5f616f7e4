"""What the Measure panels share, evented, and small helpers for their layer combo boxes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from napari.layers import Image, Layer
from psygnal import evented
from qtpy.QtWidgets import QComboBox

if TYPE_CHECKING:
    from napari.viewer import Viewer

__all__ = ["MeasureState", "fill_combo", "image_layers", "layer_named", "reference_layer"]


@evented
@dataclass(eq=False)
class MeasureState:
    """The Measure widget's shared state (each field emits ``events.<name>`` on change).

    Attributes
    ----------
    reference : str
        Name of the reference (raw) image layer: gains are relative to it and
        picks are placed on its pixel grid.

    """

    reference: str = ""


def layer_named(viewer: Viewer, name: str) -> Layer | None:
    """The layer called ``name``, or None."""
    return viewer.layers[name] if name and name in viewer.layers else None


def image_layers(viewer: Viewer) -> list[Image]:
    """The viewer's image layers, in layer order."""
    return [layer for layer in viewer.layers if isinstance(layer, Image)]


def reference_layer(viewer: Viewer, state: MeasureState) -> Image | None:
    """The reference (raw) image layer, else the first image layer, else None."""
    layer = layer_named(viewer, state.reference)
    if layer is None:
        images = image_layers(viewer)
        layer = images[0] if images else None
    return layer


def fill_combo(combo: QComboBox, names: list[str], default: str = "") -> None:
    """Offer ``names``, keeping the current choice if still there, else ``default`` (silently)."""
    current = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(names)
    keep = current if current in names else default
    if keep in names:
        combo.setCurrentText(keep)
    combo.blockSignals(False)
