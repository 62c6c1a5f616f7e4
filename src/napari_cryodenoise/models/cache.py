"""THE model cache: networks loaded once per process, shared by every caller.

A :class:`ModelCache` maps a model *spec* (an alias such as ``"unet"``, or a model file
path) plus a device and an optional precision to a loaded network, least recently used
first out. For a path the key holds the file's resolved location, modification time and
size, so a checkpoint rewritten in place (a training run saving over it) is loaded again
instead of served stale. Loading happens outside the cache's lock, under a per-key lock:
two threads asking for the same model load it once, different models load in parallel.

Use the process-wide instance::

    from napari_cryodenoise.models.cache import get_model, get_models, shared_cache

    net = get_model("unet")                              # cpu, float32, eval mode
    nets = get_models(["unet", "my.pt"], device="cuda:0")
    shared_cache().clear()

The engine (:func:`napari_cryodenoise.engine.load_models`) takes its networks from
:func:`shared_cache`. Batch workers and the napari widgets can switch to it by replacing
their own dictionaries with :func:`get_models` (device part of the key) and
``shared_cache().get(name, progress=..., cancel=...)`` (download progress) /
``shared_cache().peek(name)`` (is it loaded?).

Cached modules are shared: callers must not modify them in place (the engine never does;
it copies a module before moving it to another device or precision).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import torch
from torch import nn

from ..types import CancelFn, ProgressFn

__all__ = ["ModelCache", "ModelSpec", "get_model", "get_models", "model_key", "shared_cache"]

#: An alias (``"unet"``), a pretrained file name or a model file path.
ModelSpec = str | os.PathLike

#: ``loader(spec, progress=..., cancel=...)`` -> a cpu float32 module in eval mode.
Loader = Callable[..., nn.Module]

#: Entries kept by :func:`shared_cache`.
DEFAULT_SIZE = 8


def _default_loader(
    spec: ModelSpec, *, progress: ProgressFn | None = None, cancel: CancelFn | None = None
) -> nn.Module:
    from . import load_model

    return load_model(spec, progress=progress, cancel=cancel)


def _file_stamp(spec: ModelSpec) -> tuple[str, int, int] | None:
    """``(resolved path, mtime_ns, size)`` when ``spec`` names an existing file, else None."""
    path = Path(os.fspath(spec)).expanduser()
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    if not path.is_file():
        return None
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def model_key(
    spec: ModelSpec,
    device: str | torch.device = "cpu",
    precision: torch.dtype | None = None,
) -> tuple[Hashable, ...]:
    """The cache key of ``spec`` on ``device`` in ``precision``.

    A spec naming an existing file is keyed by the resolved path, its modification time
    (ns) and size; anything else (an alias) by its text.
    """
    stamp = _file_stamp(spec)
    ident: Hashable = ("file", *stamp) if stamp is not None else ("name", os.fspath(spec))
    return (ident, str(torch.device(device)), precision)


class ModelCache:
    """A thread-safe LRU cache of loaded networks.

    Parameters
    ----------
    maxsize : int
        Entries kept (least recently used dropped first); at least 1.
    loader : callable, optional
        ``loader(spec, progress=None, cancel=None)`` returning a cpu float32 module;
        default :func:`napari_cryodenoise.models.load_model`.

    """

    def __init__(self, maxsize: int = DEFAULT_SIZE, loader: Loader | None = None) -> None:
        self.maxsize = max(1, int(maxsize))
        self._loader = loader or _default_loader
        self._entries: OrderedDict[tuple, nn.Module] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}
        #: Number of loads done (misses), for tests and diagnostics.
        self.loads = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[tuple]:
        """The keys held, least recently used first."""
        with self._lock:
            return list(self._entries)

    def peek(
        self,
        spec: ModelSpec,
        device: str | torch.device = "cpu",
        precision: torch.dtype | None = None,
    ) -> nn.Module | None:
        """The cached network, or None (never loads; does not refresh its recency)."""
        key = model_key(spec, device, precision)
        with self._lock:
            return self._entries.get(key)

    def put(
        self,
        spec: ModelSpec,
        model: nn.Module,
        device: str | torch.device = "cpu",
        precision: torch.dtype | None = None,
    ) -> None:
        """Register an already built network under ``spec`` (custom nets, tests)."""
        key = model_key(spec, device, precision)
        with self._lock:
            self._entries[key] = model
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def get(
        self,
        spec: ModelSpec,
        device: str | torch.device = "cpu",
        precision: torch.dtype | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> nn.Module:
        """Return the network for ``spec`` on ``device``, loading it on a miss.

        Parameters
        ----------
        spec : str or path-like
            Alias, pretrained file name or model file.
        device : str or torch.device
            A concrete device (``"cpu"``, ``"cuda:0"``, ``"mps"``; resolve ``"auto"``
            with :func:`napari_cryodenoise.engine.resolve_device` first).
        precision : torch.dtype, optional
            Parameter dtype; None keeps the loaded float32.
        progress, cancel : callable, optional
            Passed to the loader (weights download).

        Raises
        ------
        InputError, WeightsUnavailableError
            From the loader, for an unknown model or unavailable weights.

        """
        key = model_key(spec, device, precision)
        with self._lock:
            model = self._entries.get(key)
            if model is not None:
                self._entries.move_to_end(key)
                return model
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:  # another thread may have loaded it meanwhile
                model = self._entries.get(key)
                if model is not None:
                    self._entries.move_to_end(key)
                    return model
            try:
                model = self._loader(spec, progress=progress, cancel=cancel)
                dev = torch.device(device)
                if dev.type != "cpu" or precision is not None:
                    model = model.to(device=dev, dtype=precision)
                with self._lock:
                    self.loads += 1
                    self._entries[key] = model
                    while len(self._entries) > self.maxsize:
                        self._entries.popitem(last=False)
            finally:
                with self._lock:
                    self._key_locks.pop(key, None)
        return model

    def get_models(
        self,
        specs: ModelSpec | Sequence[ModelSpec],
        device: str | torch.device = "cpu",
        precision: torch.dtype | None = None,
    ) -> list[nn.Module]:
        """:meth:`get` for each spec (one spec or a sequence), in order."""
        if isinstance(specs, (str, os.PathLike)):
            specs = [specs]
        return [self.get(s, device, precision) for s in specs]

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()


_SHARED = ModelCache(DEFAULT_SIZE)


def shared_cache() -> ModelCache:
    """The process-wide cache (engine, batch workers, widgets)."""
    return _SHARED


def get_model(
    spec: ModelSpec,
    device: str | torch.device = "cpu",
    precision: torch.dtype | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> nn.Module:
    """:meth:`ModelCache.get` on the :func:`shared_cache`."""
    return _SHARED.get(spec, device, precision, progress=progress, cancel=cancel)


def get_models(
    specs: ModelSpec | Sequence[ModelSpec],
    device: str | torch.device = "cpu",
    precision: torch.dtype | None = None,
) -> list[nn.Module]:
    """:meth:`ModelCache.get_models` on the :func:`shared_cache`."""
    return _SHARED.get_models(specs, device, precision)
