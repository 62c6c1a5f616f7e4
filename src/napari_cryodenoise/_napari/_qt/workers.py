"""Qt plumbing for worker threads: progress relays, napari progress bars, devices.

Heavy work runs in napari workers (:func:`napari.qt.threading.create_worker`);
callbacks such as the engine's ``progress(done, total)`` are called on the
worker thread and must not touch widgets, so :class:`Relay` forwards them to
the main thread through a queued Qt signal.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from napari.utils import progress
from qtpy.QtCore import QObject, Signal, Slot


class Relay(QObject):
    """Call ``callback(done, total)`` on the main thread when :meth:`emit` is called anywhere.

    Create it on the main thread; keep a reference while the worker runs.
    """

    _progressed = Signal(object, object)

    def __init__(self, callback: Callable[[int, int], None]) -> None:
        super().__init__()
        self._callback = callback
        self._progressed.connect(self._deliver)

    def emit(self, done: int, total: int) -> None:
        """Thread-safe: queue ``callback(done, total)`` for the main thread."""
        try:
            self._progressed.emit(int(done), int(total))
        except RuntimeError:  # the widget is gone (viewer closed): nobody to tell
            pass

    @Slot(object, object)
    def _deliver(self, done: int, total: int) -> None:
        self._callback(done, total)


def bar_updater(pbar: progress) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback that moves a napari progress bar (main thread)."""

    def update(done: int, total: int) -> None:
        if total and pbar.total != total:
            pbar.total = total
        step = done - pbar.n
        if step:
            pbar.update(step)

    return update


def device_choices() -> list[tuple[str, str]]:
    """``(label, value)`` pairs: ``auto (<device>)``, ``cpu`` and each GPU by name."""
    import torch

    from ...engine import resolve_device

    def describe(dev: torch.device) -> str:
        if dev.type == "cuda":
            return f"cuda:{dev.index or 0} - {torch.cuda.get_device_name(dev.index or 0)}"
        if dev.type == "mps":
            return "mps - Apple GPU"
        return f"cpu, {os.cpu_count() or 1} cores"

    choices = [
        (f"auto ({describe(resolve_device('auto'))})", "auto"),
        (describe(torch.device("cpu")), "cpu"),
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            dev = torch.device("cuda", i)
            choices.append((describe(dev), f"cuda:{i}"))
    backend = getattr(torch.backends, "mps", None)
    if backend is not None and backend.is_available():
        choices.append(("mps - Apple GPU", "mps"))
    return choices


def is_cpu(device: str) -> bool:
    """True when ``device`` resolves to the CPU."""
    from ...engine import resolve_device

    try:
        return resolve_device(device).type == "cpu"
    except Exception:  # noqa: BLE001 - an unavailable device is reported when used
        return False


def model_choices() -> list[tuple[str, Any]]:
    """``(label, alias)`` for every pretrained model, with where its weights are."""
    from ...models import list_models

    labels = {"downloadable": "download 48 MB once", "unavailable": "offline: not available"}
    out = []
    for info in list_models():
        status = labels.get(info.status, info.status)
        out.append((f"{info.alias} ({info.ndim}D, {status})", info.alias))
    return out


def pretrained_ndim(alias: object) -> int | None:
    """2 or 3 for a pretrained model's alias; None for anything else (a file, a custom name)."""
    from ...models import list_models

    try:
        return next((int(i.ndim) for i in list_models() if i.alias == alias), None)
    except Exception:  # noqa: BLE001 - unknown: the run says what does not fit
        return None


def shutdown_quietly(widget: Any) -> None:
    """Call ``widget.shutdown()`` from Qt's ``destroyed`` signal.

    The signal may arrive while Python is collecting the widget, when some of
    its attributes are already gone: there is then nothing left to stop.
    """
    try:
        widget.shutdown()
    except (AttributeError, RuntimeError):
        pass
