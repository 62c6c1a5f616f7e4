"""Hand a trained model from the Train widget to the one Denoise dock.

napari names a dock after how it was opened (Plugins menu: "Denoise
(napari-cryodenoise)"; Layers > Filter menu: the command title), so asking
napari for the Denoise widget by name opens a second one when the first came
from the other menu. :func:`open_denoise_dock` therefore looks for a docked
:class:`~.denoise.DenoiseWidget` first, whatever its title.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QDockWidget

from ..results import is_result

__all__ = ["DENOISE_WIDGET", "PLUGIN", "docked_widgets", "open_denoise_dock", "select_input"]

PLUGIN = "napari-cryodenoise"
DENOISE_WIDGET = "Denoise"  # display_name in napari.yaml


def docked_widgets(viewer: Any) -> list[Any]:
    """The widgets docked in the viewer's window (magicgui or Qt), in dock order."""
    window = viewer.window
    mapping = getattr(window, "dock_widgets", None)  # napari >= 0.6.2: the inner widgets
    if mapping is not None:
        return list(mapping.values())
    docks = getattr(window, "_wrapped_dock_widgets", None) or getattr(window, "_dock_widgets", {})
    return [d.inner_widget() if hasattr(d, "inner_widget") else d.widget() for d in docks.values()]


def _dock_of(widget: Any) -> Any:
    """The QDockWidget around a docked widget (None if not found)."""
    qt = getattr(widget, "native", widget)
    while qt is not None and not isinstance(qt, QDockWidget):
        qt = qt.parent()
    return qt


def open_denoise_dock(viewer: Any) -> tuple[Any, Any]:
    """``(dock, widget)`` of the Denoise widget: the docked one, or a newly opened one."""
    from .denoise import DenoiseWidget

    for widget in docked_widgets(viewer):
        if isinstance(widget, DenoiseWidget):
            return _dock_of(widget), widget
    return viewer.window.add_plugin_dock_widget(PLUGIN, DENOISE_WIDGET)


def select_input(widget: Any, layer: Any) -> bool:
    """Make ``layer`` the Denoise input if it is offered there and is not a result/preview."""
    if layer is None or is_result(layer):
        return False
    widget.input.reset_choices()
    if layer not in list(widget.input.choices):
        return False
    widget.input.value = layer
    return True
