"""Qt helpers shared by the dock widgets."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

__all__ = ["fill_with_scroll_area"]


def fill_with_scroll_area(widget: QWidget, content: QWidget) -> QScrollArea:
    """Make ``content`` the only, vertically scrolling child of ``widget``.

    A dock then stays usable on short screens: its form scrolls instead of
    being squeezed or clipped.
    """
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(content)
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return scroll
