"""Where even/odd half sums come from: motion-correction naming and RELION STAR columns.

Conventions recognised:

* MotionCor2/MotionCor3 with ``-SplitSum 1`` write ``X_EVN.mrc`` and ``X_ODD.mrc``
  beside the full sum ``X.mrc`` (RELION 5's motion correction, asked to save
  images for denoising, writes the same names);
* ``X_even.mrc`` / ``X_odd.mrc`` (``cryodenoise train --save-pairs``, and
  many scripts); the tag is matched without regard to case;
* RELION STAR columns ``rlnMicrographNameEven`` / ``rlnMicrographNameOdd``
  (RELION 5 motion correction) and ``rlnTomoReconstructedTomogramHalf1`` /
  ``Half2`` (RELION 5 tomogram reconstruction, cryoCARE's input);
* a STAR with only ``rlnMicrographName``: the ``_EVN``/``_ODD`` (or
  ``_even``/``_odd``) files beside each micrograph.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from ..io.star import read_star, resolve_star_path
from .half_names import (  # re-exported: their home was here
    FilePair,
    half_files_beside,
    half_of,
    match_half_folders,
    pair_files_in_folder,
)
from .pair import ImagePair
from .pairs import pairs_from_files

__all__ = [
    "STAR_HALF_COLUMNS",
    "half_files_beside",
    "half_of",
    "load_file_pairs",
    "match_half_folders",
    "pair_files_in_folder",
    "pair_files_from_star",
    "pairs_from_pair_folder",
    "pairs_from_star",
]

#: STAR column pairs holding the two halves, in the order they are looked for.
STAR_HALF_COLUMNS = (
    ("rlnMicrographNameEven", "rlnMicrographNameOdd"),
    ("rlnTomoReconstructedTomogramHalf1", "rlnTomoReconstructedTomogramHalf2"),
)


def pair_files_from_star(
    star: str | os.PathLike, project_dir: str | os.PathLike | None = None
) -> list[FilePair]:
    """Even/odd half files listed by a RELION STAR file.

    The first table with ``rlnMicrographNameEven``/``rlnMicrographNameOdd`` (or
    ``rlnTomoReconstructedTomogramHalf1``/``Half2``) gives them; otherwise the
    ``_EVN``/``_ODD`` files beside each ``rlnMicrographName``. Relative paths
    are resolved from ``project_dir`` (default: the working directory), then
    from the STAR file's folder and its parents.

    Raises
    ------
    InputError
        Malformed STAR (file and line), or no half sums found.

    """
    star = Path(star)
    blocks = read_star(star)
    for even_col, odd_col in STAR_HALF_COLUMNS:
        for block in blocks.values():
            if block.loop and even_col in block.columns and odd_col in block.columns:
                if not len(block.table):
                    raise InputError(f"{star}: data_{block.name} has no rows")
                return [
                    (
                        resolve_star_path(e, star, project_dir),
                        resolve_star_path(o, star, project_dir),
                    )
                    for e, o in zip(block.table[even_col], block.table[odd_col], strict=True)
                ]
    for block in blocks.values():
        if block.loop and "rlnMicrographName" in block.columns:
            names = block.table["rlnMicrographName"]
            mics = [resolve_star_path(m, star, project_dir) for m in names]
            found = [half_files_beside(m) for m in mics]
            pairs = [p for p in found if p is not None]
            absent = [m for m, p in zip(mics, found, strict=True) if p is None and not m.exists()]
            if absent:
                raise InputError(
                    f"{star}: {len(absent)} of {len(mics)} micrographs it lists do not exist "
                    f"(e.g. {absent[0]})"
                )
            if not pairs:
                raise InputError(
                    f"{star}: no rlnMicrographNameEven/rlnMicrographNameOdd columns and no "
                    f"half sums beside the micrographs (e.g. {mics[0].stem}_EVN{mics[0].suffix})"
                    if mics
                    else f"{star}: data_{block.name} has no rows"
                )
            missing = len(mics) - len(pairs)
            if missing:
                first = next(m for m, p in zip(mics, found, strict=True) if p is None)
                raise InputError(
                    f"{star}: {missing} of {len(mics)} micrographs have no even/odd half sums "
                    f"beside them (e.g. {first})"
                )
            return pairs
    raise InputError(
        f"{star}: no rlnMicrographNameEven/rlnMicrographNameOdd (or "
        "rlnTomoReconstructedTomogramHalf1/Half2, or rlnMicrographName) column"
    )


def load_file_pairs(files: list[FilePair]) -> list[ImagePair]:
    """Read ``(even, odd)`` files into ImagePairs named after the micrograph (tag removed)."""
    pairs = pairs_from_files([e for e, _ in files], [o for _, o in files])
    for pair, (even, _) in zip(pairs, files, strict=True):
        half = half_of(even)
        pair.name = half[0] if half is not None else even.stem
    return pairs


def pairs_from_star(
    star: str | os.PathLike, project_dir: str | os.PathLike | None = None
) -> list[ImagePair]:
    """Training pairs from a RELION STAR file (:func:`pair_files_from_star`)."""
    return load_file_pairs(pair_files_from_star(star, project_dir))


def pairs_from_pair_folder(folder: str | os.PathLike) -> tuple[list[ImagePair], list[Path]]:
    """Training pairs from one folder of ``X_EVN``/``X_ODD`` (``X_even``/``X_odd``) files.

    Returns
    -------
    pairs : list of ImagePair
    unpaired : list of Path
        Half sums without their other half (not used).

    """
    files, unpaired = pair_files_in_folder(folder)
    return load_file_pairs(files), unpaired
