"""Checks ``cryodenoise denoise`` makes before any work.

* :func:`guard_denoise`: every output (one per input, and the STAR list) through the one
  output guard, against every input (images, STAR lists, model files);
* :func:`refuse_existing`: without ``--skip-existing`` or ``--overwrite``, existing outputs
  stop the run at once, with nothing written.

The per-file refusals (binned size, a 2D model chosen for a volume) are the pipeline's:
:mod:`napari_cryodenoise.pipeline.plan`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from ..options import FileOptions

__all__ = ["guard_denoise", "refuse_existing"]


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
    CLIError
        ``--out-star`` does not end in ``.star``.

    """
    from ..pipeline import output_path
    from ._common import check_folder, check_out_star, guard_outputs

    check_folder("-o", outdir)
    pairs = [(path, output_path(path, outdir, fmt)) for path in inputs]
    outputs: list[tuple[str, str | os.PathLike]] = [
        (f"-o {outdir} (output of {_shown(p)})", o) for p, o in pairs
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
    check_out_star(args.out_star)
    return pairs


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it, else as it is.

    Inputs with one name in two folders must be told apart in the output guard's line.
    """
    relative = os.path.relpath(os.path.abspath(path))
    return str(path) if relative.startswith("..") else relative


def refuse_existing(pairs: Sequence[tuple[Path, Path]], settings: FileOptions) -> None:
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
