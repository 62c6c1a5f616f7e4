"""Seamless tiling on a model's grid.

A network with pooling is shift-equivariant only for shifts that are multiples
of its ``grid`` (32 for a 5-pool U-Net), and each output pixel depends on
input pixels at most ``halo`` away. A tile (a *window* of the input) therefore
reproduces whole-image inference exactly in its interior when

* the window starts on a multiple of ``grid`` (so every pooling level sees the
  same phase as in the whole image),
* the window's far edge is either a multiple of ``grid`` away from its start or
  the image's own far edge (so floor pooling and the upsampling back to the
  skip size see the same geometry as in the whole image), and
* only outputs at least ``halo`` pixels away from window edges that are *not*
  image edges are kept (the image's edges are true edges for both).

:func:`plan_axis` builds such windows along one axis, :func:`plan_tiles` their
product in 2D or 3D.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AxisSpan",
    "Tile",
    "ceil_to",
    "choose_core",
    "floor_to",
    "group_by_shape",
    "plan_axis",
    "plan_tiles",
]


def floor_to(value: int, step: int) -> int:
    """Largest multiple of ``step`` that is <= ``value``."""
    return (value // step) * step


def ceil_to(value: int, step: int) -> int:
    """Smallest multiple of ``step`` that is >= ``value``."""
    return -((-value) // step) * step


@dataclass(frozen=True)
class AxisSpan:
    """One window along an axis.

    ``[in_start, in_stop)`` is read from the input; ``[out_start, out_stop)``
    (inside it) is the part of the window's output that is kept.
    """

    in_start: int
    in_stop: int
    out_start: int
    out_stop: int

    @property
    def size(self) -> int:
        """Window length."""
        return self.in_stop - self.in_start

    @property
    def crop(self) -> slice:
        """Kept part in window coordinates."""
        return slice(self.out_start - self.in_start, self.out_stop - self.in_start)


@dataclass(frozen=True)
class Tile:
    """A window (``window``: slices into the input) and the output it yields (``out``)."""

    spans: tuple[AxisSpan, ...]

    @property
    def window(self) -> tuple[slice, ...]:
        """Input slices."""
        return tuple(slice(s.in_start, s.in_stop) for s in self.spans)

    @property
    def out(self) -> tuple[slice, ...]:
        """Output slices in image coordinates."""
        return tuple(slice(s.out_start, s.out_stop) for s in self.spans)

    @property
    def crop(self) -> tuple[slice, ...]:
        """Output slices in window coordinates."""
        return tuple(s.crop for s in self.spans)

    @property
    def shape(self) -> tuple[int, ...]:
        """Window shape."""
        return tuple(s.size for s in self.spans)

    @property
    def out_size(self) -> int:
        """Number of kept output pixels."""
        return math.prod(s.out_stop - s.out_start for s in self.spans)


def window_for(n: int, start: int, stop: int, *, grid: int, halo: int) -> AxisSpan:
    """Return the window yielding the exact output ``[start, stop)`` of an axis of length ``n``."""
    in_start = max(0, floor_to(start - halo, grid))
    in_stop = min(n, in_start + ceil_to(stop + halo - in_start, grid))
    return AxisSpan(in_start, in_stop, start, stop)


def plan_axis(
    n: int, *, grid: int, halo: int, core: int, lo: int = 0, hi: int | None = None
) -> list[AxisSpan]:
    """Windows that together yield the exact output ``[lo, hi)`` of an axis of length ``n``.

    Parameters
    ----------
    n : int
        Axis length of the image.
    grid : int
        Window starts are multiples of this.
    halo : int
        Context kept on each side of the output (>= the model's receptive radius).
    core : int
        Largest output length per window (rounded up to ``grid``).
    lo, hi : int
        Output range (default: the whole axis).

    """
    hi = n if hi is None else hi
    if not 0 <= lo < hi <= n:
        raise ValueError(f"bad output range [{lo}, {hi}) for an axis of length {n}")
    grid = max(1, int(grid))
    core = max(grid, ceil_to(int(core), grid))
    count = math.ceil((hi - lo) / core)
    step = ceil_to(math.ceil((hi - lo) / count), grid)
    # interior boundaries on the grid keep most windows the same shape (batchable)
    bounds = [lo]
    k = 1
    while (b := floor_to(lo + k * step, grid)) < hi:
        if b > bounds[-1]:
            bounds.append(b)
        k += 1
    bounds.append(hi)
    return [window_for(n, a, b, grid=grid, halo=halo) for a, b in itertools.pairwise(bounds)]


def plan_tiles(
    shape: Sequence[int],
    *,
    grid: int,
    halo: int,
    core: int | Sequence[int],
    region: Sequence[slice] | None = None,
) -> list[Tile]:
    """Product of :func:`plan_axis` over every axis (2D or 3D).

    Parameters
    ----------
    shape : sequence of int
        Image shape.
    grid, halo : int
        As in :func:`plan_axis`.
    core : int or sequence of int
        Largest output length per window along each axis.
    region : sequence of slice, optional
        Output region to cover (default: everything).

    """
    ndim = len(shape)
    cores = [int(core)] * ndim if isinstance(core, int) else [int(c) for c in core]
    if region is None:
        region = tuple(slice(0, n) for n in shape)
    axes = []
    for n, c, sl in zip(shape, cores, region, strict=True):
        lo, hi, step = sl.indices(n)
        if step != 1:
            raise ValueError("region slices must have step 1")
        axes.append(plan_axis(n, grid=grid, halo=halo, core=c, lo=lo, hi=hi))
    return [Tile(tuple(spans)) for spans in itertools.product(*axes)]


def group_by_shape(tiles: Sequence[Tile], batch_size: int) -> list[list[Tile]]:
    """Batches of at most ``batch_size`` tiles that share a window shape, in plan order."""
    groups: dict[tuple[int, ...], list[Tile]] = {}
    for tile in tiles:
        groups.setdefault(tile.shape, []).append(tile)
    batches = []
    for members in groups.values():
        for i in range(0, len(members), max(1, batch_size)):
            batches.append(members[i : i + max(1, batch_size)])
    return batches


def choose_core(shape: Sequence[int], *, grid: int, halo: int, max_window_pixels: float) -> int:
    """Largest core (multiple of ``grid``) whose window fits in ``max_window_pixels``.

    The window along each axis is ``core + 2 * halo`` (or the axis itself when
    shorter); never less than ``grid``.
    """

    def pixels(core: int) -> int:
        return math.prod(min(n, core + 2 * halo) for n in shape)

    lo, hi = 1, max(1, ceil_to(max(shape), grid) // grid)
    if pixels(hi * grid) <= max_window_pixels:
        return hi * grid
    while lo < hi:  # largest k with pixels(k * grid) <= budget
        mid = (lo + hi + 1) // 2
        if pixels(mid * grid) <= max_window_pixels:
            lo = mid
        else:
            hi = mid - 1
    return lo * grid
