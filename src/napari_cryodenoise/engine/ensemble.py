"""Self-ensembling: average a network over the 8 dihedral transforms of each window.

The transforms are the 4 rotations by 90 degrees, with and without a mirror, of the
last two axes (the image plane; a volume's z axis is kept). Each transformed window
is run through the models, the output is transformed back, and the 8 outputs are
averaged: 8 forward passes, run one after another (the memory of one pass, plus one
output-sized accumulator), with a cancel check between them.

Seamless tiling survives because every window is first zero-padded (in normalised
units) at its far end to a multiple of the models' grid along the plane's axes
(:func:`ensemble_pad`). Windows start on the grid, and only a window that ends at the
image's far edge can have a length off the grid, so the padded windows are exactly the
windows of the image padded to a grid multiple; a mirror or rotation of that padded
image keeps every window on the pooling grid. The ensemble result of an image is
therefore defined on the padded image, and any tiling reproduces it (to float rounding,
like plain inference).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .tiling import ceil_to

__all__ = [
    "TRANSFORMS",
    "ensemble_forward",
    "ensemble_pad",
    "inverse",
    "transform",
    "transform_keep",
]

#: ``(mirror, quarter_turns)``: mirror the last axis first, then rotate by 90-degree steps.
TRANSFORMS: tuple[tuple[bool, int], ...] = tuple((m, k) for m in (False, True) for k in range(4))

#: ``runner(window, keep, check=None)`` -> output over ``keep`` (a :class:`~.runner.Runner`).
RunFn = Callable[..., torch.Tensor]


def ensemble_pad(shape: Sequence[int], grid: int) -> list[int]:
    """Zeros to add at the far end of each spatial axis (the last two: up to a grid multiple).

    Other axes (a volume's z) get only what an axis shorter than the grid needs, as in
    plain inference.
    """
    grid = max(1, int(grid))
    pads = [max(0, grid - int(n)) for n in shape]
    for axis in range(max(0, len(shape) - 2), len(shape)):
        pads[axis] = ceil_to(int(shape[axis]), grid) - int(shape[axis])
    return pads


def transform(x: torch.Tensor, mirror: bool, turns: int) -> torch.Tensor:
    """Mirror the last axis (if asked), then rotate the last two axes by ``turns`` x 90 deg."""
    if mirror:
        x = torch.flip(x, (-1,))
    if turns % 4:
        x = torch.rot90(x, turns, (-2, -1))
    return x


def inverse(y: torch.Tensor, mirror: bool, turns: int) -> torch.Tensor:
    """Undo :func:`transform`."""
    if turns % 4:
        y = torch.rot90(y, -turns, (-2, -1))
    if mirror:
        y = torch.flip(y, (-1,))
    return y


def transform_keep(
    keep: Sequence[slice], shape: Sequence[int], mirror: bool, turns: int
) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """Where the box ``keep`` of an array of ``shape`` lands under :func:`transform`.

    Returns the transformed box and the transformed shape (slices with explicit ends).
    """
    keep = [slice(*s.indices(int(n))[:2]) for s, n in zip(keep, shape, strict=True)]
    dims = [int(n) for n in shape]
    ys, xs = keep[-2], keep[-1]
    h, w = dims[-2], dims[-1]
    if mirror:
        xs = slice(w - xs.stop, w - xs.start)
    for _ in range(turns % 4):
        # torch.rot90(x, 1, (-2, -1)) is a mirror of the last axis, then a transpose
        ys, xs = slice(w - xs.stop, w - xs.start), ys
        h, w = w, h
    keep[-2:], dims[-2:] = [ys, xs], [h, w]
    return tuple(keep), tuple(dims)


@torch.inference_mode()
def ensemble_forward(
    run: RunFn,
    x: torch.Tensor,
    keep: Sequence[slice],
    check: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Mean over :data:`TRANSFORMS` of ``inverse(run(transform(x)))`` over ``keep``.

    Parameters
    ----------
    run : callable
        ``run(window, keep, check=None)``, e.g. a :class:`~.runner.Runner`.
    x : torch.Tensor
        ``(N, C, [D,] H, W)`` windows, already padded with :func:`ensemble_pad`.
    keep : sequence of slice
        The kept output box in window coordinates (one slice per spatial axis).
    check : callable, optional
        Called before every transform (may raise to cancel); also passed to ``run``.

    Returns
    -------
    torch.Tensor
        float32 ``(N, C_out, *box)``.

    """
    spatial = tuple(x.shape[2:])
    out: torch.Tensor | None = None
    for mirror, turns in TRANSFORMS:
        if check is not None:
            check()
        box, _ = transform_keep(keep, spatial, mirror, turns)
        y = run(transform(x, mirror, turns).contiguous(), box, check=check)
        y = inverse(y.float(), mirror, turns)
        if out is None:  # a copy: the output may be a view of the input (identity models)
            out = y.clone(memory_format=torch.contiguous_format)
        else:
            out.add_(y)
    assert out is not None
    return out.mul_(1.0 / len(TRANSFORMS))
