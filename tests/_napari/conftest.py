"""Fixtures for the napari tests.

Widgets are opened the way users open them, from the Plugins menu:
``viewer.window.add_plugin_dock_widget("napari-cryodenoise", "<display name>")``,
never built by hand, so a constructor napari cannot call fails here first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

PLUGIN = "napari-cryodenoise"


@pytest.fixture(autouse=True)
def _no_model_preload(monkeypatch):
    """Widgets do not load pretrained weights in the background during tests."""
    from napari_cryodenoise._napari._qt.denoise import DenoiseWidget

    monkeypatch.setattr(DenoiseWidget, "PRELOAD", False)


@pytest.fixture(autouse=True)
def _no_step_time_estimate(monkeypatch):
    """The Train widget does not time training steps in the background during tests
    (tests of that line switch it back on)."""
    from napari_cryodenoise._napari._qt.train.step_time import StepTimeLine

    monkeypatch.setattr(StepTimeLine, "ENABLED", False)


def dock_title(display_name: str) -> str:
    """The title napari gives a plugin's dock: ``"<display name> (napari-cryodenoise)"``."""
    return f"{display_name} ({PLUGIN})"


def _idle(widget: Any) -> bool:
    """True once a widget's workers have stopped."""
    if hasattr(widget, "running_workers"):
        return widget.running_workers == 0
    return not getattr(widget, "busy", False)


@pytest.fixture
def open_widget(make_napari_viewer, qtbot) -> Iterator[Callable[..., tuple[Any, Any]]]:
    """Factory ``open_widget(display_name, viewer=None, **viewer_kwargs) -> (viewer, widget)``.

    Opens the plugin's dock widget through napari's Plugins-menu path (a new
    viewer from ``make_napari_viewer(**viewer_kwargs)`` unless ``viewer`` is
    given), checks that a dock appeared, and returns the widget napari made.
    Every opened widget is shut down, and its workers waited for, at teardown.
    """
    opened: list[Any] = []

    def _open(display_name: str, viewer: Any = None, **viewer_kwargs: Any) -> tuple[Any, Any]:
        viewer = viewer if viewer is not None else make_napari_viewer(**viewer_kwargs)
        dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, display_name)
        assert viewer.window.dock_widgets[dock_title(display_name)] is widget
        assert dock.inner_widget() is widget
        assert getattr(widget, "viewer", viewer) is viewer  # napari's proxy is unwrapped
        opened.append(widget)
        return viewer, widget

    yield _open
    for widget in opened:
        widget.shutdown()
    for widget in opened:
        qtbot.waitUntil(lambda w=widget: _idle(w), timeout=30000)
