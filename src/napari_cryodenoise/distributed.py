"""Denoise many micrographs on a Dask cluster: resumable, retrying, one model load per worker.

The unit of work is one micrograph (one ``(input, output)`` pair); a very
large stack or volume is split into groups of planes, each a task writing a
hidden part file, and the parts are joined into the output when all are done
(:func:`plane_groups`). The driver
skips outputs that already exist and are complete, submits the rest as Dask
futures, retries failures, and reports a :class:`BatchSummary`. Workers read
their inputs and write their outputs themselves (a shared file system is
assumed), so only paths and small result records travel over the network.

Safety comes from the writers: every output is written to a hidden temporary
file next to its target, flushed to disk and renamed over it
(:func:`napari_cryodenoise.io.atomic.atomic_path`, used by
:func:`napari_cryodenoise.io.write_mrc` and the TIFF/PNG writers of ``cryodenoise
denoise``), so a file at an output path is always whole. A killed worker leaves at
most a ``.NAME.TAG.partialSUFFIX`` file, which the run removes; its micrograph is
rescheduled by Dask on another worker. :func:`output_is_complete` also checks the
header against the file size, so a truncated file written by any other tool is redone
rather than trusted.

Each worker process keeps the loaded networks in a module-level cache keyed by
the model specs and the device, so every model is loaded once per worker, not
once per micrograph. With GPUs, each local worker gets its own device
(round-robin over the visible GPUs); remote workers use the GPU their job was
given (``CUDA_VISIBLE_DEVICES``) and, when the workers declare a ``GPU``
resource (``dask worker --resources GPU=1``), every task asks for one.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import CryoDenoiseError, InputError

__all__ = [
    "BatchSummary",
    "ItemResult",
    "StderrProgress",
    "denoise_item",
    "output_is_complete",
    "parse_cluster",
    "plane_groups",
    "run_batch",
]

Status = Literal["done", "skipped", "failed"]

#: A function that denoises one input into one output, run on a worker:
#: ``item_fn(in_path, out_path, models, settings)``. ``models`` is the list of
#: loaded networks; ``settings`` is passed through (with a generic CUDA
#: ``device`` pinned to the worker's GPU). It raises to fail the attempt.
ItemFn = Callable[[Path, Path, list, Any], Any]

#: Errors that mean "this input can never work": reported at once, not retried.
NOT_RETRYABLE: tuple[type[BaseException], ...] = (InputError, FileNotFoundError, IsADirectoryError)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ItemResult:
    """What happened to one micrograph.

    Attributes
    ----------
    input, output : pathlib.Path
        The pair.
    status : {"done", "skipped", "failed"}
        ``skipped``: a complete output was already there.
    reason : str
        Why it failed (the last attempt's error), or "" otherwise.
    attempts : int
        Tries made in this run (0 for skipped items). Dask's own re-runs after a
        worker died are not counted here.
    seconds : float
        Wall time of the successful (or last) attempt on its worker.
    worker : str
        ``host:pid`` of the process that did the work.

    """

    input: Path
    output: Path
    status: Status
    reason: str = ""
    attempts: int = 0
    seconds: float = 0.0
    worker: str = ""


@dataclass
class BatchSummary:
    """Outcome of :func:`run_batch`, in input order.

    Attributes
    ----------
    results : list of ItemResult
    elapsed : float
        Wall time of the run in seconds (cluster start-up included).
    workers : int
        Workers that were connected when the work was submitted (0 in-process).
    out_star : pathlib.Path or None
        The STAR list written, if any.

    """

    results: list[ItemResult] = field(default_factory=list)
    elapsed: float = 0.0
    workers: int = 0
    out_star: Path | None = None

    def _with(self, status: Status) -> list[ItemResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[ItemResult]:
        """Items denoised in this run."""
        return self._with("done")

    @property
    def skipped(self) -> list[ItemResult]:
        """Items whose complete output already existed."""
        return self._with("skipped")

    @property
    def failed(self) -> list[ItemResult]:
        """Items that failed after all retries."""
        return self._with("failed")

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    @property
    def outputs(self) -> list[Path]:
        """Outputs that exist and are complete after the run (done + skipped), in input order."""
        return [r.output for r in self.results if r.status != "failed"]

    def format(self) -> str:
        """Report counts and throughput, then one line per failure."""
        n_done = len(self.done)
        rate = 60.0 * n_done / self.elapsed if self.elapsed > 0 and n_done else 0.0
        lines = [
            f"{n_done} done, {len(self.skipped)} skipped (already complete), "
            f"{len(self.failed)} failed, in {self.elapsed:.1f} s"
            + (f" ({rate:.1f} micrographs/min)" if n_done else "")
        ]
        lines += [f"  FAILED {r.input}: {r.reason}" for r in self.failed]
        if self.out_star is not None:
            lines.append(f"  list of denoised micrographs: {self.out_star}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- progress


class StderrProgress:
    """A one-line progress bar on stderr, with the ``progress(done, total)`` signature.

    On a terminal the line is redrawn in place; otherwise (logs, SLURM output) a
    line is printed at most every ``interval`` seconds and at the end.

    Parameters
    ----------
    label : str
        Text before the bar.
    stream : file, optional
        Defaults to ``sys.stderr``.
    width : int
        Bar width in characters.
    interval : float
        Minimum seconds between lines when the stream is not a terminal.

    """

    def __init__(
        self,
        label: str = "denoise",
        *,
        stream: Any = None,
        width: int = 30,
        interval: float = 10.0,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self._start = time.monotonic()
        self._last = -float("inf")
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        """Draw the bar for ``done`` of ``total`` items."""
        with self._lock:
            now = time.monotonic()
            final = done >= total
            if not self._tty and not final and now - self._last < self.interval:
                return
            self._last = now
            frac = done / total if total else 1.0
            filled = int(round(self.width * frac))
            elapsed = now - self._start
            eta = ""
            if 0 < done < total:
                eta = f" eta {elapsed / done * (total - done):.0f} s"
            text = (
                f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{done}/{total} {elapsed:.0f} s{eta}"
            )
            end = "\n" if final or not self._tty else ""
            self.stream.write(("\r" + text + "\x1b[K" if self._tty else text) + end)
            self.stream.flush()

    def message(self, text: str) -> None:
        """Print a line (a retry, a failure) without breaking the bar."""
        with self._lock:
            prefix = "\r\x1b[K" if self._tty else ""
            self.stream.write(f"{prefix}{text}\n")
            self.stream.flush()


# --------------------------------------------------------------------------- completeness


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def output_is_complete(path: str | os.PathLike) -> bool:
    """Return True if ``path`` is an output file whose data is all there.

    Outputs are renamed into place only once fully written, so this guards
    against files from elsewhere (an interrupted copy, another tool), cheaply,
    without reading the pixels: an MRC file needs a valid header and at least as
    many bytes as it describes; a TIFF file every strip/tile inside the file; a
    PNG file its end chunk.
    """
    path = Path(path)
    try:
        if not path.is_file():
            return False
        suffix = path.suffix.lower()
        if suffix in (".tif", ".tiff"):
            return _tiff_complete(path)
        if suffix == ".png":
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - len(_PNG_END)))
                return fh.read() == _PNG_END
        return _mrc_complete(path)
    except (InputError, OSError, ValueError):
        return False


def _mrc_complete(path: Path) -> bool:
    import numpy as np

    from .io.mrc import SUPPORTED_MODES, read_mrc_header

    with open(path, "rb") as fh:
        raw = fh.read(1024)
    if len(raw) < 1024:
        return False
    size = path.stat().st_size
    # first a size check from the raw words (fast, even for junk), then a full header check
    for order in "<>":
        nx, ny, nz, mode = (int(v) for v in np.frombuffer(raw, f"{order}i4", count=4))
        ext = int(np.frombuffer(raw, f"{order}i4", count=1, offset=92)[0])
        if min(nx, ny, nz) > 0 and mode in SUPPORTED_MODES and ext >= 0:
            itemsize = np.dtype(SUPPORTED_MODES[mode]).itemsize
            if size < 1024 + ext + nx * ny * nz * itemsize:
                return False
            read_mrc_header(path)  # raises InputError if it is not a valid MRC header
            return True
    return False


def _tiff_complete(path: Path) -> bool:
    import tifffile

    size = path.stat().st_size
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.pages:
                return False
            for page in tif.pages:
                ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)]
                if not ends or max(ends) > size:
                    return False
    except Exception:  # noqa: BLE001 - tifffile raises many kinds for broken files
        return False
    return True


def _partials(output: Path) -> list[Path]:
    """Leftover temporary files of an output from a killed writer.

    Those of :func:`napari_cryodenoise.io.atomic.partial_files` (``.NAME.TAG.partialSUFFIX``,
    which also matches the older MRC writer's ``.NAME.PID.partial``), plus the older
    TIFF/PNG writer's ``.STEM.PID.partialSUFFIX`` left by earlier versions.
    """
    from .io.atomic import partial_files

    output = Path(output)
    found = partial_files(output)
    try:
        old = output.parent.glob(f".{_glob_escape(output.stem)}.*.partial{output.suffix}")
        found += [p for p in old if p not in found]
    except OSError:
        pass
    return found


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def remove_partials(outputs: Sequence[Path]) -> int:
    """Delete leftover temporary files of ``outputs``; return how many were removed.

    Only call this when no writer of these outputs is running.
    """
    from .io.atomic import remove_partials as remove_new

    removed = remove_new(outputs)
    for out in outputs:
        for tmp in _partials(Path(out)):  # only the old-style names are left now
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass
    return removed


# --------------------------------------------------------------------------- worker side

#: Per-process cache of loaded networks: (model specs, device) -> list of modules.
_MODEL_CACHE: dict[tuple[tuple[str, ...], str], list] = {}
_MODEL_LOCK = threading.Lock()
#: Device this worker process was pinned to by the setup plugin (None: leave settings alone).
_WORKER_DEVICE: str | None = None
#: How many times this process loaded models (read by the tests through client.run).
_LOAD_COUNT = 0


def _spec_key(spec: Any) -> str:
    return os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else repr(spec)


def get_models(model_specs: Sequence[Any], device: str | None = None) -> list:
    """Load (once per process) and return the networks named by ``model_specs``.

    Parameters
    ----------
    model_specs : sequence
        Aliases (``"unet"``), checkpoint paths, or already built modules (used as given).
    device : str, optional
        Part of the cache key only (the engine moves the weights itself).

    Raises
    ------
    InputError, WeightsUnavailableError
        For an unknown model or unavailable weights.

    """
    global _LOAD_COUNT
    key = (tuple(_spec_key(s) for s in model_specs), str(device))
    with _MODEL_LOCK:
        models = _MODEL_CACHE.get(key)
        if models is None:
            from .engine import load_models

            models = load_models(list(model_specs))
            _MODEL_CACHE[key] = models
            _LOAD_COUNT += 1
        return models


def _settings_device(settings: Any) -> Any:
    if isinstance(settings, dict):
        return settings.get("device")
    return getattr(settings, "device", None)


def _pin_device(settings: Any, device: str) -> Any:
    """Copy ``settings`` with a generic CUDA device ("auto", "cuda", "gpu") set to ``device``."""
    current = _settings_device(settings)
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


def as_settings(settings: Any) -> Any:
    """``DenoiseSettings`` from None, a dict of its fields, or a ``DenoiseSettings``."""
    from .cli.denoise import DenoiseSettings

    if settings is None:
        return DenoiseSettings()
    if isinstance(settings, dict):
        return DenoiseSettings(**settings)
    return settings


def denoise_item(in_path: Path, out_path: Path, models: list, settings: Any) -> None:
    """Default per-micrograph function: :func:`napari_cryodenoise.cli.denoise.denoise_file`.

    The driver has already decided that this output must be (re)written, so an
    existing (incomplete) file is overwritten. Raises
    :class:`~napari_cryodenoise.errors.InputError` for an unreadable input (not
    retried) and :class:`ItemFailed` for any other failure (retried).
    """
    from .cli.denoise import denoise_file
    from .io import read_image

    read_image(in_path)  # header check: a bad input is not worth retrying
    settings = dataclasses.replace(as_settings(settings), overwrite=True, skip_existing=False)
    models_3d = models if models and int(models[0].ndim) == 3 else None
    result = denoise_file(in_path, out_path, models, settings, models_3d=models_3d)
    if result.status != "done":
        raise ItemFailed(result.message or f"{in_path}: {result.status}")


def _process_item(
    in_path: Path,
    out_path: Path,
    model_specs: Sequence[Any],
    settings: Any,
    item_fn: ItemFn | None,
) -> dict[str, Any]:
    """Run on a worker: denoise one micrograph; raise on errors worth retrying."""
    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if _WORKER_DEVICE is not None:
        settings = _pin_device(settings, _WORKER_DEVICE)
    try:
        models = get_models(model_specs, _settings_device(settings))
        (item_fn or denoise_item)(Path(in_path), Path(out_path), models, settings)
    except NOT_RETRYABLE as err:
        return {
            "ok": False,
            "reason": _describe(err),
            "seconds": time.perf_counter() - start,
            "worker": worker,
        }
    if not output_is_complete(out_path):
        raise RuntimeError(f"{out_path}: no complete output file after denoising")
    return {"ok": True, "reason": "", "seconds": time.perf_counter() - start, "worker": worker}


def _describe(err: BaseException) -> str:
    name = type(err).__name__
    if isinstance(err, ItemFailed):
        return str(err)
    if isinstance(err, CancelledError):
        return "cancelled (lost the connection to the scheduler?)"
    if name == "KilledWorker":
        return "the worker process died every time it ran this micrograph (out of memory? crash?)"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{name}: {text}" if text else name


def _setup_worker(worker_name: Any, threads: int | None, pin_gpu: bool) -> None:
    """Once per worker process: torch threads, and (local clusters) a GPU of its own."""
    global _WORKER_DEVICE
    import torch

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
            _setup_worker(worker.name, self.threads, self.pin_gpu)

        def teardown(self, worker: Any) -> None:
            _MODEL_CACHE.clear()

    # pickled by reference as napari_cryodenoise.distributed._WorkerSetup (see __getattr__)
    _WorkerSetup.__qualname__ = "_WorkerSetup"
    _WorkerSetup.__module__ = __name__
    return _WorkerSetup


def __getattr__(name: str) -> Any:
    if name == "_WorkerSetup":
        cls = globals()["_WorkerSetup"] = _make_plugin_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _plugin(threads: int | None, pin_gpu: bool) -> Any:
    cls = globals().get("_WorkerSetup") or __getattr__("_WorkerSetup")
    return cls(threads, pin_gpu)


# --------------------------------------------------------------------------- large inputs

#: Without ``planes_per_task``, stacks and volumes larger than this (as float32) are split.
SPLIT_BYTES = 2 << 30
#: ... into tasks of about this many bytes of planes.
GROUP_BYTES = 512 << 20


def plane_groups(
    in_path: str | os.PathLike,
    settings: Any,
    models: list,
    planes_per_task: int | None = None,
) -> list[tuple[int, int]] | None:
    """Plane ranges ``(z0, z1)`` to denoise as separate tasks, or None for one task.

    A stack denoised slice by slice splits anywhere; a volume denoised with 3D
    models splits into z slabs computed with the whole volume's statistics and
    the models' halo, so the joined result equals whole-file denoising. Inputs
    that need a whole-volume operation (binning, low-pass, Gaussian), 2D
    images and non-MRC output formats are one task.

    Parameters
    ----------
    in_path : path
        The input file (only its header is read here).
    settings : DenoiseSettings or dict
        The batch's settings.
    models : list
        Loaded networks (2D or 3D).
    planes_per_task : int, optional
        Planes per task; None: :data:`GROUP_BYTES` worth of planes, and only
        for inputs over :data:`SPLIT_BYTES`; 0: never split.

    """
    from .cli.denoise import splittable_planes
    from .io import read_image

    if planes_per_task == 0:
        return None
    data, _ = read_image(in_path)
    if data.ndim != 3:
        return None
    n, plane = int(data.shape[0]), 4 * int(data.shape[1]) * int(data.shape[2])
    if planes_per_task is None:
        if n * plane <= SPLIT_BYTES:
            return None
        planes_per_task = max(1, GROUP_BYTES // plane)
    if planes_per_task >= n:
        return None
    models_3d = models if models and int(models[0].ndim) == 3 else None
    if not splittable_planes(in_path, as_settings(settings), models, models_3d):
        return None
    return [(z, min(n, z + planes_per_task)) for z in range(0, n, planes_per_task)]


def part_path(out_path: Path, index: int, count: int) -> Path:
    """Hidden MRC file next to ``out_path`` for planes group ``index`` of ``count``."""
    return out_path.with_name(f".{out_path.name}.part{index + 1:04d}of{count:04d}.mrc")


def _remove_parts(out_path: Path) -> None:
    for stale in out_path.parent.glob(f".{out_path.name}.part*of*.mrc"):
        stale.unlink(missing_ok=True)


def denoise_part(
    in_path: Path, out_path: Path, models: list, settings: Any, *, planes: tuple[int, int]
) -> None:
    """Task function for one group of planes (see :func:`plane_groups`)."""
    from .cli.denoise import denoise_planes

    models_3d = models if models and int(models[0].ndim) == 3 else None
    denoise_planes(in_path, out_path, models, as_settings(settings), planes, models_3d=models_3d)


@dataclass
class _Tasks:
    """The work of a batch: one task per item, or one per planes group of a large item."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    fns: list[ItemFn | None] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)
    results: dict[int, ItemResult] = field(default_factory=dict)
    #: item index -> its part files, for items split into groups of planes
    parts: dict[int, list[Path]] = field(default_factory=dict)

    @classmethod
    def plan(cls, pairs, todo, item_fn, settings, models, planes_per_task) -> _Tasks:
        tasks = cls()
        for index in todo:
            inp, out = pairs[index]
            try:
                groups = plane_groups(inp, settings, models, planes_per_task)
            except (CryoDenoiseError, OSError, ValueError):
                groups = None  # the whole-file task reports the problem
            if groups is None:
                tasks._add(index, inp, out, item_fn)
                continue
            tasks.parts[index] = [part_path(out, k, len(groups)) for k in range(len(groups))]
            for planes, part in zip(groups, tasks.parts[index], strict=True):
                tasks._add(index, inp, part, functools.partial(denoise_part, planes=planes))
        return tasks

    def _add(self, owner: int, inp: Path, out: Path, fn: ItemFn | None) -> None:
        self.todo.append(len(self.pairs))
        self.pairs.append((inp, out))
        self.fns.append(fn)
        self.owner.append(owner)

    def skip_complete_parts(self, overwrite: bool) -> None:
        """Resume: parts finished by an interrupted run are not redone."""
        if overwrite:
            return
        for t in list(self.todo):
            inp, out = self.pairs[t]
            if self.owner[t] in self.parts and output_is_complete(out):
                self.results[t] = ItemResult(inp, out, "skipped")
                self.todo.remove(t)

    def finish(self, pairs, results: dict[int, ItemResult], say: Callable[[str], None]) -> None:
        """Item results from task results; join the parts of split items."""
        from .io import concatenate_mrc, read_image

        for t, index in enumerate(self.owner):
            if index not in self.parts:
                results[index] = self.results[t]
        for index, parts in self.parts.items():
            inp, out = pairs[index]
            mine = [self.results[t] for t, o in enumerate(self.owner) if o == index]
            failed = [r for r in mine if r.status == "failed"]
            attempts = max(r.attempts for r in mine)
            seconds = sum(r.seconds for r in mine)
            worker = f"{len(parts)} tasks"
            if not failed:
                try:
                    concatenate_mrc(
                        parts,
                        out,
                        kind=read_image(inp)[1].kind,
                        labels=("denoised with napari-cryodenoise",),
                        protect=[inp],
                    )
                    _remove_parts(out)
                except (CryoDenoiseError, OSError, ValueError) as err:
                    failed = [ItemResult(inp, out, "failed", f"joining the parts: {err}")]
            if failed:
                first = failed[0]
                reason = (
                    first.reason if first.output == out else f"{first.output.name}: {first.reason}"
                )
                results[index] = ItemResult(inp, out, "failed", reason, attempts, seconds, worker)
                say(f"failed {inp}: {results[index].reason}")
            else:
                results[index] = ItemResult(inp, out, "done", "", attempts, seconds, worker)


# --------------------------------------------------------------------------- driver side


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


def _start_client(
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
        return client, local, _plugin(per_worker, pin_gpu=True)
    assert scheduler is not None
    try:
        scheduler_file = Path(scheduler).expanduser()
        if scheduler.endswith(".json") and scheduler_file.is_file():
            client = Client(scheduler_file=str(scheduler_file), timeout="30s")
        else:
            client = Client(scheduler, timeout="30s")
    except (OSError, TimeoutError) as err:
        raise CryoDenoiseError(f"cannot reach the Dask scheduler at {scheduler} ({err})") from err
    return client, None, _plugin(threads, pin_gpu=False)


def _check_items(
    items: Sequence[tuple[Any, Any]],
) -> tuple[list[tuple[Path, Path]], dict[int, str]]:
    """Return the pairs as paths, and the items that must not run (index -> reason)."""
    pairs = [(Path(i), Path(o)) for i, o in items]
    inputs = {os.path.abspath(i) for i, _ in pairs}
    writer: dict[str, Path] = {}
    bad: dict[int, str] = {}
    for index, (inp, out) in enumerate(pairs):
        key = os.path.abspath(out)
        if key in inputs:
            bad[index] = f"{inp}: output {out} would overwrite an input file"
        elif key in writer:
            bad[index] = f"{inp}: {writer[key]} is also written to {out}; rename one of them"
        else:
            writer[key] = inp
    return pairs, bad


def write_output_star(
    path: str | os.PathLike,
    outputs: Sequence[Path],
    *,
    inputs: Sequence[Path] | None = None,
    plan: Any = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Write the RELION STAR of the denoised micrographs, atomically.

    Parameters
    ----------
    path : path
        The STAR file to write.
    outputs : sequence of Path
        The outputs to list, in input order.
    inputs : sequence of Path, optional
        The input of each output (to find its row in STAR inputs and its pixel size).
    plan : OutputStarPlan, optional
        STAR inputs and RELION settings
        (:class:`napari_cryodenoise.io.star_micrographs.OutputStarPlan`); default: a
        new RELION 3.1+ STAR with paths relative to the working directory.
    log : callable, optional
        Receives one line per note (e.g. columns that could not be carried over).

    """
    from .io.star_micrographs import OutputStarPlan

    outputs = [Path(o) for o in outputs]
    sources = [Path(i) for i in inputs] if inputs is not None else outputs
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return (plan or OutputStarPlan()).write(path, list(zip(sources, outputs, strict=True)), log)


def run_batch(
    items: Sequence[tuple[str | os.PathLike, str | os.PathLike]],
    model_specs: Sequence[Any],
    settings: Any = None,
    *,
    cluster: str | None = None,
    scheduler: str | None = None,
    retries: int = 2,
    overwrite: bool = False,
    threads_per_worker: int | None = None,
    out_star: str | os.PathLike | None = None,
    star_plan: Any = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    item_fn: ItemFn | None = None,
    client: Any = None,
    planes_per_task: int | None = None,
) -> BatchSummary:
    """Denoise many micrographs, on a Dask cluster or in this process; resumable.

    Parameters
    ----------
    items : sequence of (input, output) paths
        One task per pair. An item whose output is another item's output or any
        item's input is reported as failed and not run.
    model_specs : sequence
        Model aliases or checkpoint paths (loaded once per worker) or modules.
    settings : DenoiseSettings or dict, optional
        Engine and output options (:class:`napari_cryodenoise.cli.denoise.DenoiseSettings`,
        or a dict of its fields); passed to ``item_fn``, so it must pickle. A
        generic ``device`` ("auto", "cuda") is pinned to each local worker's GPU.
    cluster : str, optional
        ``"local"`` or ``"local:N"``: start a local cluster of N worker processes
        (default one per GPU, else one per two CPU cores), closed at the end.
    scheduler : str, optional
        ``tcp://HOST:PORT`` of a running scheduler, or a scheduler JSON file.
    retries : int
        Extra attempts for an item whose attempt raised (input errors are not retried).
    overwrite : bool
        Redo items whose output is already complete (default: skip them).
    threads_per_worker : int, optional
        Torch threads per worker (local default: CPU cores / workers).
    out_star : path, optional
        Write a RELION STAR list of the complete outputs (done and skipped) here.
    star_plan : OutputStarPlan, optional
        The STAR inputs and RELION settings of that list (:func:`write_output_star`).
    progress : callable, optional
        ``progress(finished, total)`` after every item, skipped ones included.
    log : callable, optional
        Receives one line per retry and per final failure.
    item_fn : callable, optional
        ``item_fn(in_path, out_path, models, settings)``, importable on the
        workers; default :func:`denoise_item`.
    client : dask.distributed.Client, optional
        Use this client (tests, notebooks) instead of ``cluster``/``scheduler``.
    planes_per_task : int, optional
        Split stacks and volumes into tasks of this many planes (z slices),
        joined into the output when all are done (:func:`plane_groups`); 0 never
        splits. Default: split only inputs over :data:`SPLIT_BYTES`. Only with the
        default ``item_fn``.

    Returns
    -------
    BatchSummary

    Raises
    ------
    ValueError
        If both ``cluster`` and ``scheduler`` are given, or ``cluster`` is malformed.
    InputError
        If a model is unknown.
    WeightsUnavailableError
        If pretrained weights can be neither found nor downloaded.
    CryoDenoiseError
        If the scheduler cannot be reached.

    """
    start = time.monotonic()
    if cluster is not None and scheduler is not None:
        raise ValueError("give either --cluster or --scheduler, not both")
    if cluster is not None:
        parse_cluster(cluster)
    pairs, bad = _check_items(items)
    say = log or (lambda text: None)
    # load once here: a bad model name fails now, not once per micrograph, and pretrained
    # weights are downloaded by one process rather than raced for by every worker
    models = get_models(model_specs, _settings_device(settings))
    results: dict[int, ItemResult] = {}
    todo: list[int] = []
    for index, (inp, out) in enumerate(pairs):
        if index in bad:
            results[index] = ItemResult(inp, out, "failed", bad[index])
            say(f"failed {inp}: {bad[index]}")
        elif not overwrite and output_is_complete(out):
            results[index] = ItemResult(inp, out, "skipped")
        else:
            todo.append(index)
    total = len(pairs)
    planes = planes_per_task if item_fn is None else 0  # custom item functions take whole files
    tasks = _Tasks.plan(pairs, todo, item_fn, settings, models, planes)
    tasks.skip_complete_parts(overwrite)
    remove_partials([out for _, out in tasks.pairs])
    units = len(results) + len(tasks.pairs)

    def report() -> None:
        if progress is not None:
            progress(len(results) + len(tasks.results), units)

    report()
    summary = BatchSummary()
    if tasks.todo:
        distributed = client is not None or cluster is not None or scheduler is not None
        run = (tasks.pairs, tasks.todo, model_specs, settings, tasks.results, retries)
        if distributed:
            summary.workers = _run_dask(
                *run,
                cluster,
                scheduler,
                threads_per_worker,
                tasks.fns,
                client,
                report,
                say,
            )
        else:
            _run_here(*run, tasks.fns, report, say)
        remove_partials([out for _, out in tasks.pairs])
    tasks.finish(pairs, results, say)
    summary.results = [results[i] for i in range(total)]
    if out_star is not None:
        from .io.star_micrographs import listed_outputs

        results_ok = [(r.input, r.output, r.status != "failed") for r in summary.results]
        listed = listed_outputs(results_ok, output_is_complete)
        summary.out_star = write_output_star(
            out_star,
            [o for _, o in listed],
            inputs=[i for i, _ in listed],
            plan=star_plan,
            log=say,
        )
    summary.elapsed = time.monotonic() - start
    return summary


def _record(
    results: dict[int, ItemResult],
    pairs: list[tuple[Path, Path]],
    index: int,
    outcome: dict[str, Any],
    attempts: int,
) -> ItemResult:
    inp, out = pairs[index]
    status: Status = "done" if outcome["ok"] else "failed"
    result = ItemResult(
        inp, out, status, outcome["reason"], attempts, outcome["seconds"], outcome["worker"]
    )
    results[index] = result
    return result


def _run_here(pairs, todo, model_specs, settings, results, retries, item_fns, report, say) -> None:
    """Run the items in this process: same retries and reporting, no Dask."""
    for index in todo:
        inp, _ = pairs[index]
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = _process_item(*pairs[index], model_specs, settings, item_fns[index])
            except Exception as err:  # noqa: BLE001 - every failure is reported per item
                outcome = {
                    "ok": False,
                    "reason": _describe(err),
                    "seconds": 0.0,
                    "worker": f"{socket.gethostname()}:{os.getpid()}",
                    "retry": True,
                }
            if outcome["ok"] or not outcome.get("retry") or attempt > retries:
                break
            say(f"retrying {inp} (attempt {attempt + 1}/{retries + 1}): {outcome['reason']}")
        result = _record(results, pairs, index, outcome, attempt)
        if result.status == "failed":
            say(f"failed {inp}: {result.reason}")
        report()


def _gpu_resource(client: Any) -> dict[str, float] | None:
    """``{"GPU": 1}`` when the connected workers declare a GPU resource, else None."""
    try:
        workers = client.scheduler_info().get("workers", {})
    except Exception:  # noqa: BLE001
        return None
    if any("GPU" in (w.get("resources") or {}) for w in workers.values()):
        return {"GPU": 1}
    return None


def _run_dask(
    pairs,
    todo,
    model_specs,
    settings,
    results,
    retries,
    cluster,
    scheduler,
    threads,
    item_fns,
    client,
    report,
    say,
) -> int:
    """Submit every pending item as a future; resubmit failures; fill ``results``."""
    from dask.distributed import as_completed

    local = None
    own_client = client is None
    if own_client:
        client, local, plugin = _start_client(cluster, scheduler, threads)
    else:
        plugin = _plugin(threads, pin_gpu=False)
    if not plugin.threads and not plugin.pin_gpu:
        plugin = None
    futures: dict[Any, tuple[int, int]] = {}
    try:
        if plugin is not None:
            client.register_plugin(plugin, name=plugin.name)
        n_workers = len(client.nthreads())
        if scheduler is not None and n_workers == 0:
            say("no workers connected yet; tasks wait for them")
        resources = _gpu_resource(client)
        start_ns = time.time_ns()

        def submit(index: int, attempt: int) -> Any:
            inp, out = pairs[index]
            future = client.submit(
                _process_item,
                inp,
                out,
                list(model_specs),
                settings,
                item_fns[index],
                key=f"cryodenoise-{attempt}-{index}-{os.getpid()}-{int(start_ns)}",
                pure=False,
                resources=resources,
            )
            futures[future] = (index, attempt)
            return future

        queue = as_completed([submit(i, 1) for i in todo])
        for future in queue:
            index, attempt = futures.pop(future)
            inp = pairs[index][0]
            if future.status == "finished":
                outcome = future.result()
            else:
                try:
                    err = future.exception()
                except (Exception, CancelledError) as cancelled:  # noqa: BLE001
                    err = cancelled
                outcome = {"ok": False, "reason": _describe(err), "seconds": 0.0, "worker": ""}
                # a KilledWorker already cost Dask's "allowed-failures" worker restarts
                if attempt <= retries and type(err).__name__ != "KilledWorker":
                    say(
                        f"retrying {inp} (attempt {attempt + 1}/{retries + 1}): "
                        f"{outcome['reason']}"
                    )
                    queue.add(submit(index, attempt + 1))
                    future.release()
                    continue
            future.release()
            result = _record(results, pairs, index, outcome, attempt)
            if result.status == "failed":
                say(f"failed {inp}: {result.reason}")
            report()
        return n_workers
    except BaseException:
        if futures:
            client.cancel(list(futures))
        raise
    finally:
        if own_client:
            client.close()
            if local is not None:
                local.close()
