"""RELION STAR files: read every block exactly, write them back atomically.

Reading follows the STAR grammar as RELION writes it: ``data_NAME`` blocks, each
either a ``loop_`` table (labels ``_rlnLabel #N``, then one row per line) or
``_label value`` pairs; values separated by whitespace, quoted with ``"`` or
``'`` when they contain spaces (``""`` is an empty string); ``#`` starts a
comment at the beginning of a token. Every value is kept as the exact string of
the file (no float reformatting), so a table written back carries the same
values. Anything else (a row with too few or too many values, a stray line, an
unterminated quote, non-UTF-8 bytes) is an :class:`~napari_cryodenoise.errors.InputError`
naming the file and the line, never silently dropped.

The values are read by a small tokenizer rather than by ``starfile.read``: that
parser cannot report line numbers, silently pads short rows, and cuts values at
``#`` (``mic#1.mrc`` becomes ``mic``). Tables are pandas DataFrames of strings,
as ``starfile`` gives them; :mod:`.star_writer` writes them back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import InputError

__all__ = [
    "IMAGE_COLUMNS",
    "RELION_VERSION",
    "StarBlock",
    "find_star_table",
    "image_column",
    "read_star",
    "read_star_micrographs",
    "read_star_tables",
    "resolve_star_path",
]

#: The version comment RELION 3.1 and 4 write before every block.
RELION_VERSION = "# version 30001"

#: The column naming the images a RELION STAR lists, by preference: micrographs
#: (``rlnMicrographName``), else tomograms (RELION 5 ``tomograms.star``).
IMAGE_COLUMNS = ("rlnMicrographName", "rlnTomoReconstructedTomogram")

_TOKEN = re.compile(r"""'(.*?)'(?=\s|$)|"(.*?)"(?=\s|$)|(\S+)""")
_LABEL = re.compile(r"_(\S+)(?:\s+#\d+)?\s*$")
_MAX_BYTES = 1 << 30


@dataclass
class StarBlock:
    """One ``data_NAME`` block of a STAR file.

    Attributes
    ----------
    name : str
        The block name without ``data_`` (``"optics"``, ``"micrographs"``, or
        ``""`` for RELION 3.0's nameless block).
    table : pandas.DataFrame
        The values as strings, one column per label (without ``_``) in file
        order. A ``loop_`` block has one row per data line, a block of
        ``_label value`` pairs exactly one row.
    loop : bool
        True for a ``loop_`` table.
    comments : tuple of str
        Comment lines just before ``data_NAME`` (RELION: ``# version 30001``),
        written back in front of the block.
    line : int
        Line number of ``data_NAME`` in the file read (0 for a new block).
    row_lines : tuple of int
        Line number of each row in the file read (empty for a new block).

    """

    name: str
    table: pd.DataFrame
    loop: bool = True
    comments: tuple[str, ...] = (RELION_VERSION,)
    line: int = 0
    row_lines: tuple[int, ...] = field(default_factory=tuple)

    @property
    def columns(self) -> list[str]:
        """Labels in file order, without the leading underscore."""
        return [str(c) for c in self.table.columns]

    def records(self) -> list[dict[str, str]]:
        """The rows as dicts keyed by label."""
        return self.table.to_dict("records")

    @classmethod
    def from_rows(
        cls,
        name: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[str]],
        *,
        comments: Sequence[str] = (RELION_VERSION,),
    ) -> StarBlock:
        """A new ``loop_`` block from rows of strings."""
        values = [[str(v) for v in row] for row in rows]
        table = pd.DataFrame(values, columns=list(columns), dtype=object)
        return cls(name, table, loop=True, comments=tuple(comments))


# --------------------------------------------------------------------------- reading


def _decode(path: Path) -> str:
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise InputError(f"{path}: over 1 GiB, too large for a STAR file")
        raw = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a STAR file") from None
    except FileNotFoundError:
        raise InputError(f"{path}: no such STAR file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read STAR file ({err.strerror or err})") from None
    if b"\0" in raw:
        line = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise InputError(f"{path} line {line}: binary data (NUL byte), not a STAR text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputError(
            f"{path} line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x}); "
            "save the STAR file as UTF-8"
        ) from None


def _tokens(text: str, path: Path, number: int) -> list[str]:
    """The values of one line (a ``#`` at a token's start ends the line)."""
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        single, double, bare = match.groups()
        if bare is not None:
            if bare.startswith("#"):
                break
            if bare[0] in "'\"":
                raise InputError(f"{path} line {number}: unterminated quote in {bare!r}")
            out.append(bare)
        else:
            out.append(single if single is not None else double)
    return out


class _Parser:
    """Line-by-line STAR reader that knows where every value came from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blocks: dict[str, StarBlock] = {}
        self.pending: list[str] = []  # comments since the last content line
        self.block: _Open | None = None

    def error(self, number: int, message: str) -> InputError:
        return InputError(f"{self.path} line {number}: {message}")

    def parse(self, text: str) -> dict[str, StarBlock]:
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#"):
                self.pending.append(line)
                continue
            if line.startswith("data_"):
                self.close()
                name = line.split()[0][5:]
                if len(line.split()) > 1:
                    raise self.error(number, f"unexpected text after data_{name}")
                if name in self.blocks:
                    raise self.error(
                        number, f"data_{name} appears twice (also line {self.blocks[name].line})"
                    )
                self.block = _Open(name, number, tuple(self.pending))
                self.pending = []
                continue
            self.pending = []
            if self.block is None:
                raise self.error(number, f"expected data_NAME, found {_short(line)}")
            self.block.add(self, number, line, raw)
        self.close()
        return self.blocks

    def close(self) -> None:
        if self.block is not None:
            self.blocks[self.block.name] = self.block.finish(self)
            self.block = None


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


class _Open:
    """The block being read."""

    def __init__(self, name: str, line: int, comments: tuple[str, ...]) -> None:
        self.name, self.line, self.comments = name, line, comments
        self.loop: bool | None = None
        self.labels: list[str] = []
        self.label_lines: list[int] = []
        self.rows: list[list[str]] = []
        self.row_lines: list[int] = []
        self.in_header = False

    def add(self, parser: _Parser, number: int, line: str, raw: str) -> None:
        if line.split()[0] == "loop_":
            if len(line.split()) > 1:
                raise parser.error(number, "unexpected text after loop_")
            if self.loop is not None:
                raise parser.error(
                    number, f"a second table in data_{self.name}; one table per block is supported"
                )
            self.loop, self.in_header = True, True
            return
        if self.loop and self.in_header and line.startswith("_"):
            match = _LABEL.match(line)
            if match is None:
                raise parser.error(number, f"malformed label {_short(line)}")
            label = match.group(1)
            if label in self.labels:
                raise parser.error(number, f"label _{label} appears twice in data_{self.name}")
            self.labels.append(label)
            self.label_lines.append(number)
            return
        if self.loop:
            self.in_header = False
            if not self.labels:
                raise parser.error(number, f"loop_ in data_{self.name} has no _labels")
            if line.startswith("_"):
                raise parser.error(
                    number, f"label {_short(line)} after the rows of data_{self.name}"
                )
            values = _tokens(line, parser.path, number)
            if not values:  # a line holding only a comment
                return
            if len(values) != len(self.labels):
                raise parser.error(
                    number,
                    f"row has {len(values)} value{'s' * (len(values) != 1)} but "
                    f"data_{self.name} has "
                    f"{len(self.labels)} columns: {_short(raw.strip())}",
                )
            self.rows.append(values)
            self.row_lines.append(number)
            return
        # a block of `_label value` pairs
        if not line.startswith("_"):
            raise parser.error(
                number, f"expected loop_ or _label value in data_{self.name}, found {_short(line)}"
            )
        self.loop = False
        values = _tokens(line, parser.path, number)
        if len(values) != 2:
            raise parser.error(number, f"expected _label value, found {_short(line)}")
        label = values[0][1:]
        if label in self.labels:
            raise parser.error(number, f"label _{label} appears twice in data_{self.name}")
        self.labels.append(label)
        self.label_lines.append(number)
        self.rows = [[*(self.rows[0] if self.rows else []), values[1]]]

    def finish(self, parser: _Parser) -> StarBlock:
        if self.loop is None:
            table = pd.DataFrame()
        else:
            table = pd.DataFrame(self.rows, columns=self.labels, dtype=object)
        return StarBlock(
            self.name,
            table,
            loop=self.loop is not False,
            comments=self.comments,
            line=self.line,
            row_lines=tuple(self.row_lines if self.loop else self.label_lines[:1]),
        )


def read_star(path: str | os.PathLike) -> dict[str, StarBlock]:
    """Read every block of a STAR file, values as exact strings.

    Parameters
    ----------
    path : str or PathLike
        A STAR file (UTF-8 or ASCII text).

    Returns
    -------
    dict of str to StarBlock
        Blocks by name (without ``data_``), in file order.

    Raises
    ------
    InputError
        One line naming the file (and the line) for an unreadable, non-UTF-8 or
        malformed file, or one without any ``data_`` block.

    """
    path = Path(path)
    blocks = _Parser(path).parse(_decode(path))
    if not blocks:
        raise InputError(f"{path}: no data_ block; not a STAR file")
    return blocks


def read_star_tables(path: str | os.PathLike) -> list[list[dict[str, str]]]:
    """Every ``loop_`` table of a STAR file that has rows, as lists of row dicts.

    Parameters
    ----------
    path : str or PathLike
        A STAR file.

    Returns
    -------
    list of list of dict
        Per table, one dict per row, keyed by label without the leading
        underscore (e.g. ``"rlnMicrographName"``); values are strings.

    Raises
    ------
    InputError
        A malformed file (see :func:`read_star`) or one without table rows.

    """
    tables = [b.records() for b in read_star(path).values() if b.loop and len(b.table)]
    if not tables:
        raise InputError(f"{path}: no table rows found in STAR file")
    return tables


def find_star_table(path: str | os.PathLike, label: str) -> list[dict[str, str]]:
    """The first table of a STAR file that has the column ``label``, as row dicts."""
    for table in read_star_tables(path):
        if label in table[0]:
            return table
    raise InputError(f"{path}: STAR file has no {label} column")


def resolve_star_path(
    name: str, star_path: str | os.PathLike, project_dir: str | os.PathLike | None = None
) -> Path:
    """Where a file named in a STAR file is.

    RELION writes paths relative to its project directory (where it runs).
    An absolute name is kept; a relative one is looked for in ``project_dir``
    (default: the working directory), then beside the STAR file and in its two
    parent folders. A name found nowhere is returned from the first of those
    folders that holds most of its folders (``MotionCorr/job002/Movies/`` of a
    missing ``MotionCorr/job002/Movies/x.mrc``), else relative to ``project_dir``
    when one is given, else beside the STAR file, so that the error that follows
    names the file where the other files of the STAR are.
    """
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate
    star_dir = Path(star_path).parent
    project = Path(project_dir) if project_dir is not None else Path.cwd()
    bases = (project, star_dir, star_dir.parent, star_dir.parent.parent)
    for base in bases:
        if (base / candidate).exists():
            return base / candidate
    depth = [_folders_present(base, candidate) for base in bases]
    if max(depth) > 0:
        return bases[depth.index(max(depth))] / candidate
    return (project if project_dir is not None else star_dir) / candidate


def _folders_present(base: Path, name: Path) -> int:
    """How many of the folders leading to ``name`` exist below ``base``."""
    count = 0
    for part in name.parts[:-1]:
        base = base / part
        if not base.is_dir():
            break
        count += 1
    return count


def image_column(tables: Iterable[Iterable[str]]) -> str | None:
    """The image column of a STAR with these tables' labels (see :data:`IMAGE_COLUMNS`).

    ``rlnMicrographName`` when any table has it, else ``rlnTomoReconstructedTomogram``
    when any has that, else None.
    """
    labels = {str(label) for table in tables for label in table}
    return next((label for label in IMAGE_COLUMNS if label in labels), None)


def read_star_micrographs(
    path: str | os.PathLike, *, project_dir: str | os.PathLike | None = None
) -> list[Path]:
    """Image paths listed in a RELION STAR file: its :func:`image_column`.

    Micrographs (``rlnMicrographName``), or the tomograms of a RELION 5
    ``tomograms.star`` (``rlnTomoReconstructedTomogram``). Relative names are
    resolved by :func:`resolve_star_path`.
    """
    path = Path(path)
    tables = read_star_tables(path)
    label = image_column(table[0] for table in tables) or IMAGE_COLUMNS[0]
    table = next((t for t in tables if label in t[0]), None)
    if table is None:
        raise InputError(f"{path}: STAR file has no {label} column")
    return [resolve_star_path(row[label], path, project_dir) for row in table]
