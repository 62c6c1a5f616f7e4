"""The tile loop: normalise, filter, run and write back window by window, with OOM retry.

Steps 3-5 of the engine contract (Gaussian pre-filter, the models, mapping back) run on
windows planned by :mod:`.tiling` (optionally each through the 8-fold self-ensemble of
:mod:`.ensemble`), so the result equals whole-image inference (to float
rounding) whatever the tile size; the output is written window by window into one
preallocated float32 array. When a batch does not fit in memory it is retried tile by
tile, then with tiles of half the size, down to :data:`~.memory.MIN_CORE`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import Cancelled, CryoDenoiseError, InputError
from ..types import CancelFn, ProgressFn
from .device import empty_cache, is_out_of_memory
from .ensemble import ensemble_forward, ensemble_pad
from .filters import gaussian_filter_torch, gaussian_radius
from .memory import MIN_CORE, tile_geometry
from .options import EngineOptions
from .runner import Runner
from .tiling import Tile, ceil_to, group_by_shape, plan_tiles

log = logging.getLogger(__name__)

__all__ = ["DenoiseOutOfMemoryError", "TiledRun", "group_by_shape_crop", "process"]


class DenoiseOutOfMemoryError(CryoDenoiseError, MemoryError):
    """Even the smallest tiles did not fit in memory."""


@dataclass
class TiledRun:
    """One call's state: the runner, options, statistics, callbacks and progress counts."""

    runner: Runner
    options: EngineOptions
    stats: tuple[float, float] = (0.0, 1.0)
    progress: ProgressFn | None = None
    cancel: CancelFn | None = None
    done: int = 0
    total: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def check_cancel(self) -> None:
        """Raise :class:`~napari_cryodenoise.errors.Cancelled` when ``cancel()`` says so."""
        if self.cancel is not None and self.cancel():
            raise Cancelled("denoising cancelled")

    def report(self) -> None:
        """Call ``progress(done, total)``."""
        if self.progress is not None:
            self.progress(self.done, self.total)


def read_window(
    src: np.ndarray, tile: Tile, margin: int, stats: tuple[float, float]
) -> np.ndarray:
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


def small_axes_pad(shape: Sequence[int], grid: int) -> list[int]:
    """Zeros to add at the far end of axes shorter than the grid (whole-axis windows)."""
    return [max(0, grid - n) for n in shape]


def run_batch(
    job: TiledRun, src: np.ndarray, tiles: list[Tile], out: np.ndarray, origin: Sequence[int]
) -> None:
    """Denoise a batch of same-shape tiles of ``src`` into ``out`` (offset by ``origin``)."""
    runner = job.runner
    sigma = job.options.gaussian
    margin = gaussian_radius(sigma)
    wins = [read_window(src, t, margin, job.stats) for t in tiles]
    x = torch.from_numpy(np.stack(wins)[:, None])
    if margin:
        x = gaussian_filter_torch(x, sigma)
        x = x[(Ellipsis, *[slice(margin, x.shape[2 + i] - margin) for i in range(src.ndim)])]
    ensemble = job.options.ensemble
    small = (ensemble_pad if ensemble else small_axes_pad)(x.shape[2:], runner.grid)
    if any(small):
        pad = [p for extra in reversed(small) for p in (0, extra)]
        x = torch.nn.functional.pad(x, pad)
    x = x.to(device=runner.device, dtype=runner.dtype)
    if ensemble:
        y = ensemble_forward(runner, x, tiles[0].crop, check=job.check_cancel)
    else:
        y = runner(x, tiles[0].crop, check=job.check_cancel)
    y = y[:, 0].cpu().numpy() if y.device.type != "cpu" else y[:, 0].numpy()
    mean, std = job.stats
    for i, tile in enumerate(tiles):
        dst = tuple(slice(s.start - o, s.stop - o) for s, o in zip(tile.out, origin, strict=True))
        if job.options.normalize:
            out[dst] = y[i]
        else:
            np.multiply(y[i], np.float32(std), out=out[dst])
            out[dst] += np.float32(mean)


def split_tile(tile: Tile, core: int, halo: int, grid: int, shape: Sequence[int]) -> list[Tile]:
    """Tiles of ``core`` pixels covering ``tile``'s output."""
    return plan_tiles(shape, grid=grid, halo=halo, core=core, region=tile.out)


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


def process(
    job: TiledRun,
    src: np.ndarray,
    region: Sequence[slice] | None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Denoise ``region`` of the (preprocessed) image ``src`` into ``out``.

    Raises
    ------
    InputError
        For an empty region.
    DenoiseOutOfMemoryError
        When even the smallest tiles do not fit.
    Cancelled
        When ``job.cancel()`` returns True.

    """
    runner = job.runner
    opts = job.options
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
    # with the self-ensemble, windows at the far edges are padded to the grid
    geometry_shape = shape
    if opts.ensemble:
        pads = ensemble_pad(shape, runner.grid)
        geometry_shape = tuple(n + p for n, p in zip(shape, pads, strict=True))
    core, halo, batch = tile_geometry(
        runner,
        geometry_shape,
        patch_size=opts.patch_size,
        padding=opts.padding,
        batch_size=opts.batch_size,
        memory_limit=opts.memory_limit,
    )
    tiles = plan_tiles(shape, grid=runner.grid, halo=halo, core=core, region=region)
    job.total += len(tiles)
    queue = deque((core, b) for b in group_by_shape_crop(tiles, batch))
    job.report()
    while queue:
        job.check_cancel()
        tile_core, batch_tiles = queue.popleft()
        try:
            run_batch(job, src, batch_tiles, out, origin)
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
            parts = split_tile(batch_tiles[0], smaller, halo, runner.grid, shape)
            job.total += len(parts) - 1
            queue.extendleft((smaller, [p]) for p in reversed(parts))
            continue
        job.done += len(batch_tiles)
        job.report()
    return out
