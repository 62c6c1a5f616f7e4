"""Even/odd half-sum files matched by name (no reading of pixels).

Conventions recognised:

* MotionCor2/MotionCor3 with ``-SplitSum 1`` write ``X_EVN.mrc`` and ``X_ODD.mrc``
  beside the full sum ``X.mrc`` (RELION 5's motion correction, asked to save
  images for denoising, writes the same names);
* ``X_even.mrc`` / ``X_odd.mrc`` (``cryodenoise train --save-pairs``, and
  many scripts); the tag is matched without regard to case;
* the same file name in an even and an odd folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InputError
from ..io import is_image_path

__all__ = [
    "FilePair",
    "half_files_beside",
    "half_of",
    "match_half_folders",
    "pair_files_in_folder",
]

_HALF = re.compile(r"^(?P<base>.+)_(?P<tag>EVN|ODD|even|odd)$", re.IGNORECASE)
_WHICH = {"evn": "even", "even": "even", "odd": "odd"}
_NAMES = "X_EVN.mrc + X_ODD.mrc (MotionCor2 -SplitSum 1) or X_even.mrc + X_odd.mrc"
FilePair = tuple[Path, Path]


def half_of(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(base, "even"|"odd")`` for a half-sum file name, else None.

    ``mic_001_EVN.mrc`` -> ``("mic_001", "even")``; ``a_odd.tif`` -> ``("a", "odd")``.
    """
    match = _HALF.match(Path(path).stem)
    if match is None:
        return None
    return match["base"], _WHICH[match["tag"].lower()]


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))


def _by_base(files: list[Path], which: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in files:
        half = half_of(path)
        if half is not None and half[1] == which:
            out.setdefault(f"{half[0]}{path.suffix.lower()}", path)
    return out


def pair_files_in_folder(folder: str | os.PathLike) -> tuple[list[FilePair], list[Path]]:
    """Even/odd half-sum files of one folder, matched by name.

    Returns
    -------
    pairs : list of (even, odd)
        Sorted by name.
    unpaired : list of Path
        Half sums whose other half is missing.

    Raises
    ------
    InputError
        No folder, or no complete pair in it.

    """
    folder = Path(folder)
    files = _image_files(folder)
    even, odd = _by_base(files, "even"), _by_base(files, "odd")
    pairs = [(even[k], odd[k]) for k in sorted(set(even) & set(odd))]
    unpaired = sorted(even[k] for k in set(even) - set(odd))
    unpaired += sorted(odd[k] for k in set(odd) - set(even))
    if not pairs:
        raise InputError(f"{folder}: no even/odd half sums found; expected {_NAMES}")
    return pairs, unpaired


def match_half_folders(even_dir: str | os.PathLike, odd_dir: str | os.PathLike) -> list[FilePair]:
    """Match the files of an even and an odd folder.

    The same file name on both sides (``even/a.mrc`` with ``odd/a.mrc``), else
    the same name up to the half tag (``even/a_EVN.mrc`` with ``odd/a_ODD.mrc``,
    ``a_even.mrc`` with ``a_odd.mrc``). One folder given as both: its
    ``_EVN``/``_ODD`` (``_even``/``_odd``) files.
    """
    even_dir, odd_dir = Path(even_dir), Path(odd_dir)
    if even_dir.resolve() == odd_dir.resolve():
        return pair_files_in_folder(even_dir)[0]
    evens, odds = _image_files(even_dir), _image_files(odd_dir)
    same = sorted({p.name for p in evens} & {p.name for p in odds})
    if same:
        return [(even_dir / n, odd_dir / n) for n in same]
    by_even, by_odd = _by_base(evens, "even"), _by_base(odds, "odd")
    common = sorted(set(by_even) & set(by_odd))
    if not common:
        raise InputError(
            f"{even_dir} and {odd_dir} have no matching image files; the halves of one "
            f"micrograph must share a file name, or be named {_NAMES}"
        )
    return [(by_even[k], by_odd[k]) for k in common]


def half_files_beside(path: str | os.PathLike) -> FilePair | None:
    """The ``X_EVN``/``X_ODD`` (or ``X_even``/``X_odd``) files beside ``X``, if both exist."""
    path = Path(path)
    for even_tag, odd_tag in (("_EVN", "_ODD"), ("_even", "_odd")):
        even = path.with_name(f"{path.stem}{even_tag}{path.suffix}")
        odd = path.with_name(f"{path.stem}{odd_tag}{path.suffix}")
        if even.is_file() and odd.is_file():
            return even, odd
    return None
