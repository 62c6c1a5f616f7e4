"""Minimal RELION STAR reading and writing for micrograph lists."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError


def read_star_tables(path: str | os.PathLike) -> list[list[dict[str, str]]]:
    """Read every ``loop_`` table of a STAR file that has rows.

    Parameters
    ----------
    path : str or PathLike
        A STAR file.

    Returns
    -------
    list of list of dict
        Per table, one dict per row, keyed by label without the leading
        underscore (e.g. ``"rlnMicrographName"``).

    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise InputError(f"{path}: cannot read STAR file ({err})") from err
    tables: list[list[dict[str, str]]] = []
    labels: list[str] = []
    rows: list[dict[str, str]] = []
    in_loop = False
    for raw in lines + ["data_"]:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("data_") or line == "loop_":
            if rows:
                tables.append(rows)
            labels, rows, in_loop = [], [], line == "loop_"
            continue
        if in_loop and line.startswith("_"):
            labels.append(line.split()[0][1:])
        elif in_loop and labels:
            values = line.split()
            if len(values) >= len(labels):
                rows.append(dict(zip(labels, values, strict=False)))
    if not tables:
        raise InputError(f"{path}: no table rows found in STAR file")
    return tables


def find_star_table(path: str | os.PathLike, label: str) -> list[dict[str, str]]:
    """The first table of a STAR file that has the column ``label``."""
    for table in read_star_tables(path):
        if label in table[0]:
            return table
    raise InputError(f"{path}: STAR file has no {label} column")


def _resolve(name: str, star_dir: Path) -> Path:
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate
    for base in (Path.cwd(), star_dir, star_dir.parent, star_dir.parent.parent):
        if (base / candidate).exists():
            return base / candidate
    return star_dir / candidate


def read_star_micrographs(path: str | os.PathLike) -> list[Path]:
    """Micrograph paths listed in a RELION STAR file (``rlnMicrographName``).

    Relative names are resolved against the working directory, then the STAR
    file's folder and its parents (RELION writes paths relative to the project).
    """
    path = Path(path)
    table = find_star_table(path, "rlnMicrographName")
    return [_resolve(row["rlnMicrographName"], path.parent) for row in table]


def write_star_micrographs(
    path: str | os.PathLike,
    micrographs: Sequence[str | os.PathLike],
    *,
    pixel_size: float | None = None,
) -> Path:
    """Write a RELION micrograph list (``data_micrographs`` with rlnMicrographName).

    The file is written atomically.
    """
    path = Path(path)
    lines = [
        "",
        "# written by napari-cryodenoise",
        "",
        "data_micrographs",
        "",
        "loop_",
        "_rlnMicrographName #1",
    ]
    if pixel_size is not None:
        lines.append("_rlnMicrographPixelSize #2")
    for m in micrographs:
        lines.append(f"{m}" if pixel_size is None else f"{m} {pixel_size:.6f}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
