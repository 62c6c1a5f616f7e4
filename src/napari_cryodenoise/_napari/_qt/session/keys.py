"""The Session browser's keys, bound on the viewer while a session is open."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def session_keys(widget: Any) -> dict[str, Callable[[], Any]]:
    """Key -> action: N/P next/previous, Home/End first/last, G/B good/bad, Space toggle."""
    return {
        "N": lambda: widget.step(1),
        "P": lambda: widget.step(-1),
        "Home": widget.first,
        "End": widget.last,
        "G": lambda: widget.mark("good"),
        "B": lambda: widget.mark("bad"),
        "Space": widget.toggle_mark,
    }


class KeyBinder:
    """Binds :func:`session_keys` on a viewer and gives the keys back on :meth:`unbind`."""

    def __init__(self, viewer: Any, actions: dict[str, Callable[[], Any]]) -> None:
        self.viewer, self.actions = viewer, actions
        self.bound = False

    def bind(self) -> None:
        """Bind every key (replacing napari's own binding of the same key while open)."""
        if self.bound:
            return
        for key, action in self.actions.items():
            try:
                self.viewer.bind_key(key, _handler(action), overwrite=True)
            except Exception:  # noqa: BLE001 - keys are a convenience; buttons remain
                log.debug("could not bind %s", key)
        self.bound = True

    def unbind(self) -> None:
        """Remove the bindings."""
        if not self.bound:
            return
        for key in self.actions:
            try:
                self.viewer.bind_key(key, None)
            except Exception:  # noqa: BLE001
                log.debug("could not unbind %s", key)
        self.bound = False


def _handler(action: Callable[[], Any]) -> Callable[[Any], None]:
    def handler(_viewer: Any = None) -> None:
        action()

    return handler
