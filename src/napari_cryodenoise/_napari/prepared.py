"""Inputs of the GUI's compute jobs: read-only views and prepared (binned) planes (no Qt)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from .settings import DenoiseSettings


def _engine():
    """The core's public engine API (imported lazily: torch is heavy)."""
    from .. import engine

    return engine


def read_only(data: Any) -> Any:
    """A read-only view of a numpy array (other array types are passed through)."""
    if isinstance(data, np.ndarray):
        view = data.view()
        view.flags.writeable = False
        return view
    return data


class Prepared:
    """An input plane (or volume) after binning and low-pass; its statistics on demand.

    The statistics (one pass over the image) are only needed by full-resolution
    tiles, so the coarse preview does not wait for them. Thread-safe.
    """

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self._stats: tuple[float, float] | None = None
        self._lock = threading.Lock()

    @property
    def stats(self) -> tuple[float, float]:
        """``(mean, std)`` of the whole prepared image, computed once."""
        with self._lock:
            if self._stats is None:
                self._stats = _engine().image_stats(self.image)
            return self._stats


class PreparedCache:
    """The last few prepared planes, shared by successive live workers (thread-safe)."""

    def __init__(self, max_items: int = 3) -> None:
        self._items: OrderedDict[tuple, Prepared] = OrderedDict()
        self._lock = threading.Lock()
        self.max_items = max_items

    def get(self, key: tuple, make: Callable[[], Prepared]) -> Prepared:
        """Return the cached value for ``key`` or compute it with ``make()``."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value


def prepare(image: Any, settings: DenoiseSettings) -> Prepared:
    """Bin and low-pass a 2D image or 3D volume (the engine's step 1), with its statistics.

    The statistics are those of the whole prepared image: every tile is
    normalised with them, which is what makes tiles equal whole-image inference.
    Without binning or low-pass a memory map stays a memory map.
    """
    engine = _engine()
    data = engine.prepare_image(
        image, bin_factor=int(settings.bin_factor), lowpass=settings.lowpass_factor
    )
    return Prepared(read_only(data))
