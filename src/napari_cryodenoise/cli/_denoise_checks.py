"""Checks ``cryodenoise denoise`` makes before any work, and the per-file plan's refusals.

* :func:`guard_denoise`: every output (one per input, and the STAR list) through the one
  output guard, against every input (images, STAR lists, model files);
* :func:`refuse_existing`: without ``--skip-existing`` or ``--overwrite``, existing outputs
  stop the run at once, with nothing written;
* :func:`check_binned_size`, :func:`explicit_2d_on_volume`: per-file refusals of
  :func:`napari_cryodenoise.cli.denoise._plan`.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError

__all__ = [
    "MIN_BINNED_SIDE",
    "check_binned_size",
    "explicit_2d_on_volume",
    "guard_denoise",
    "refuse_existing",
]

#: Smallest side, in pixels, an image may have after ``--bin`` / ``--pixel-size``.
MIN_BINNED_SIDE = 16


def guard_denoise(
    args: argparse.Namespace,
    inputs: Sequence[Path],
    lists: Sequence[Path],
    outdir: Path,
    fmt: str,
    star: Path | None,
    models: Sequence[str],
) -> list[tuple[Path, Path]]:
    """Check ``-o``, every per-file output and the STAR list; return (input, output) pairs.

    Raises
    ------
    OutputPathError
        An output that would overwrite an input (image, STAR list, model file), another
        output, or a folder; or ``-o`` is a file or a symlink loop.

    """
    from ._common import check_folder, guard_outputs
    from .denoise import output_path

    check_folder("-o", outdir)
    pairs = [(path, output_path(path, outdir, fmt)) for path in inputs]
    outputs: list[tuple[str, str | os.PathLike]] = [
        (f"-o {outdir} (output of {p.name})", o) for p, o in pairs
    ]
    if star is not None:
        what = "--out-star"
        if args.out_star is None:
            what = "the default --out-star (choose one with --out-star PATH)"
        outputs.append((what, star))
    ins: list[tuple[str, str | os.PathLike]] = [("input", p) for p in inputs]
    ins += [("input list", p) for p in lists]
    ins += [("model", m) for m in models if os.path.isfile(m)]
    guard_outputs(args, outputs, ins)
    return pairs


def refuse_existing(pairs: Sequence[tuple[Path, Path]], settings) -> None:
    """Stop before any work when outputs exist and neither flag says what to do with them."""
    from . import CLIError

    if settings.overwrite or settings.skip_existing:
        return
    existing = [out for _, out in pairs if os.path.lexists(out)]
    if not existing:
        return
    shown = ", ".join(str(p) for p in existing[:3]) + (", ..." if len(existing) > 3 else "")
    raise CLIError(
        f"{len(existing)} of {len(pairs)} outputs already exist ({shown}); nothing was "
        "written: add --skip-existing to keep the complete ones and denoise the rest, or "
        "--overwrite to redo them"
    )


def check_binned_size(
    path: Path, shape: Sequence[int], factor: float, models: Sequence, settings
) -> None:
    """Refuse binning that leaves fewer than :data:`MIN_BINNED_SIDE` px along an axis.

    ``models`` is accepted for a future per-network minimum; the engine pads smaller
    images to the networks' grid itself.
    """
    from ..engine.filters import bin_shape

    need = MIN_BINNED_SIDE
    binned = bin_shape(tuple(int(n) for n in shape), float(factor))
    if min(binned) >= need:
        return
    largest = math.floor(min(shape) / need * 100) / 100
    option = (
        f"--pixel-size {settings.pixel_size:g} (binning by {factor:g})"
        if settings.pixel_size
        else f"--bin {factor:g}"
    )
    size = " x ".join(str(n) for n in shape[::-1])
    after = " x ".join(str(n) for n in binned[::-1])
    hint = f"bin by at most {largest:g}" if largest >= 1 else "do not bin it"
    raise InputError(
        f"{path}: {option} would shrink {size} px to {after} px; the result needs at least "
        f"{need} px per side ({hint})"
    )


def explicit_2d_on_volume(path: Path, models: Sequence) -> InputError:
    """The error for a chosen 2D model on a volume (the choice is never silently swapped)."""
    names = "+".join(str(getattr(m, "name", type(m).__name__)) for m in models)
    return InputError(
        f"{path} is a volume, and the chosen model {names} is 2D: add --stack to denoise it "
        "slice by slice with that model, or choose a 3D model (e.g. --model unet-3d)"
    )
