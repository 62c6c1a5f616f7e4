"""The worker side of a batch: loaded models, device pinning, and the work of one item.

Each worker process keeps the loaded networks in a module-level cache keyed by the
model specs and the device, so every model is loaded once per worker, not once per
micrograph. :func:`setup_worker` (run by the Dask worker plugin of :mod:`.cluster`)
sets torch's threads and, on local clusters, gives each worker a GPU of its own.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any, TypedDict

from ..errors import CryoDenoiseError, InputError
from ..io.completeness import output_is_complete
from ..options import FileOptions

__all__ = [
    "NOT_RETRYABLE",
    "ItemFailed",
    "ItemFn",
    "Outcome",
    "as_settings",
    "denoise_item",
    "get_models",
    "process_item",
    "setup_worker",
]

#: A function that denoises one input into one output, run on a worker:
#: ``item_fn(in_path, out_path, models, settings)``. ``models`` is the list of
#: loaded networks; ``settings`` is passed through (with a generic CUDA
#: ``device`` pinned to the worker's GPU). It raises to fail the attempt.
ItemFn = Callable[[Path, Path, list, Any], Any]

#: Errors that mean "this input can never work": reported at once, not retried.
NOT_RETRYABLE: tuple[type[BaseException], ...] = (InputError, FileNotFoundError, IsADirectoryError)


class Outcome(TypedDict, total=False):
    """What one attempt at one item returns to the driver."""

    ok: bool
    reason: str
    seconds: float
    worker: str
    retry: bool


#: Device this worker process was pinned to by the setup plugin (None: leave settings alone).
_WORKER_DEVICE: str | None = None


def get_models(model_specs: Sequence[Any], device: str | None = None) -> list:
    """Load (once per process) and return the networks named by ``model_specs``.

    The networks come from the one process-wide model cache
    (:func:`napari_cryodenoise.models.cache.shared_cache`), which the engine and the
    widgets use too, so a worker loads each model once, not once per micrograph.

    Parameters
    ----------
    model_specs : sequence
        Aliases (``"unet"``), checkpoint paths, or already built modules (used as given).
    device : str, optional
        Unused: the engine moves the weights to the device itself (kept for callers).

    Raises
    ------
    InputError, WeightsUnavailableError
        For an unknown model or unavailable weights.

    """
    from ..engine import load_models

    return load_models(list(model_specs))


def clear_models() -> None:
    """Forget the loaded networks (a worker shutting down)."""
    from ..models.cache import shared_cache

    shared_cache().clear()


def __getattr__(name: str) -> Any:
    if name == "_LOAD_COUNT":  # models this process loaded (read by the tests)
        from ..models.cache import shared_cache

        return shared_cache().loads
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def settings_device(settings: Any) -> Any:
    """The ``device`` of settings given as options, a dict of their fields, or None."""
    if isinstance(settings, dict):
        return settings.get("device")
    return getattr(settings, "device", None)


def _pin_device(settings: Any, device: str) -> Any:
    """Copy ``settings`` with a generic CUDA device ("auto", "cuda", "gpu") set to ``device``."""
    current = settings_device(settings)
    if current not in (None, "auto", "cuda", "gpu"):
        return settings
    if isinstance(settings, dict):
        return {**settings, "device": device}
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        return dataclasses.replace(settings, device=device)
    if hasattr(settings, "__dict__") and hasattr(settings, "device"):
        clone = type(settings).__new__(type(settings))
        clone.__dict__.update(vars(settings), device=device)
        return clone
    return settings


class ItemFailed(CryoDenoiseError):
    """One micrograph failed in a way that may succeed on another try (reported as is)."""


def as_settings(settings: FileOptions | dict[str, Any] | None) -> FileOptions:
    """Options from None (defaults), a dict of their fields, or options (as given)."""
    if settings is None:
        return FileOptions()
    if isinstance(settings, dict):
        return FileOptions(**settings)
    return settings


def denoise_item(
    in_path: Path, out_path: Path, models: list, settings: Any, *, labels: Sequence[str] = ()
) -> None:
    """Default per-micrograph function: :func:`napari_cryodenoise.pipeline.denoise_file`.

    The driver has already decided that this output must be (re)written, so an
    existing (incomplete) file is overwritten. ``labels`` are extra MRC header labels
    (``cryodenoise watch`` records the model in them). Raises
    :class:`~napari_cryodenoise.errors.InputError` for a failure of the input
    (unreadable, NaN pixels, too small to bin: not retried) and :class:`ItemFailed`
    for any other failure (retried).
    """
    from ..io import read_image
    from ..pipeline import denoise_file

    read_image(in_path)  # header check: a bad input is not worth retrying
    settings = dataclasses.replace(as_settings(settings), overwrite=True, skip_existing=False)
    models_3d = models if models and int(models[0].ndim) == 3 else None
    result = denoise_file(in_path, out_path, models, settings, models_3d=models_3d, labels=labels)
    if result.status != "done":
        message = result.message or f"{in_path}: {result.status}"
        raise InputError(message) if result.input_error else ItemFailed(message)


def process_item(
    in_path: Path,
    out_path: Path,
    model_specs: Sequence[Any],
    settings: Any,
    item_fn: ItemFn | None,
) -> Outcome:
    """Run on a worker: denoise one micrograph; raise on errors worth retrying."""
    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if _WORKER_DEVICE is not None:
        settings = _pin_device(settings, _WORKER_DEVICE)
    try:
        models = get_models(model_specs, settings_device(settings))
        (item_fn or denoise_item)(Path(in_path), Path(out_path), models, settings)
    except NOT_RETRYABLE as err:
        return {
            "ok": False,
            "reason": describe(err),
            "seconds": time.perf_counter() - start,
            "worker": worker,
        }
    if not output_is_complete(out_path):
        raise RuntimeError(f"{out_path}: no complete output file after denoising")
    return {"ok": True, "reason": "", "seconds": time.perf_counter() - start, "worker": worker}


def describe(err: BaseException) -> str:
    """One line for a failed attempt (the error, or what a Dask failure means)."""
    name = type(err).__name__
    if isinstance(err, CryoDenoiseError) and str(err).strip():
        return str(err).strip().splitlines()[0]  # written for users: no class name
    if isinstance(err, CancelledError):
        return "cancelled (lost the connection to the scheduler?)"
    if name == "KilledWorker":
        return "the worker process died every time it ran this micrograph (out of memory? crash?)"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{name}: {text}" if text else name


def setup_worker(worker_name: Any, threads: int | None, pin_gpu: bool) -> None:
    """Once per worker process: torch threads, and (local clusters) a GPU of its own.

    A local worker also ignores Ctrl-C (SIGINT): the terminal sends it to the whole
    process group, and the command that started the workers stops them itself.
    """
    global _WORKER_DEVICE
    import signal
    import threading

    import torch

    if pin_gpu and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    if threads:
        torch.set_num_threads(int(threads))
    if pin_gpu and torch.cuda.is_available():
        count = torch.cuda.device_count()
        try:
            index = int(worker_name) % count
        except (TypeError, ValueError):
            index = 0
        torch.cuda.set_device(index)
        _WORKER_DEVICE = f"cuda:{index}"
