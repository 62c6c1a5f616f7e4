"""The outputs of a batch: their checks, their leftovers, their STAR list.

* :func:`check_items`: items whose output is an input or another item's output;
* :func:`output_is_complete` (:mod:`napari_cryodenoise.io.completeness`): whether an
  output is whole, so that a rerun resumes;
* :func:`remove_partials`: temporary files of killed writers
  (:func:`napari_cryodenoise.io.atomic.partial_files`, plus an older naming);
* :func:`part_path`, :func:`remove_parts`: the hidden part files of a split item;
* :func:`write_output_star`: the RELION STAR list of the outputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..io.completeness import output_is_complete

__all__ = [
    "check_items",
    "output_is_complete",
    "part_path",
    "remove_partials",
    "remove_parts",
    "write_output_star",
]


def check_items(
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


def _partials(output: Path) -> list[Path]:
    """Leftover temporary files of an output from a killed writer.

    Those of :func:`napari_cryodenoise.io.atomic.partial_files` (``.NAME.TAG.partialSUFFIX``,
    which also matches the older MRC writer's ``.NAME.PID.partial``), plus the older
    TIFF/PNG writer's ``.STEM.PID.partialSUFFIX`` left by earlier versions.
    """
    from ..io.atomic import partial_files

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
    from ..io.atomic import remove_partials as remove_new

    removed = remove_new(outputs)
    for out in outputs:
        for tmp in _partials(Path(out)):  # only the old-style names are left now
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def part_path(out_path: Path, index: int, count: int) -> Path:
    """Hidden MRC file next to ``out_path`` for planes group ``index`` of ``count``."""
    return out_path.with_name(f".{out_path.name}.part{index + 1:04d}of{count:04d}.mrc")


def remove_parts(out_path: Path) -> None:
    """Delete the part files of ``out_path`` (after joining them)."""
    for stale in out_path.parent.glob(f".{out_path.name}.part*of*.mrc"):
        stale.unlink(missing_ok=True)


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
    from ..io.star_micrographs import OutputStarPlan

    outputs = [Path(o) for o in outputs]
    sources = [Path(i) for i in inputs] if inputs is not None else outputs
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return (plan or OutputStarPlan()).write(path, list(zip(sources, outputs, strict=True)), log)
