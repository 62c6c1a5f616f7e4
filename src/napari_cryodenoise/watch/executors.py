"""Where a watch denoises: in this process, one file at a time, or on Dask workers.

Both run :func:`napari_cryodenoise.pipeline.denoise_file` on each file with the same
options as ``cryodenoise denoise`` (so the pixels are the same), plus header labels
naming the model. :class:`LocalExecutor` runs a file as it is submitted;
:class:`DaskExecutor` submits it as a future (as :func:`napari_cryodenoise.batch.run_batch`
does, with the same worker set-up) and hands results back as they finish.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import CryoDenoiseError
from ..options import FileOptions

__all__ = ["DaskExecutor", "Done", "Item", "LocalExecutor"]


@dataclass(frozen=True)
class Item:
    """One micrograph to denoise.

    ``sig`` is the input's ``(size, mtime_ns)`` when it was taken (recorded with the
    output, so that a replaced input is denoised again).
    """

    inp: Path
    out: Path
    redo: bool = False
    sig: tuple[int, int] | None = None


@dataclass
class Done:
    """What became of an item: ``ok``, the reason it failed, seconds, the model label."""

    item: Item
    ok: bool
    reason: str
    seconds: float
    model: str


def _forced(settings: FileOptions) -> FileOptions:
    """The watch decides what to redo: every submitted output is (re)written."""
    return dataclasses.replace(settings, overwrite=True, skip_existing=False)


class LocalExecutor:
    """Denoise in this process, one file at a time (Ctrl-C interrupts the current one)."""

    capacity = 1

    def __init__(self, settings: FileOptions) -> None:
        self.settings = _forced(settings)
        self._done: list[Done] = []
        self.running: list[Item] = []

    @property
    def busy(self) -> int:
        """Items in flight."""
        return len(self.running)

    def submit(self, item: Item, specs: Sequence[str], model: str, labels: Sequence[str]) -> None:
        """Denoise ``item`` now with the models ``specs``."""
        from ..engine import load_models
        from ..pipeline import denoise_file

        start = time.perf_counter()
        self.running = [item]
        try:
            loaded = [load_models(spec)[0] for spec in specs]
            models_2d = [m for m in loaded if int(m.ndim) == 2]
            models_3d = [m for m in loaded if int(m.ndim) == 3] or None
            result = denoise_file(
                item.inp,
                item.out,
                models_2d or models_3d,
                self.settings,
                models_3d=models_3d,
                labels=labels,
            )
            ok, reason = result.status == "done", result.message
        except (CryoDenoiseError, OSError, ValueError, MemoryError) as err:  # model not loadable
            from ..messages import one_line

            ok, reason = False, one_line(err)
        finally:
            self.running = []
        self._done.append(Done(item, ok, reason, time.perf_counter() - start, model))

    def collect(self) -> list[Done]:
        """The items finished since the last call."""
        done, self._done = self._done, []
        return done

    def close(self) -> list[Item]:
        """Stop; return the items that were in flight (their outputs may have partial files)."""
        return list(self.running)


class DaskExecutor:
    """Submit files to Dask workers as they arrive (a local cluster or a scheduler)."""

    def __init__(
        self,
        settings: FileOptions,
        *,
        cluster: str | None = None,
        scheduler: str | None = None,
        threads: int | None = None,
        client: Any = None,
    ) -> None:
        from ..batch.cluster import gpu_resource, start_client

        self.settings = _forced(settings)
        self.local = None
        self.own = client is None
        if client is None:
            client, self.local, plugin = start_client(cluster, scheduler, threads)
            if plugin.threads or plugin.pin_gpu:
                client.register_plugin(plugin, name=plugin.name)
        self.client = client
        self.resources = gpu_resource(client)
        self.futures: dict[Any, tuple[Item, str, float]] = {}
        self._count = 0

    @property
    def capacity(self) -> int:
        """Items kept in flight: two per worker, so a model switch takes effect soon."""
        try:
            return max(2, 2 * len(self.client.nthreads()))
        except Exception:  # noqa: BLE001
            return 2

    @property
    def busy(self) -> int:
        """Items in flight."""
        return len(self.futures)

    @property
    def running(self) -> list[Item]:
        """The items in flight."""
        return [item for item, _, _ in self.futures.values()]

    def submit(self, item: Item, specs: Sequence[str], model: str, labels: Sequence[str]) -> None:
        """Submit ``item`` as a Dask task."""
        from ..batch.worker import denoise_item, process_item

        self._count += 1
        future = self.client.submit(
            process_item,
            str(item.inp),
            str(item.out),
            list(specs),
            self.settings,
            partial(denoise_item, labels=tuple(labels)),
            key=f"cryodenoise-watch-{os.getpid()}-{self._count}",
            pure=False,
            resources=self.resources,
        )
        self.futures[future] = (item, model, time.perf_counter())

    def collect(self) -> list[Done]:
        """The items whose tasks finished since the last call."""
        from ..batch.worker import describe

        done: list[Done] = []
        for future in [f for f in self.futures if f.done()]:
            item, model, start = self.futures.pop(future)
            if future.status == "finished":
                outcome = future.result()
                ok, reason = bool(outcome["ok"]), str(outcome.get("reason", ""))
                for name in ("InputError: ", "FileNotFoundError: ", "IsADirectoryError: "):
                    reason = reason.removeprefix(name)
            else:
                try:
                    err = future.exception()
                except BaseException as cancelled:  # noqa: BLE001
                    err = cancelled
                ok, reason = False, f"{item.inp}: {describe(err)}"
            future.release()
            done.append(Done(item, ok, reason, time.perf_counter() - start, model))
        return done

    def close(self) -> list[Item]:
        """Cancel what is in flight, close the client (and the local cluster)."""
        running = self.running
        try:
            if self.futures:
                self.client.cancel(list(self.futures))
        finally:
            self.futures.clear()
            if self.own:
                self.client.close()
                if self.local is not None:
                    self.local.close()
        return running
