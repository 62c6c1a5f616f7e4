"""Particle coordinates from pick files: RELION STAR, Topaz tables, EMAN .box, plain text.

Every reader returns an ``(N, 2)`` float64 array of ``(x, y)`` pixel
coordinates of the particle centres, x along image columns and y along rows
(``image[y, x]``), which is RELION's ``rlnCoordinateX`` / ``rlnCoordinateY``
convention. Origin offsets (``rlnOriginX``...) of refined particle STAR files
are ignored: these are pick positions, which is what region-SNR measurement
needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .star import read_star_tables

__all__ = ["picks_for", "read_coordinates", "read_star_coordinates", "star_micrograph_names"]

_X, _Y, _MIC = "rlnCoordinateX", "rlnCoordinateY", "rlnMicrographName"


def _coordinate_table(path: Path) -> list[dict[str, str]]:
    for table in read_star_tables(path):
        if _X in table[0] and _Y in table[0]:
            return table
    raise InputError(f"{path}: STAR file has no table with {_X} and {_Y} columns")


def _same_micrograph(name: str, wanted: str) -> bool:
    a, b = Path(name), Path(wanted)
    return a.name == b.name or a.stem == b.stem


def star_micrograph_names(path: str | os.PathLike) -> list[str]:
    """Distinct ``rlnMicrographName`` values of a coordinate STAR file, in order of appearance.

    Empty if the file has no micrograph column (a per-micrograph pick file).
    """
    table = _coordinate_table(Path(path))
    return list(dict.fromkeys(row[_MIC] for row in table if _MIC in row))


def read_star_coordinates(
    path: str | os.PathLike, *, micrograph: str | os.PathLike | None = None
) -> np.ndarray:
    """Read particle centres from a RELION STAR file.

    Parameters
    ----------
    path : str or PathLike
        A RELION coordinate file (``*_autopick.star``, ``*_manualpick.star``)
        or a particle STAR file; the first table with ``rlnCoordinateX`` and
        ``rlnCoordinateY`` is used (in RELION 3.1+ files that is
        ``data_particles``, after ``data_optics``).
    micrograph : str or PathLike, optional
        Keep only rows whose ``rlnMicrographName`` names this micrograph (same
        file name or same stem). Ignored, with all rows returned, when the file
        has no micrograph column.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float64 ``(x, y)`` in pixels; ``(0, 2)`` if no rows match.

    Raises
    ------
    InputError
        Unreadable file, missing columns or non-numeric coordinates.

    """
    path = Path(path)
    table = _coordinate_table(path)
    if micrograph is not None and _MIC in table[0]:
        table = [row for row in table if _same_micrograph(row[_MIC], str(micrograph))]
    try:
        xy = np.array([[float(row[_X]), float(row[_Y])] for row in table], dtype=np.float64)
    except ValueError as err:
        raise InputError(f"{path}: non-numeric particle coordinate ({err})") from err
    xy = xy.reshape(-1, 2)
    if not np.all(np.isfinite(xy)):
        raise InputError(f"{path}: NaN or infinite particle coordinates")
    return xy


def _read_table_text(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """Whitespace/tab/comma separated numbers with an optional header line."""
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines()]
    except OSError as err:
        raise InputError(f"{path}: cannot read coordinate file ({err})") from err
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    header: list[str] | None = None
    rows: list[list[str]] = []
    for ln in lines:
        fields = ln.replace(",", " ").split()
        looks_like_header = not _is_number(fields[0]) and not _is_number(fields[-1])
        if header is None and not rows and looks_like_header:
            header = fields
            continue
        rows.append(fields)
    return header, rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_coordinates(
    path: str | os.PathLike, *, micrograph: str | os.PathLike | None = None
) -> np.ndarray:
    """Read particle centres from any supported pick file.

    * ``.star``: RELION (:func:`read_star_coordinates`).
    * ``.box``: EMAN/cryoSPARC box files, ``x y w h`` of the box's lower-left
      corner; the centre ``(x + w/2, y + h/2)`` is returned.
    * other text (``.txt``, ``.tsv``, ``.csv``, ``.coords``): a table with a
      header naming ``x_coord``/``y_coord`` (Topaz; an ``image_name`` column
      is filtered by ``micrograph``) or ``x``/``y``, or headerless with x and
      y in the first two columns.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float64 ``(x, y)`` pixels.

    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such coordinate file")
    if path.suffix.lower() == ".star":
        return read_star_coordinates(path, micrograph=micrograph)
    header, rows = _read_table_text(path)
    if not rows:
        return np.zeros((0, 2))
    box = path.suffix.lower() == ".box"
    ix, iy = 0, 1
    if header is not None:
        names = [h.lower() for h in header]
        for cx, cy in (("x_coord", "y_coord"), ("x", "y"), ("coordinatex", "coordinatey")):
            if cx in names and cy in names:
                ix, iy = names.index(cx), names.index(cy)
                break
        else:
            raise InputError(f"{path}: no x/y (or x_coord/y_coord) columns in header {header}")
        if micrograph is not None and "image_name" in names:
            k = names.index("image_name")
            rows = [r for r in rows if _same_micrograph(r[k], str(micrograph))]
    try:
        values = np.array(
            [
                [float(r[ix]), float(r[iy])] + ([float(r[2]), float(r[3])] if box else [])
                for r in rows
            ],
            dtype=np.float64,
        )
    except (ValueError, IndexError) as err:
        raise InputError(f"{path}: cannot parse coordinates ({err})") from err
    if box and values.size:
        values = values[:, :2] + values[:, 2:] / 2
    xy = values[:, :2].reshape(-1, 2)
    if not np.all(np.isfinite(xy)):
        raise InputError(f"{path}: NaN or infinite particle coordinates")
    return xy


def picks_for(path: str | os.PathLike, micrograph: str | os.PathLike) -> np.ndarray:
    """Read ``(x, y)`` picks for one micrograph from a STAR, box or text pick file.

    Files listing several micrographs (RELION STAR with ``rlnMicrographName``,
    Topaz tables with ``image_name``) are filtered to ``micrograph`` (a path
    or name; file name or stem must match); a STAR file naming only one
    micrograph is read whole.

    Raises
    ------
    InputError
        Unreadable file, no picks, or none for this micrograph.

    """
    path = Path(path)
    xy = read_coordinates(path, micrograph=micrograph)
    if not len(xy) and path.suffix.lower() == ".star":
        names = star_micrograph_names(path)
        if len(names) == 1:
            xy = read_coordinates(path)
        elif names:
            raise InputError(
                f"{path.name} has no picks for {Path(micrograph).name}; it lists "
                f"{len(names)} micrographs, e.g. {', '.join(names[:3])}"
            )
    if not len(xy):
        raise InputError(f"{path.name} contains no picks")
    return xy
