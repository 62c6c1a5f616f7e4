"""Tile geometry from the memory available: core size, context (halo) and batch size."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

from .device import available_memory
from .runner import Runner
from .tiling import ceil_to, choose_core

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_CPU_TILE_BYTES", "MIN_CORE", "memory_budget", "parse_bytes", "tile_geometry"]

#: Upper bound for the activation memory of one tile on the CPU (bytes), by number of
#: spatial dims; 1 GiB keeps a 4096^2 unet run of the whole CLI process under ~2 GB.
#: Override with the environment variable CRYODENOISE_MEMORY_LIMIT (e.g. "4G") or
#: ``memory_limit``.
DEFAULT_CPU_TILE_BYTES = {2: 1 << 30, 3: 4 << 30}
#: Smallest core (output pixels per axis) tried after out-of-memory retries.
MIN_CORE = 64
#: Environment variable overriding the per-tile memory budget.
ENV_MEMORY_LIMIT = "CRYODENOISE_MEMORY_LIMIT"


def parse_bytes(text: str) -> int:
    """``"512M"``, ``"4G"``, ``"1.5GB"``, ``"1000"`` -> bytes."""
    text = text.strip().upper().rstrip("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if text and text[-1] in scale:
        return int(float(text[:-1]) * scale[text[-1]])
    return int(float(text))


def memory_budget(runner: Runner, memory_limit: int | None) -> float:
    """Bytes one tile's activations may take on the runner's device.

    GPUs: 70 % of the free memory (capped by ``memory_limit``). CPU: half the available
    memory, at most :data:`DEFAULT_CPU_TILE_BYTES`, or ``memory_limit`` when given
    (argument, else ``$CRYODENOISE_MEMORY_LIMIT``). Never below 64 MiB.
    """
    if memory_limit is None:
        env = os.environ.get(ENV_MEMORY_LIMIT)
        memory_limit = parse_bytes(env) if env else None
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


def tile_geometry(
    runner: Runner,
    shape: Sequence[int],
    *,
    patch_size: int | None = None,
    padding: int | None = None,
    batch_size: int | None = None,
    memory_limit: int | None = None,
) -> tuple[int, int, int]:
    """``(core, halo, batch)`` for an image of this shape.

    ``halo`` is the models' receptive radius rounded up to the grid (shrunk, with a
    warning, when even the smallest window would not fit) or ``padding``; ``core`` is
    ``patch_size`` or the largest that fits the budget; ``batch`` is ``batch_size`` or,
    on GPUs, as many windows as fit (at most 16).
    """
    grid = runner.grid
    budget = memory_budget(runner, memory_limit) - runner.fixed_bytes
    max_pixels = max(budget, 16 << 20) / runner.bytes_per_pixel
    if padding is None:
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
        halo = ceil_to(max(0, int(padding)), grid)
        if halo < runner.halo:
            log.warning(
                "padding %d < the models' receptive radius %d: tiles will show seams",
                padding,
                runner.halo,
            )
    if patch_size is not None and patch_size > 0:
        core = ceil_to(int(patch_size), grid)
        return max(grid, core), halo, max(1, batch_size or 1)
    core = choose_core(shape, grid=grid, halo=halo, max_window_pixels=max_pixels)
    batch = batch_size
    if batch is None:
        batch = 1
        if runner.device.type != "cpu":
            window = math.prod(min(n, core + 2 * halo) for n in shape)
            batch = max(1, min(16, int(max_pixels // max(window, 1))))
    return core, halo, max(1, int(batch))
