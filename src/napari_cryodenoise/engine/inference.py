"""Denoise images, stacks and volumes with one or more networks, seamlessly tiled.

The inference contract is Topaz's (see ``shared/docs/topaz-reference.md``):

1. optional Fourier binning (``bin_factor``) and hard Fourier low-pass
   (``lowpass``), both keeping the result float32;
2. normalise by the whole image's mean and standard deviation (float64
   accumulators, streamed over memory maps);
3. optional Gaussian pre-filter (``gaussian``, sigma in pixels, zero padding);
4. run every model, average the outputs in normalised units;
5. map back with ``std * y + mean`` (or keep standardised, ``normalize=True``);
6. with binning, optionally Fourier-pad back to the input size (``restore_size``).

Steps 3-5 run on windows planned by :mod:`.tiling`, so the result equals
whole-image inference (to float rounding) whatever the tile size; the output
is written window by window into one preallocated float32 array.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..binning import resolve_bin
from ..errors import Cancelled, CryoDenoiseError, ImageTooSmallError, InputError
from ..types import CancelFn, ProgressFn
from .device import (
    available_memory,
    empty_cache,
    is_out_of_memory,
    resolve_device,
    resolve_precision,
    set_threads,
)
from .fastunet import UNetPlan
from .filters import (
    bin_shape,
    fourier_lowpass,
    fourier_resize,
    gaussian_filter_torch,
    gaussian_radius,
)
from .tiling import Tile, ceil_to, choose_core, group_by_shape, plan_tiles

log = logging.getLogger(__name__)

__all__ = [
    "DenoiseOutOfMemoryError",
    "Runner",
    "denoise",
    "denoise_region",
    "denoise_stack",
    "denoise_volume",
    "get_runner",
    "image_stats",
    "load_models",
    "prepare_image",
]

ModelLike = "torch.nn.Module | str | os.PathLike"

#: Upper bound for the activation memory of one tile on the CPU (bytes), by number of
#: spatial dims; 1 GiB keeps a 4096^2 unet run of the whole CLI process under ~2 GB.
#: Override with the environment variable CRYODENOISE_MEMORY_LIMIT (e.g. "4G") or
#: ``memory_limit``.
DEFAULT_CPU_TILE_BYTES = {2: 1 << 30, 3: 4 << 30}
#: Smallest core (output pixels per axis) tried after out-of-memory retries.
MIN_CORE = 64


class DenoiseOutOfMemoryError(CryoDenoiseError, MemoryError):
    """Even the smallest tiles did not fit in memory."""


# --------------------------------------------------------------------------- models

_MODEL_CACHE: OrderedDict[str, torch.nn.Module] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def load_models(models: object) -> list[torch.nn.Module]:
    """Resolve a module, alias/path or a sequence of them to a list of modules.

    Aliases and paths are loaded with :func:`napari_cryodenoise.models.load_model`
    once per process and cached (eight entries).
    """
    if models is None:
        models = "unet"
    if isinstance(models, (str, os.PathLike, torch.nn.Module)):
        models = [models]
    result = []
    for item in models:
        if isinstance(item, torch.nn.Module):
            result.append(item)
            continue
        key = os.fspath(item)
        with _CACHE_LOCK:
            cached = _MODEL_CACHE.get(key)
        if cached is None:
            from ..models import load_model

            cached = load_model(key)
            with _CACHE_LOCK:
                _MODEL_CACHE[key] = cached
                while len(_MODEL_CACHE) > 8:
                    _MODEL_CACHE.popitem(last=False)
        result.append(cached)
    if not result:
        raise InputError("no model given")
    for m in result:
        for attr in ("ndim", "grid", "halo"):
            if not hasattr(m, attr):
                raise InputError(f"model {type(m).__name__} lacks the attribute {attr!r}")
    ndims = {int(m.ndim) for m in result}
    if len(ndims) != 1:
        raise InputError("cannot average 2D and 3D models")
    return result


# --------------------------------------------------------------------------- runner


def _parse_bytes(text: str) -> int:
    text = text.strip().upper().rstrip("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if text and text[-1] in scale:
        return int(float(text[:-1]) * scale[text[-1]])
    return int(float(text))


@dataclass
class _Executor:
    """One model prepared for a device and dtype."""

    fn: Callable[..., torch.Tensor]  # fn(x, keep, check=None)
    grid: int
    halo: int
    bytes_per_pixel: float  # window pixel, this dtype
    fixed_bytes: float
    name: str
    fast: bool


class Runner:
    """Models prepared for one device and precision, with their tiling geometry.

    Obtain one with :func:`get_runner` (cached); it is reused across calls, so
    repeated small-window calls (the live view) do not pay the set-up again.
    """

    def __init__(
        self,
        models: list[torch.nn.Module],
        device: torch.device,
        dtype: torch.dtype,
        *,
        fast: bool = True,
    ):
        self.models = models
        self.device = device
        self.dtype = dtype
        self.ndim = int(models[0].ndim)
        self.executors = [self._prepare(m, fast) for m in models]
        self.grid = math.lcm(*[e.grid for e in self.executors])
        self.halo = max(e.halo for e in self.executors)

    def _prepare(self, model: torch.nn.Module, fast: bool) -> _Executor:
        grid = max(1, int(model.grid))
        halo = max(0, int(model.halo))
        name = str(getattr(model, "name", type(model).__name__))
        itemsize = torch.finfo(self.dtype).bits // 8
        plan = UNetPlan.from_model(model) if fast and self.ndim == 2 else None
        if plan is not None:
            plan.to(self.device, self.dtype)
            return _Executor(plan, grid, halo, 36 * itemsize, 260 * itemsize * 544**2, name, True)
        module = model
        channels_last = False  # measured: no gain for generic modules, a loss for thin convs
        params = list(model.parameters())
        moved = bool(params) and (params[0].device != self.device or params[0].dtype != self.dtype)
        if moved or model.training:  # never change the caller's module
            module = copy.deepcopy(model).to(device=self.device, dtype=self.dtype).eval()

        def run(x: torch.Tensor, keep: tuple[slice, ...], check=None) -> torch.Tensor:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return module(x)[(Ellipsis, *keep)]

        per_pixel = (400 if self.ndim == 2 else 420) * itemsize
        return _Executor(run, grid, halo, per_pixel, 0.0, name, False)

    @property
    def bytes_per_pixel(self) -> float:
        """Activation bytes per window pixel (the largest of the models)."""
        return max(e.bytes_per_pixel for e in self.executors)

    @property
    def fixed_bytes(self) -> float:
        """Working memory that does not scale with the window."""
        return max(e.fixed_bytes for e in self.executors)

    @torch.inference_mode()
    def __call__(
        self, x: torch.Tensor, keep: tuple[slice, ...], check: Callable[[], None] | None = None
    ) -> torch.Tensor:
        """Average of every model's output over the ``keep`` part of window ``x``.

        ``check`` is called between models and sub-tiles (it may raise to cancel).
        """
        out = None
        for ex in self.executors:
            if check is not None:
                check()
            y = ex.fn(x, keep, check=check)
            y = y.float()
            out = y if out is None else out.add_(y)
        if len(self.executors) > 1:
            out /= len(self.executors)
        return out


_RUNNERS: OrderedDict[tuple, Runner] = OrderedDict()


def _fingerprint(model: torch.nn.Module) -> tuple:
    """Identity plus a cheap weights version (in-place updates, e.g. training, change it)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return (id(model), tuple((t.data_ptr(), t._version) for t in tensors))


def get_runner(
    models: object,
    device: str | torch.device = "auto",
    precision: str | torch.dtype = "fp32",
    *,
    fast: bool = True,
) -> Runner:
    """Return a cached :class:`Runner` for these models on this device and precision."""
    mods = load_models(models)
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    key = (tuple(_fingerprint(m) for m in mods), str(dev), dtype, fast)
    with _CACHE_LOCK:
        runner = _RUNNERS.get(key)
        if runner is not None and all(a is b for a, b in zip(runner.models, mods, strict=True)):
            _RUNNERS.move_to_end(key)
            return runner
    runner = Runner(mods, dev, dtype, fast=fast)
    with _CACHE_LOCK:
        _RUNNERS[key] = runner
        while len(_RUNNERS) > 4:
            _RUNNERS.popitem(last=False)
    return runner


# --------------------------------------------------------------------------- statistics


def image_stats(image: np.ndarray, *, block_bytes: int = 32 << 20) -> tuple[float, float]:
    """Mean and standard deviation in float64, streamed in blocks (memory maps stay maps).

    Raises
    ------
    InputError
        If the image is empty or holds NaN or infinite values.

    """
    arr = np.asarray(image) if not isinstance(image, np.ndarray) else image
    if arr.size == 0:
        raise ImageTooSmallError(f"empty image of shape {arr.shape}")
    flat_rows = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(1, -1)
    row_bytes = max(1, flat_rows.shape[1] * 8)
    step = max(1, block_bytes // row_bytes)
    total = 0.0
    n = arr.size
    floating = arr.dtype.kind in "fc"
    for i in range(0, flat_rows.shape[0], step):
        block = flat_rows[i : i + step]
        s = float(np.sum(block, dtype=np.float64))
        if floating and not math.isfinite(s):
            bad = int(np.count_nonzero(~np.isfinite(block)))
            if bad:
                raise InputError(
                    f"image contains {bad}+ NaN or infinite pixel(s) (first in rows {i}..); "
                    "fix or mask the input before denoising"
                )
            raise InputError("image values overflow float64 sums; rescale the input")
        total += s
    mean = total / n
    sq = 0.0
    for i in range(0, flat_rows.shape[0], step):
        block = np.asarray(flat_rows[i : i + step], dtype=np.float64)
        block -= mean
        sq += float(np.dot(block.ravel(), block.ravel()))
    std = math.sqrt(sq / n)
    return mean, std


# --------------------------------------------------------------------------- settings


@dataclass
class _Job:
    runner: Runner
    stats: tuple[float, float]
    normalize: bool
    gaussian: float
    patch_size: int | None
    padding: int | None
    batch_size: int | None
    memory_limit: int | None
    progress: ProgressFn | None
    cancel: CancelFn | None
    done: int = 0
    total: int = 0
    timings: dict = field(default_factory=dict)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("denoising cancelled")

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)


def _memory_budget(runner: Runner, memory_limit: int | None) -> float:
    if memory_limit is None:
        env = os.environ.get("CRYODENOISE_MEMORY_LIMIT")
        memory_limit = _parse_bytes(env) if env else None
    avail = available_memory(runner.device)
    if runner.device.type == "cuda":
        budget = 0.7 * avail
    else:
        budget = min(0.5 * avail, DEFAULT_CPU_TILE_BYTES[runner.ndim])
    if memory_limit is not None:
        budget = (
            min(budget, float(memory_limit))
            if runner.device.type == "cuda"
            else float(memory_limit)
        )
    return max(budget, 64 << 20)


def _geometry(job: _Job, shape: Sequence[int]) -> tuple[int, int, int]:
    """(core, halo, batch) for an image of this shape."""
    runner = job.runner
    grid = runner.grid
    budget = _memory_budget(runner, job.memory_limit) - runner.fixed_bytes
    max_pixels = max(budget, 16 << 20) / runner.bytes_per_pixel
    if job.padding is None:
        halo = ceil_to(runner.halo, grid)

        core_min = max(grid, 32)  # below this the halo would dominate the work

        def smallest_window(h: int) -> int:
            return math.prod(min(n, core_min + 2 * h) for n in shape)

        if smallest_window(halo) > max_pixels:
            exact = halo
            while halo > grid // 2 and smallest_window(halo) > max_pixels:
                halo -= max(1, grid // 4)
            log.warning(
                "the exact context of %d px per side does not fit in memory for %s; using %d "
                "(tiles may show faint seams). Set padding / memory_limit, or use a GPU.",
                exact,
                "x".join(map(str, shape)),
                halo,
            )
    else:
        halo = ceil_to(max(0, int(job.padding)), grid)
        if halo < runner.halo:
            log.warning(
                "padding %d < the models' receptive radius %d: tiles will show seams",
                job.padding,
                runner.halo,
            )
    if job.patch_size is not None and job.patch_size > 0:
        core = ceil_to(int(job.patch_size), grid)
        return max(grid, core), halo, max(1, job.batch_size or 1)
    core = choose_core(shape, grid=grid, halo=halo, max_window_pixels=max_pixels)
    batch = job.batch_size
    if batch is None:
        batch = 1
        if runner.device.type != "cpu":
            window = math.prod(min(n, core + 2 * halo) for n in shape)
            batch = max(1, min(16, int(max_pixels // max(window, 1))))
    return core, halo, max(1, int(batch))


# --------------------------------------------------------------------------- core loop


def _read_window(src: np.ndarray, tile: Tile, margin: int, stats: tuple[float, float]):
    """Normalised float32 window with ``margin`` extra pixels (zeros beyond the image)."""
    mean, std = stats
    if margin:
        sl, pads = [], []
        for s, n in zip(tile.window, src.shape, strict=True):
            a, b = s.start - margin, s.stop + margin
            sl.append(slice(max(a, 0), min(b, n)))
            pads.append((max(a, 0) - a, b - min(b, n)))
    else:
        sl, pads = list(tile.window), [(0, 0)] * src.ndim
    win = np.asarray(src[tuple(sl)], dtype=np.float32)
    win = (win - np.float32(mean)) * np.float32(1.0 / std)
    if any(p != (0, 0) for p in pads):
        win = np.pad(win, pads)
    return win


def _small_axes_pad(shape: Sequence[int], grid: int) -> list[int]:
    """Zeros to add at the far end of axes shorter than the grid (whole-axis windows)."""
    return [max(0, grid - n) for n in shape]


def _run_batch(
    job: _Job, src: np.ndarray, tiles: list[Tile], out: np.ndarray, origin: Sequence[int]
) -> None:
    runner = job.runner
    margin = gaussian_radius(job.gaussian)
    wins = [_read_window(src, t, margin, job.stats) for t in tiles]
    x = torch.from_numpy(np.stack(wins)[:, None])
    if margin:
        x = gaussian_filter_torch(x, job.gaussian)
        x = x[(Ellipsis, *[slice(margin, x.shape[2 + i] - margin) for i in range(src.ndim)])]
    small = _small_axes_pad(x.shape[2:], runner.grid)
    if any(small):
        pad = [p for extra in reversed(small) for p in (0, extra)]
        x = torch.nn.functional.pad(x, pad)
    x = x.to(device=runner.device, dtype=runner.dtype)
    y = runner(x, tiles[0].crop, check=job.check_cancel)
    y = y[:, 0].cpu().numpy() if y.device.type != "cpu" else y[:, 0].numpy()
    mean, std = job.stats
    for i, tile in enumerate(tiles):
        dst = tuple(slice(s.start - o, s.stop - o) for s, o in zip(tile.out, origin, strict=True))
        if job.normalize:
            out[dst] = y[i]
        else:
            np.multiply(y[i], np.float32(std), out=out[dst])
            out[dst] += np.float32(mean)


def _split_tile(tile: Tile, core: int, halo: int, grid: int, shape: Sequence[int]) -> list[Tile]:
    region = tile.out
    return plan_tiles(shape, grid=grid, halo=halo, core=core, region=region)


def _process(
    job: _Job, src: np.ndarray, region: Sequence[slice] | None, out: np.ndarray | None = None
) -> np.ndarray:
    """Denoise ``region`` of the (preprocessed) image ``src`` into ``out``."""
    runner = job.runner
    shape = src.shape
    if region is None:
        region = tuple(slice(0, n) for n in shape)
    region = tuple(slice(*s.indices(n)[:2]) for s, n in zip(region, shape, strict=True))
    if any(s.stop <= s.start for s in region):
        raise InputError(f"empty region {region} for an image of shape {shape}")
    origin = [s.start for s in region]
    out_shape = tuple(s.stop - s.start for s in region)
    if out is None:
        out = np.empty(out_shape, dtype=np.float32)
    core, halo, batch = _geometry(job, shape)
    tiles = plan_tiles(shape, grid=runner.grid, halo=halo, core=core, region=region)
    job.total += len(tiles)
    queue = deque((core, b) for b in group_by_shape_crop(tiles, batch))
    job.report()
    while queue:
        job.check_cancel()
        tile_core, batch_tiles = queue.popleft()
        try:
            _run_batch(job, src, batch_tiles, out, origin)
        except Exception as err:  # noqa: BLE001 - only out-of-memory is handled
            if not is_out_of_memory(err):
                raise
            empty_cache(runner.device)
            if len(batch_tiles) > 1:
                log.warning(
                    "out of memory with %d tiles per batch; retrying one by one", len(batch_tiles)
                )
                queue.extendleft((tile_core, [t]) for t in reversed(batch_tiles))
                continue
            smaller = max(runner.grid, ceil_to(tile_core // 2, runner.grid))
            if tile_core <= max(MIN_CORE, runner.grid) or smaller >= tile_core:
                raise DenoiseOutOfMemoryError(
                    f"out of memory on {runner.device} even with {tile_core}-pixel tiles "
                    f"(+{halo} halo); free memory, use --device cpu, --precision bf16, "
                    "or a smaller --padding"
                ) from err
            log.warning("out of memory with %d-pixel tiles; retrying with %d", tile_core, smaller)
            parts = _split_tile(batch_tiles[0], smaller, halo, runner.grid, shape)
            job.total += len(parts) - 1
            queue.extendleft((smaller, [p]) for p in reversed(parts))
            continue
        job.done += len(batch_tiles)
        job.report()
    return out


def group_by_shape_crop(tiles: Sequence[Tile], batch_size: int) -> list[list[Tile]]:
    """Batches of tiles sharing window shape and crop (so one ``keep`` serves all)."""
    groups: dict[tuple, list[Tile]] = {}
    for tile in tiles:
        key = (tile.shape, tuple((c.start, c.stop) for c in tile.crop))
        groups.setdefault(key, []).append(tile)
    out = []
    for members in groups.values():
        out.extend(group_by_shape(members, batch_size))
    return out


# --------------------------------------------------------------------------- preprocessing


def _as_array(image: object) -> np.ndarray:
    arr = image if isinstance(image, np.ndarray) else np.asarray(image)
    if arr.dtype.kind == "c":
        raise InputError("complex images are not supported")
    if arr.dtype.kind not in "fiub":
        raise InputError(f"unsupported pixel type {arr.dtype}")
    if arr.size == 0 or 0 in arr.shape:
        raise ImageTooSmallError(f"empty image of shape {arr.shape}")
    return arr


def prepare_image(
    image: np.ndarray, *, bin_factor: float = 1, lowpass: float | None = None
) -> np.ndarray:
    """Apply Fourier binning and the hard low-pass (steps 1 of the contract).

    Returns the input itself (no copy, memory maps stay maps) when neither is asked.
    """
    arr = _as_array(image)
    resample = bin_factor is not None and float(bin_factor) != 1.0
    filtering = lowpass is not None and lowpass > 1
    if (resample or filtering) and arr.dtype.kind == "f":
        image_stats(arr)  # raises a clear InputError on NaN/inf before the FFTs
    if resample:
        arr = fourier_resize(arr, bin_shape(arr.shape, float(bin_factor)))
    if filtering:
        arr = fourier_lowpass(arr, float(lowpass))
    return arr


def _make_job(
    models,
    *,
    device,
    precision,
    patch_size,
    padding,
    batch_size,
    normalize,
    gaussian,
    progress,
    cancel,
    memory_limit,
    threads,
    fast,
    stats=(0.0, 1.0),
) -> _Job:
    set_threads(threads)
    runner = get_runner(models, device, precision, fast=fast)
    if gaussian is not None and gaussian < 0:
        raise InputError(f"gaussian sigma must be >= 0, got {gaussian}")
    return _Job(
        runner,
        stats,
        bool(normalize),
        float(gaussian or 0.0),
        patch_size,
        padding,
        batch_size,
        memory_limit,
        progress,
        cancel,
    )


def _normalise_stats(stats: tuple[float, float]) -> tuple[float, float]:
    mean, std = float(stats[0]), float(stats[1])
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise InputError("image statistics are not finite")
    if std <= 0:
        std = 1.0  # constant image: avoid 0/0, the output is then model(0) + mean
    return mean, std


def _check_ndim(arr: np.ndarray, runner: Runner, what: str) -> np.ndarray:
    if arr.ndim == runner.ndim + 1 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != runner.ndim:
        hint = " (use denoise_stack for a stack of 2D images)" if arr.ndim == 3 else ""
        raise InputError(
            f"{what}: a {arr.ndim}D array of shape {arr.shape} does not suit "
            f"{runner.ndim}D models{hint}"
        )
    return arr


# --------------------------------------------------------------------------- public API


def denoise(
    image: np.ndarray,
    models: object = "unet",
    *,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    patch_size: int | None = None,
    padding: int | None = None,
    batch_size: int | None = None,
    normalize: bool = False,
    gaussian: float = 0.0,
    lowpass: float | None = None,
    bin_factor: float = 1,
    restore_size: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    memory_limit: int | None = None,
    threads: int | None = None,
    fast: bool = True,
    pixel_size: float | None = None,
    target_pixel_size: float | None = None,
) -> np.ndarray:
    """Denoise a 2D micrograph (2D models) or a volume (3D models).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` image or ``(D, H, W)`` volume, any real dtype; memory maps
        are read window by window and never copied whole.
    models : module, str, path or sequence of them
        Networks (or aliases/paths for :func:`napari_cryodenoise.models.load_model`);
        several are averaged in normalised units.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    precision : {"fp32", "bf16", "fp16"}
        Compute precision (fp16 falls back to bf16 on the CPU).
    patch_size : int, optional
        Output pixels per tile and axis (rounded up to the grid); default: the
        largest that fits the memory budget.
    padding : int, optional
        Context per tile side (rounded up to the grid); default: the models'
        receptive radius, which makes tiling exact.
    batch_size : int, optional
        Tiles per forward pass (default 1 on the CPU, from memory on GPUs).
    normalize : bool
        Return the result in normalised units instead of the input's.
    gaussian : float
        Gaussian pre-filter sigma in pixels (0: none).
    lowpass : float, optional
        Hard Fourier low-pass factor in pixels (Topaz ``--lowpass``).
    bin_factor : float
        Fourier binning factor (1: none; may be fractional).
    restore_size : bool
        With binning, Fourier-pad the result back to the input's shape.
    progress : callable, optional
        ``progress(done_tiles, total_tiles)``.
    cancel : callable, optional
        Returns True to stop; raises :class:`~napari_cryodenoise.errors.Cancelled`.
    memory_limit : int, optional
        Bytes of activations per tile (default: from free memory, at most 1 GiB on CPU).
    threads : int, optional
        Torch intra-op threads.
    fast : bool
        Use the lean U-Net evaluator for Topaz-topology U-Nets (same result).
    pixel_size, target_pixel_size : float, optional
        Input and wanted pixel size in Angstrom; together they set
        ``bin_factor = target_pixel_size / pixel_size``.

    Returns
    -------
    numpy.ndarray
        float32, the input's shape (or the binned shape without ``restore_size``).

    """
    arr = _as_array(image)
    job = _make_job(
        models,
        device=device,
        precision=precision,
        patch_size=patch_size,
        padding=padding,
        batch_size=batch_size,
        normalize=normalize,
        gaussian=gaussian,
        progress=progress,
        cancel=cancel,
        memory_limit=memory_limit,
        threads=threads,
        fast=fast,
    )
    arr = _check_ndim(arr, job.runner, "denoise")
    bin_factor = resolve_bin_factor(bin_factor, pixel_size, target_pixel_size)
    return _denoise_one(
        arr, job, bin_factor=bin_factor, lowpass=lowpass, restore_size=restore_size
    )


def resolve_bin_factor(
    bin_factor: float | str = 1,
    pixel_size: float | None = None,
    target_pixel_size: float | None = None,
) -> float:
    """``target_pixel_size / pixel_size`` when a target is given, ``"auto"``, else ``bin_factor``.

    The rule lives in :func:`napari_cryodenoise.binning.resolve_bin`.
    """
    return resolve_bin(bin_factor, pixel_size, target_pixel_size)


def _denoise_one(
    arr: np.ndarray,
    job: _Job,
    *,
    bin_factor: float,
    lowpass: float | None,
    restore_size: bool,
    out: np.ndarray | None = None,
) -> np.ndarray:
    t0 = time.perf_counter()
    src = prepare_image(arr, bin_factor=bin_factor, lowpass=lowpass)
    job.stats = _normalise_stats(image_stats(src))
    t1 = time.perf_counter()
    binned = src.shape != arr.shape
    direct_out = out if (out is not None and not (binned and restore_size)) else None
    result = _process(job, src, None, out=direct_out)
    t2 = time.perf_counter()
    if binned and restore_size:
        result = fourier_resize(result, arr.shape)
        if out is not None:
            out[...] = result
            result = out
    job.timings.update(prepare=t1 - t0, inference=t2 - t1, total=time.perf_counter() - t0)
    log.debug("denoise %s: %s", arr.shape, job.timings)
    return result


def denoise_stack(stack: np.ndarray, models: object = "unet", **kw) -> np.ndarray:
    """Denoise every 2D slice of a ``(N, H, W)`` stack independently (own statistics).

    Takes the keyword arguments of :func:`denoise`; ``progress`` counts tiles
    over the whole stack. Returns a float32 ``(N, H', W')`` array.
    """
    arr = _as_array(stack)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"denoise_stack: expected (N, H, W), got shape {arr.shape}")
    bin_factor = resolve_bin_factor(
        kw.pop("bin_factor", 1), kw.pop("pixel_size", None), kw.pop("target_pixel_size", None)
    )
    lowpass = kw.pop("lowpass", None)
    restore_size = kw.pop("restore_size", True)
    progress = kw.pop("progress", None)
    job = _make_job(
        models,
        device=kw.pop("device", "auto"),
        precision=kw.pop("precision", "fp32"),
        patch_size=kw.pop("patch_size", None),
        padding=kw.pop("padding", None),
        batch_size=kw.pop("batch_size", None),
        normalize=kw.pop("normalize", False),
        gaussian=kw.pop("gaussian", 0.0),
        progress=None,
        cancel=kw.pop("cancel", None),
        memory_limit=kw.pop("memory_limit", None),
        threads=kw.pop("threads", None),
        fast=kw.pop("fast", True),
    )
    if kw:
        raise TypeError(f"unexpected keyword arguments: {sorted(kw)}")
    if job.runner.ndim != 2:
        raise InputError("denoise_stack needs 2D models")
    n = arr.shape[0]
    out_plane = arr.shape[1:]
    if bin_factor != 1 and not restore_size:
        out_plane = bin_shape(arr.shape[1:], float(bin_factor))
    out = np.empty((n, *out_plane), dtype=np.float32)

    def slice_progress(done: int, total: int, i: int = 0) -> None:
        if progress is not None:
            progress(i * total + done, n * total)

    for i in range(n):
        job.done = job.total = 0
        job.progress = (lambda d, t, i=i: slice_progress(d, t, i)) if progress else None
        _denoise_one(
            arr[i],
            job,
            bin_factor=bin_factor,
            lowpass=lowpass,
            restore_size=restore_size,
            out=out[i],
        )
    return out


def denoise_volume(volume: np.ndarray, models: object = "unet-3d", **kw) -> np.ndarray:
    """Denoise a ``(D, H, W)`` volume with 3D models (seamless 3D tiling).

    Takes the keyword arguments of :func:`denoise`.
    """
    arr = _as_array(volume)
    if arr.ndim != 3:
        raise InputError(f"denoise_volume: expected (D, H, W), got shape {arr.shape}")
    return denoise(arr, models, **kw)


def denoise_region(
    image: np.ndarray,
    models: object = "unet",
    region: Sequence[slice] | None = None,
    *,
    stats: tuple[float, float] | None = None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    patch_size: int | None = None,
    padding: int | None = None,
    batch_size: int | None = None,
    normalize: bool = False,
    gaussian: float = 0.0,
    lowpass: float | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    memory_limit: int | None = None,
    threads: int | None = None,
    fast: bool = True,
) -> np.ndarray:
    """Exactly what :func:`denoise` gives in ``region``, computing only that window.

    Parameters
    ----------
    image : numpy.ndarray
        Whole image (or volume for 3D models); only the region plus the
        models' halo is read (memory maps stay maps).
    models
        As for :func:`denoise`.
    region : tuple of slice
        Window in image coordinates (step 1), e.g. ``(slice(0, 512), slice(256, 768))``.
    stats : (float, float), optional
        ``(mean, std)`` of the whole image (after ``lowpass``), e.g. from
        :func:`image_stats`; computed (one pass over the image) when None. Pass
        it for repeated calls.
    lowpass : float, optional
        Needs the whole image (Fourier filter): expensive for small windows.

    device, precision : str
        As for :func:`denoise`.
    patch_size, padding, batch_size : int, optional
        As for :func:`denoise` (tiles cover only the region and its context).
    normalize : bool
        Return normalised units.
    gaussian : float
        Gaussian pre-filter sigma (local: needs only a margin).
    progress, cancel : callable, optional
        As for :func:`denoise`.
    memory_limit, threads : int, optional
        As for :func:`denoise`.
    fast : bool
        As for :func:`denoise`. There is no binning here: call this on a
        binned image for a coarse preview.

    Returns
    -------
    numpy.ndarray
        float32, the region's shape.

    """
    arr = _as_array(image)
    job = _make_job(
        models,
        device=device,
        precision=precision,
        patch_size=patch_size,
        padding=padding,
        batch_size=batch_size,
        normalize=normalize,
        gaussian=gaussian,
        progress=progress,
        cancel=cancel,
        memory_limit=memory_limit,
        threads=threads,
        fast=fast,
    )
    arr = _check_ndim(arr, job.runner, "denoise_region")
    if region is None:
        region = tuple(slice(0, n) for n in arr.shape)
    if len(region) != arr.ndim:
        raise InputError(f"region {region} does not match an image of {arr.ndim} dimensions")
    src = prepare_image(arr, lowpass=lowpass)
    job.stats = _normalise_stats(image_stats(src) if stats is None else stats)
    return _process(job, src, tuple(region))
