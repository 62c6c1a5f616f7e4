"""Writing STAR files as RELION writes them: aligned columns, atomically.

The blocks are :class:`~napari_cryodenoise.io.star.StarBlock` tables of strings as
:func:`~napari_cryodenoise.io.star.read_star` gives them, so a file read and written
back carries the same values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import InputError
from .atomic import atomic_write_text
from .star import StarBlock

__all__ = ["star_text", "write_star", "write_star_micrographs"]


def star_text(blocks: Mapping[str, StarBlock] | Iterable[StarBlock], *, title: str = "") -> str:
    """The STAR text of ``blocks``, each after its comment lines (``# version 30001``).

    Laid out as RELION writes it: ``loop_`` labels numbered ``_rlnLabel #N``, one
    row per line with the values separated by spaces and each column aligned
    (numbers to the right); ``_label value`` blocks with the values aligned.
    Values are written as the strings they are (numbers in other dtypes as
    ``str`` gives them); a value with spaces, an empty one, or one the grammar
    would misread (starting ``#``, ``_``, a quote, ``data_``...) is quoted.

    Raises
    ------
    InputError
        A value that no STAR file can hold (a line break, a tab, both quotes).

    """
    items = list(blocks.values()) if isinstance(blocks, Mapping) else list(blocks)
    repeated = bool(items) and title in items[0].comments  # a file we wrote, read back
    lines = [title, ""] if title and not repeated else [""]
    for block in items:
        lines += [*block.comments, "", f"data_{block.name}", "", *_block_lines(block), "", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _block_lines(block: StarBlock) -> list[str]:
    """The lines of one block after ``data_NAME``."""
    rows = [[_star_value(v, block) for v in row] for row in block.table.itertuples(index=False)]
    if not block.loop:
        width = max((len(c) for c in block.columns), default=0) + 1
        return [
            f"_{c:<{width}} {v}"
            for c, v in zip(block.columns, rows[0] if rows else [], strict=False)
        ]
    lines = ["loop_", *(f"_{c} #{i}" for i, c in enumerate(block.columns, 1))]
    columns = list(zip(*rows, strict=True)) if rows else []
    layouts = []
    for values in columns:
        width = max(len(v) for v in values)
        numeric = all(_NUMBER.fullmatch(v) for v in values)
        layouts.append((width, ">" if numeric else "<"))
    for row in rows:
        lines.append(
            " ".join(f"{v:{a}{w}}" for v, (w, a) in zip(row, layouts, strict=True)).rstrip()
        )
    return lines


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _star_value(value: object, block: StarBlock) -> str:
    """``value`` as one STAR token, quoted where the grammar needs it."""
    text = str(value)
    bad = any(c in text for c in "\n\r\t")
    if not bad and text and " " not in text and text[0] not in "#_'\"":
        if text not in ("loop_", "stop_") and not text.startswith(("data_", "save_")):
            return text
    quote = "'" if '"' in text else '"'
    if bad or f"{quote} " in text:  # a quote before a space would end the token
        raise InputError(f"data_{block.name}: value {text!r} cannot be written to a STAR file")
    return f"{quote}{text}{quote}"


def write_star(
    path: str | os.PathLike,
    blocks: Mapping[str, StarBlock] | Iterable[StarBlock],
    *,
    title: str = "# written by napari-cryodenoise",
) -> Path:
    """Write ``blocks`` to ``path`` atomically (see :func:`star_text`)."""
    return atomic_write_text(path, star_text(blocks, title=title))


def write_star_micrographs(
    path: str | os.PathLike,
    micrographs: Sequence[str | os.PathLike],
    *,
    pixel_size: float | None = None,
) -> Path:
    """Write a one-table micrograph list (``data_micrographs`` with rlnMicrographName).

    A RELION 3.0-style list; :mod:`napari_cryodenoise.io.star_micrographs` writes
    the RELION 3.1+ one with an optics block. The file is written atomically.
    """
    columns = ["rlnMicrographName"] + (["rlnMicrographPixelSize"] if pixel_size else [])
    rows = [[str(m)] + ([f"{pixel_size:.6f}"] if pixel_size else []) for m in micrographs]
    return write_star(path, [StarBlock.from_rows("micrographs", columns, rows)])
