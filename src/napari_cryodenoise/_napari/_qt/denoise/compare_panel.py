"""Compare raw and denoised: side by side with one camera, or flick between them.

The layout logic is Qt-free (:mod:`...compare`); :class:`ComparePanel` holds
the two buttons and the viewer key binding and reads the pair to compare from
the shared :class:`~.state.DenoiseState`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from magicgui.widgets import PushButton

from ...compare import SideBySide, flick
from . import notify
from .state import DenoiseState

if TYPE_CHECKING:
    from napari.layers import Image
    from napari.viewer import Viewer

log = logging.getLogger(__name__)

FLICK_KEY = "Shift-F"
SIDE_BY_SIDE = "raw | denoised side by side"


class ComparePanel:
    """The "side by side" and "flick" buttons (and ``Shift-F`` in the viewer).

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose grid and layer visibility change.
    state : DenoiseState
        Read for the raw and the result layer; receives the status text.

    """

    def __init__(self, viewer: Viewer, state: DenoiseState) -> None:
        self.viewer = viewer
        self.state = state
        self.side_by_side = SideBySide(viewer)
        self.side_button = PushButton(text=SIDE_BY_SIDE)
        self.flick_button = PushButton(text=f"flick raw / denoised ({FLICK_KEY})")
        self.side_button.changed.connect(self.toggle_side_by_side)
        self.flick_button.changed.connect(self.flick)
        try:
            viewer.bind_key(FLICK_KEY, self._flick_key, overwrite=True)
        except Exception:  # noqa: BLE001 - keybindings are a convenience
            log.debug("could not bind %s", FLICK_KEY)

    def _pair(self) -> tuple[Image, Image] | None:
        raw, out = self.state.raw_layer, self.state.result_layer
        layers = self.viewer.layers
        if raw is None or out is None or raw not in layers or out not in layers:
            notify.show_warning("denoise an image first: compare needs a raw and a denoised layer")
            return None
        return raw, out

    def toggle_side_by_side(self, *_: object) -> bool:
        """Raw | denoised in a two-cell grid with one camera, and back."""
        pair = self._pair()
        if pair is None:
            return False
        state = self.side_by_side.toggle(*pair)
        self.side_button.text = "back to a single view" if state else SIDE_BY_SIDE
        return state

    def flick(self, *_: object) -> Image | None:
        """Swap raw and denoised at the same place (in grid mode: swap the cells)."""
        pair = self._pair()
        if pair is None:
            return None
        shown = flick(self.viewer, *pair)
        self.state.status = f"showing {shown.name}"
        return shown

    def _flick_key(self, _viewer: Viewer | None = None) -> None:
        self.flick()
