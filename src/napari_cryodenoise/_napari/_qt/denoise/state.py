"""The one evented state the Denoise widget's panels observe.

Each panel owns its widgets and writes what it decides into this state
(``state.status = ...``); the others connect to ``state.events.<field>`` and
follow. It holds no Qt object, only layers, frozen settings and plain values.
"""

from __future__ import annotations

from dataclasses import dataclass

from napari.layers import Image
from psygnal import evented

from ...settings import DenoiseSettings

__all__ = ["DenoiseState"]


@evented
@dataclass(eq=False)
class DenoiseState:
    """What the Denoise panels share (every field emits ``events.<name>`` when it changes).

    Attributes
    ----------
    input : napari.layers.Image or None
        The layer chosen for denoising.
    settings : DenoiseSettings or None
        The form as frozen settings; None while it is incomplete (e.g. no model file).
    status : str
        The one-line status shown in the dock (progress, results, errors).
    result_layer : napari.layers.Image or None
        The last result layer (updated in place by the next run, or replaced).
    raw_layer : napari.layers.Image or None
        The input that ``result_layer`` was made from (for compare and save).
    job_running : bool
        A model load or whole-image job runs (the Denoise button waits).
    live_running : bool
        The live view is active.

    """

    input: Image | None = None
    settings: DenoiseSettings | None = None
    status: str = ""
    result_layer: Image | None = None
    raw_layer: Image | None = None
    job_running: bool = False
    live_running: bool = False


class StatusSink:
    """A ``label``-like object whose ``value`` is ``state.status`` (for :class:`ProgressLine`)."""

    def __init__(self, state: DenoiseState) -> None:
        self._state = state

    @property
    def value(self) -> str:
        """The status text."""
        return self._state.status

    @value.setter
    def value(self, text: str) -> None:
        self._state.status = text
