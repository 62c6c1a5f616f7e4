"""Raw versus denoised: side by side in grid mode, and a flick at the same place.

Both work on any viewer model (no Qt needed) and undo themselves: the grid
view remembers which layers were visible and the grid settings, and
:meth:`SideBySide.leave` restores them. The camera is shared in grid mode, so
panning or zooming one side moves the other. Neither entering nor leaving
moves the camera: each half of the canvas shows the same place at the zoom
the user had (no ``reset_view``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _camera(viewer: Any) -> Any:
    scene = getattr(viewer, "scene", None)
    camera = getattr(scene, "camera", None)
    return camera if camera is not None else viewer.camera


def _keep_camera(viewer: Any) -> Any:
    """Remember the camera's centre and zoom; the returned function puts them back."""
    camera = _camera(viewer)
    center, zoom = tuple(camera.center), float(camera.zoom)

    def restore() -> None:
        if tuple(camera.center) != center:
            camera.center = center
        if float(camera.zoom) != zoom:
            camera.zoom = zoom

    return restore


def _grid(viewer: Any) -> Any:
    canvas = getattr(viewer, "canvas", None)
    return getattr(canvas, "grid", None) or viewer.grid


@dataclass
class SideBySide:
    """Toggle a two-cell grid showing only ``raw`` and ``denoised``."""

    viewer: Any
    _saved: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        """True while the side-by-side view is shown."""
        return self._saved is not None

    def enter(self, raw: Any, denoised: Any, *, reset_view: bool = False) -> None:
        """Show ``raw | denoised`` in a 1x2 grid (raw on the left), other layers hidden.

        The two cells fill the canvas and show the place and zoom the user
        had; with ``reset_view`` the camera is fitted to whole images instead.
        """
        restore = _keep_camera(self.viewer)
        if self._saved is None:
            grid = _grid(self.viewer)
            self._saved = {
                "visible": {id(layer): layer.visible for layer in self.viewer.layers},
                "enabled": grid.enabled,
                "shape": tuple(grid.shape),
                "stride": grid.stride,
                "spacing": getattr(grid, "spacing", 0),
            }
        grid = _grid(self.viewer)
        for layer in self.viewer.layers:
            layer.visible = layer is raw or layer is denoised
        layers = list(self.viewer.layers)
        # grid cells are filled in layer-list order; put raw first, denoised right
        if layers.index(raw) > layers.index(denoised):
            grid.stride = -1
        else:
            grid.stride = 1
        grid.shape = (1, 2)
        grid.spacing = 0
        grid.enabled = True
        if reset_view:
            self.viewer.reset_view()
        else:
            restore()

    def leave(self) -> None:
        """Restore the grid settings and layer visibility from before :meth:`enter`."""
        if self._saved is None:
            return
        saved, self._saved = self._saved, None
        restore = _keep_camera(self.viewer)
        grid = _grid(self.viewer)
        grid.enabled = saved["enabled"]
        grid.shape = saved["shape"]
        grid.stride = saved["stride"]
        grid.spacing = saved["spacing"]
        for layer in self.viewer.layers:
            if id(layer) in saved["visible"]:
                layer.visible = saved["visible"][id(layer)]
        restore()

    def toggle(self, raw: Any, denoised: Any) -> bool:
        """Enter or leave; returns the new state."""
        if self.active:
            self.leave()
        else:
            self.enter(raw, denoised)
        return self.active


def flick(viewer: Any, raw: Any, denoised: Any) -> Any:
    """Show one of ``raw``/``denoised`` and hide the other, at the same place.

    In grid mode the two cells are swapped instead (the grid's stride is
    reversed), so each side alternates between raw and denoised in place.

    Returns
    -------
    layer
        The layer now shown (in grid mode: the one now in the first cell).

    """
    grid = _grid(viewer)
    if grid.enabled:
        grid.stride = -grid.stride if grid.stride else -1  # reverses the cell order
        return _top_left(viewer, raw, denoised)
    if denoised.visible and (not raw.visible or _above(viewer, denoised, raw)):
        denoised.visible, raw.visible = False, True
        return raw
    raw.visible, denoised.visible = False, True
    return denoised


def _top_left(viewer: Any, raw: Any, denoised: Any) -> Any:
    """Which of the two layers the grid puts in its first cell."""
    layers = viewer.layers
    grid = _grid(viewer)
    try:
        first = grid.position(list(layers).index(raw), layers)
        return raw if tuple(first) == (0, 0) else denoised
    except (AttributeError, TypeError, ValueError):
        order = list(layers)
        raw_first = order.index(raw) < order.index(denoised)
        return raw if raw_first == (grid.stride > 0) else denoised


def _above(viewer: Any, a: Any, b: Any) -> bool:
    layers = list(viewer.layers)
    return layers.index(a) > layers.index(b)
