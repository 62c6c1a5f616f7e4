"""Starting or joining a Dask cluster, and setting up its workers.

* :func:`parse_cluster`, :func:`default_local_workers`: ``--cluster local[:N]``;
* :func:`start_client`: a local cluster (one worker per GPU, or per two CPU cores) or a
  running scheduler (address or scheduler JSON file);
* :func:`worker_plugin`: the Dask worker plugin that sets torch's threads and pins local
  workers to GPUs (:func:`napari_cryodenoise.batch.worker.setup_worker`);
* :func:`gpu_resource`: ask for a ``GPU`` resource when the workers declare one.

Importing this module needs no Dask.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import CryoDenoiseError
from . import worker as _worker

__all__ = [
    "default_local_workers",
    "gpu_resource",
    "parse_cluster",
    "start_client",
    "worker_plugin",
]


def parse_cluster(spec: str) -> int | None:
    """Parse ``--cluster``: ``"local"`` (None: choose the worker count) or ``"local:N"``.

    Raises
    ------
    ValueError
        For anything else.

    """
    text = spec.strip().lower()
    if text == "local":
        return None
    if text.startswith("local:"):
        try:
            n = int(text[len("local:") :])
        except ValueError:
            n = 0
        if n >= 1:
            return n
    raise ValueError(f"--cluster {spec!r}: expected 'local' or 'local:N' with N >= 1")


def default_local_workers() -> int:
    """Workers for ``--cluster local``: one per GPU, else one per two CPU cores (at least 1)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count()
    except ImportError:  # pragma: no cover
        pass
    return max(1, _cpu_count() // 2)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def start_client(
    cluster: str | None, scheduler: str | None, threads: int | None
) -> tuple[Any, Any, Any]:
    """Connect to (or start) the cluster; return (client, local cluster or None, plugin)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:
        raise CryoDenoiseError(
            "--cluster/--scheduler need dask.distributed: "
            "pip install 'napari-cryodenoise[distributed]'"
        ) from err
    if cluster is not None:
        n = parse_cluster(cluster) or default_local_workers()
        per_worker = threads or max(1, _cpu_count() // n)
        # Ctrl-C reaches the whole process group: the worker processes ignore it (they
        # inherit SIG_IGN now, the plugin sets it again in restarted ones) and this
        # process stops them, instead of each printing a KeyboardInterrupt traceback
        with _sigint_ignored():
            local = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                memory_limit=0,
                dashboard_address=":0",
                silence_logs=logging.CRITICAL,
            )
        try:
            client = Client(local)
        except BaseException:
            local.close()
            raise
        return client, local, worker_plugin(per_worker, pin_gpu=True)
    assert scheduler is not None
    try:
        scheduler_file = Path(scheduler).expanduser()
        if scheduler.endswith(".json") and scheduler_file.is_file():
            client = Client(scheduler_file=str(scheduler_file), timeout="30s")
        else:
            client = Client(scheduler, timeout="30s")
    except (OSError, TimeoutError) as err:
        raise CryoDenoiseError(f"cannot reach the Dask scheduler at {scheduler} ({err})") from err
    return client, None, worker_plugin(threads, pin_gpu=False)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while local workers are spawned (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _make_plugin_class() -> type:
    """Build the worker plugin class on first use (importing this module needs no Dask)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class _WorkerSetup(WorkerPlugin):
        """Dask worker plugin: torch threads and GPU, once per worker process."""

        name = "napari-cryodenoise-setup"

        def __init__(self, threads: int | None, pin_gpu: bool) -> None:
            self.threads = threads
            self.pin_gpu = pin_gpu

        def setup(self, worker: Any) -> None:
            _worker.setup_worker(worker.name, self.threads, self.pin_gpu)

        def teardown(self, worker: Any) -> None:
            _worker.clear_models()

    # pickled by reference as napari_cryodenoise.batch.cluster._WorkerSetup (see __getattr__)
    _WorkerSetup.__qualname__ = "_WorkerSetup"
    _WorkerSetup.__module__ = __name__
    return _WorkerSetup


def __getattr__(name: str) -> Any:
    if name == "_WorkerSetup":
        cls = globals()["_WorkerSetup"] = _make_plugin_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def worker_plugin(threads: int | None, pin_gpu: bool) -> Any:
    """The worker plugin that sets torch ``threads`` and (``pin_gpu``) a GPU per worker."""
    cls = globals().get("_WorkerSetup") or __getattr__("_WorkerSetup")
    return cls(threads, pin_gpu)


def gpu_resource(client: Any) -> dict[str, float] | None:
    """``{"GPU": 1}`` when the connected workers declare a GPU resource, else None."""
    try:
        workers = client.scheduler_info().get("workers", {})
    except Exception:  # noqa: BLE001
        return None
    if any("GPU" in (w.get("resources") or {}) for w in workers.values()):
        return {"GPU": 1}
    return None
