"""The RELION micrograph STAR of a denoising run, as a RELION step writes it.

A RELION step keeps every block and column of its input STAR and replaces its
own: denoising replaces ``rlnMicrographName``. So when the inputs of a run come
from RELION STAR lists, the output STAR is the input's blocks (optics, CTF,
motion, any other) with the same columns in the same order and the same values,
as strings, and only ``rlnMicrographName`` pointing at the denoised files,
relative to the project directory. Only when denoising changed the pixel size
(``--bin``/``--pixel-size`` without ``--restore-size``) is the micrograph pixel
size scaled by the same factor, since it must describe the files listed.

A RELION 5 ``tomograms.star`` (no ``rlnMicrographName``) is carried over the
same way, with ``rlnTomoReconstructedTomogram`` pointing at the denoised
tomograms (and ``rlnTomoTomogramBinning`` scaled when the voxel size changed).

Inputs given as files, folders or globs get a RELION 3.1+ STAR: ``data_optics``
(one optics group per pixel size, from the headers, and one with pixel size 0 for
headers without one, beside known ones; voltage, Cs and amplitude contrast when
given) and ``data_micrographs`` (``rlnMicrographName``, ``rlnOpticsGroup``), which
RELION 4/5 import accepts.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .star import (
    IMAGE_COLUMNS,
    RELION_VERSION,
    StarBlock,
    image_column,
    read_star,
    resolve_star_path,
)
from .star_writer import write_star

__all__ = [
    "MicrographStar",
    "OpticsValues",
    "OutputStarPlan",
    "listed_outputs",
    "read_micrograph_star",
    "relion_path",
    "star_inputs",
]

MIC, TOMO = IMAGE_COLUMNS
GROUP = "rlnOpticsGroup"
PIXEL = "rlnMicrographPixelSize"
BINNING = "rlnTomoTomogramBinning"
Pair = tuple[Path, Path]
#: rlnMicrographPixelSize of the optics group of micrographs whose header has none.
UNKNOWN_PIXEL = 0.0


@dataclass(frozen=True)
class MicrographStar:
    """A RELION micrograph (or tomogram) STAR as read: its blocks and the file of every row.

    Attributes
    ----------
    path : pathlib.Path
        The STAR file.
    blocks : dict of str to StarBlock
        Every block, in file order.
    block : str
        Name of the block with the image column (``"micrographs"`` in RELION
        3.1+, ``"global"`` in a RELION 5 ``tomograms.star``).
    micrographs : tuple of pathlib.Path
        Each row's image, resolved as :func:`~.star.resolve_star_path` does.
    column : str
        The image column (:func:`~.star.image_column`): ``rlnMicrographName``
        or ``rlnTomoReconstructedTomogram``.

    """

    path: Path
    blocks: dict[str, StarBlock] = field(hash=False, compare=False)
    block: str
    micrographs: tuple[Path, ...]
    column: str = MIC

    @property
    def tomograms(self) -> bool:
        """True for a tomogram STAR (``rlnTomoReconstructedTomogram``)."""
        return self.column == TOMO

    @property
    def project(self) -> Path | None:
        """The folder its relative names were found in: the RELION project directory.

        None when no relative name names an existing file.
        """
        names = self.blocks[self.block].table[self.column].tolist()
        for name, found in zip(names, self.micrographs, strict=True):
            parts = len(Path(name).parts)
            if not Path(name).is_absolute() and found.exists() and parts < len(found.parts):
                return Path(*found.parts[:-parts])
        return None


def read_micrograph_star(
    path: str | os.PathLike, project_dir: str | os.PathLike | None = None
) -> MicrographStar:
    """Read a RELION micrograph or tomogram STAR (the first table with its image column).

    Raises
    ------
    InputError
        Malformed file (file and line named) or no ``rlnMicrographName`` column
        (nor ``rlnTomoReconstructedTomogram``).

    """
    path = Path(path)
    blocks = read_star(path)
    column = image_column(b.columns for b in blocks.values() if b.loop) or MIC
    for name, block in blocks.items():
        if block.loop and column in block.columns:
            names = block.table[column].tolist()
            mics = tuple(resolve_star_path(n, path, project_dir) for n in names)
            return MicrographStar(path, blocks, name, mics, column)
    raise InputError(f"{path}: STAR file has no {MIC} column")


def star_inputs(
    items: Sequence[str | os.PathLike], project_dir: str | os.PathLike | None = None
) -> list[MicrographStar]:
    """The STAR lists among command-line inputs (STAR files and globs matching them)."""
    out: list[MicrographStar] = []
    for item in items:
        path = Path(item).expanduser()
        if path.suffix.lower() == ".star" and path.is_file():
            out.append(read_micrograph_star(path, project_dir))
        elif any(c in str(item) for c in "*?[") and not path.exists():
            for match in sorted(glob.glob(os.path.expanduser(str(item)))):
                if Path(match).suffix.lower() == ".star" and Path(match).is_file():
                    out.append(read_micrograph_star(match, project_dir))
    return out


def relion_path(path: str | os.PathLike, project_dir: str | os.PathLike | None = None) -> str:
    """``path`` as RELION names it: relative to the project directory when inside it."""
    project = Path(os.path.abspath(project_dir if project_dir is not None else os.getcwd()))
    absolute = Path(os.path.abspath(path))
    for base, target in ((project, absolute), (project.resolve(), absolute.resolve())):
        if target.is_relative_to(base):
            return target.relative_to(base).as_posix()
    return absolute.as_posix()


def listed_outputs(
    results: Sequence[tuple[Path, Path, bool]], complete: Callable[[Path], bool]
) -> list[Pair]:
    """The (input, output) pairs an output STAR lists, in input order.

    ``results`` holds ``(input, output, ok)`` per input; an output is listed when
    its item succeeded (done now or skipped as done before), or failed but
    ``complete(output)`` says a finished output is there from an earlier run
    (e.g. "exists, use --overwrite"). Each output once, never an input file.
    """
    inputs = {os.path.abspath(i) for i, _, _ in results}
    seen: set[str] = set()
    out: list[Pair] = []
    for inp, outp, ok in results:
        key = os.path.abspath(outp)
        if key in seen or key in inputs:
            continue
        if ok or complete(Path(outp)):
            seen.add(key)
            out.append((Path(inp), Path(outp)))
    return out


@dataclass(frozen=True)
class OpticsValues:
    """Microscope values for a new optics block (None: not written).

    Raises
    ------
    InputError
        A value out of range, named by its command-line option.

    """

    voltage: float | None = None
    cs: float | None = None
    amplitude_contrast: float | None = None

    def __post_init__(self) -> None:
        checks = (
            ("--voltage", self.voltage, lambda v: v > 0, "a positive number of kV"),
            ("--cs", self.cs, lambda v: v >= 0, "a number of mm >= 0"),
            ("--amplitude-contrast", self.amplitude_contrast, lambda v: 0 <= v < 1, "in [0, 1)"),
        )
        for option, value, ok, what in checks:
            if value is not None and not (math.isfinite(value) and ok(value)):
                raise InputError(f"{option} must be {what}, got {value}")

    def columns(self) -> list[tuple[str, float]]:
        """``(label, value)`` of the values given, in RELION's column order."""
        pairs = (
            ("rlnVoltage", self.voltage),
            ("rlnSphericalAberration", self.cs),
            ("rlnAmplitudeContrast", self.amplitude_contrast),
        )
        return [(label, v) for label, v in pairs if v is not None]


def _pixel_size(path: Path) -> float | None:
    """In-plane pixel size from the header (None: unreadable or a placeholder)."""
    import warnings

    from . import read_image

    try:
        with warnings.catch_warnings():  # said once already, when the file was denoised
            warnings.simplefilter("ignore")
            _, info = read_image(path, mmap=True)
    except (InputError, OSError, ValueError):
        return None
    return info.known_pixel_size


def _fmt(value: float) -> str:
    return f"{value:.6f}"


@dataclass(frozen=True)
class OutputStarPlan:
    """How to write the output STAR of a run: its STAR inputs and RELION settings.

    Attributes
    ----------
    sources : tuple of MicrographStar
        The STAR lists the inputs came from (:func:`star_inputs`).
    project_dir : pathlib.Path or None
        RELION project directory for the paths written (default: the folder the
        STAR input's names were found in, else the working directory at write time).
    optics : OpticsValues
        Voltage, Cs, amplitude contrast for a new optics block.
    rescaled : bool
        Denoising changed the pixel size (binning without ``--restore-size``):
        pixel sizes of carried-over STAR rows are scaled to match the outputs.

    """

    sources: tuple[MicrographStar, ...] = ()
    project_dir: Path | None = None
    optics: OpticsValues = field(default_factory=OpticsValues)
    rescaled: bool = False

    @property
    def default_name(self) -> str:
        """The output STAR's name: ``denoised_tomograms.star`` for tomogram STAR inputs."""
        if self.sources and all(s.tomograms for s in self.sources):
            return "denoised_tomograms.star"
        return "denoised_micrographs.star"

    def blocks(self, pairs: Sequence[Pair]) -> tuple[list[StarBlock], list[str]]:
        """The blocks of the output STAR listing ``pairs`` (input, output), and notes.

        The notes say, one line each, what could not be carried over and why. A
        micrograph on several rows of a STAR input (denoised once) keeps every row, in
        the input's order, as a RELION step keeps every row of its input.
        """
        notes: list[str] = []
        index: dict[str, list[tuple[int, int]]] = {}
        for s, source in enumerate(self.sources):
            for r, mic in enumerate(source.micrographs):
                rows = index.setdefault(os.path.abspath(mic), [])
                if not rows or rows[0][0] == s:  # the rows of the first STAR listing it
                    rows.append((s, r))
        hits = [index.get(os.path.abspath(inp)) for inp, _ in pairs]
        if self.sources and pairs:
            if all(h is not None for h in hits):
                rows = sorted((h, pair) for pair, hs in zip(pairs, hits, strict=True) for h in hs)
                used = sorted({h[0] for h, _ in rows})
                base = self.sources[used[0]]
                odd = [self.sources[i] for i in used[1:] if not _compatible(base, self.sources[i])]
                if not odd:
                    carried = [pair for _, pair in rows]
                    return self._carried(base, carried, [h for h, _ in rows], notes), notes
                notes.append(
                    f"{odd[0].path} has other blocks, columns or optics than {base.path}: "
                    "writing a new STAR without their columns"
                )
            else:
                notes.append(
                    "the inputs mix STAR lists and other files: writing a new STAR "
                    "without the STAR lists' columns"
                )
        return self._new(pairs, notes), notes

    def write(
        self,
        path: str | os.PathLike,
        pairs: Sequence[Pair],
        log: Callable[[str], None] | None = None,
    ) -> Path:
        """Write the output STAR listing ``pairs`` atomically; notes go to ``log``."""
        blocks, notes = self.blocks(pairs)
        for note in notes:
            if log is not None:
                log(f"{path}: {note}")
        return write_star(path, blocks)

    # ------------------------------------------------------------------ STAR inputs

    def _carried(self, base: MicrographStar, pairs, hits, notes: list[str]) -> list[StarBlock]:
        mic = base.blocks[base.block]
        rows = [
            self.sources[s].blocks[self.sources[s].block].table.iloc[r].tolist() for s, r in hits
        ]
        table = pd.DataFrame(rows, columns=mic.columns, dtype=object)
        project = self.project_dir or base.project  # where the input's names are from
        table[base.column] = [relion_path(out, project) for _, out in pairs]
        blocks = {
            name: StarBlock(b.name, b.table.copy(), loop=b.loop, comments=b.comments)
            for name, b in base.blocks.items()
        }
        blocks[base.block] = StarBlock(mic.name, table, loop=True, comments=mic.comments)
        if self.rescaled:
            self._rescale(blocks, base.block, pairs, notes, BINNING if base.tomograms else PIXEL)
        return list(blocks.values())

    def _rescale(self, blocks: dict[str, StarBlock], name: str, pairs, notes, label) -> None:
        """Scale pixel sizes (``label``) of the listed rows by output/input header pixel size.

        Tomograms scale ``rlnTomoTomogramBinning`` (their voxel size is the tilt
        series' pixel size times it); micrographs their per-row pixel size and the
        optics groups'.
        """
        ratios: list[float | None] = []
        for inp, out in pairs:
            a, b = _pixel_size(Path(inp)), _pixel_size(Path(out))
            ratios.append(b / a if a and b else None)
        table = blocks[name].table
        if label in table.columns:  # per tomogram, or RELION 3.0 style per micrograph
            column = table.columns.get_loc(label)
            for r, ratio in enumerate(ratios):
                if ratio is not None:
                    table.iloc[r, column] = _scaled(table.iloc[r, column], ratio)
        if label == BINNING:
            if label not in table.columns:
                notes.append(f"no {BINNING} to update for the new voxel size")
            return
        optics = blocks.get("optics")
        if optics is None or PIXEL not in optics.columns or GROUP not in table.columns:
            if PIXEL not in table.columns:
                notes.append("no rlnMicrographPixelSize to update for the new pixel size")
            return
        for group in dict.fromkeys(table[GROUP]):
            mine = {ratios[r] for r in range(len(ratios)) if table[GROUP].iloc[r] == group}
            rows = optics.table.index[optics.table[GROUP] == group]
            if len(mine) != 1 or None in mine or not len(rows):
                notes.append(
                    f"optics group {group}: pixel size not updated (headers disagree or lack one)"
                )
                continue
            ratio = mine.pop()
            for r in rows:
                optics.table.loc[r, PIXEL] = _scaled(optics.table.loc[r, PIXEL], ratio)

    # ------------------------------------------------------------------ new STAR

    def _new(self, pairs: Sequence[Pair], notes: list[str]) -> list[StarBlock]:
        sizes = [(_pixel_size(Path(inp)), _pixel_size(Path(out))) for inp, out in pairs]
        original = all(a is not None for a, _ in sizes)
        keys = [
            (round(a, 6) if original else None, None if b is None else round(b, 6))
            for a, b in sizes
        ]
        groups = list(dict.fromkeys(keys)) or [(None, None)]
        columns = ["rlnOpticsGroupName", GROUP]
        columns += ["rlnMicrographOriginalPixelSize"] if original else []
        columns += [label for label, _ in self.optics.columns()]
        # no header has one: no column (RELION asks for it on import) rather than 0s
        some = any(b is not None for _, b in sizes)
        columns += [PIXEL] if some else []
        rows = []
        for g, (orig, pixel) in enumerate(groups, 1):
            row = [f"opticsGroup{g}", str(g)]
            row += [_fmt(orig)] if original else []
            row += [_fmt(v) for _, v in self.optics.columns()]
            row += [_fmt(pixel if pixel is not None else UNKNOWN_PIXEL)] if some else []
            rows.append(row)
        comments: tuple[str, ...] = (RELION_VERSION,)
        unknown = [g for g, (_, pixel) in enumerate(groups, 1) if pixel is None]
        if pairs and not some:
            notes.append(
                "pixel size unknown in every header: the optics block has no "
                "rlnMicrographPixelSize (set it when importing into RELION)"
            )
        elif unknown and pairs:
            which = ", ".join(map(str, unknown))
            missing = [out for (_, out), (_, b) in zip(pairs, sizes, strict=True) if b is None]
            note = (
                f"optics group {which}: {len(missing)} of {len(pairs)} micrographs have no "
                f"pixel size in the header (e.g. {missing[0]}): its rlnMicrographPixelSize "
                f"is {_fmt(UNKNOWN_PIXEL)} (unknown); set it before RELION uses them"
            )
            notes.append(note)
            comments = (f"# {note}", RELION_VERSION)
        optics = StarBlock.from_rows("optics", columns, rows, comments=comments)
        mics = StarBlock.from_rows(
            "micrographs",
            [MIC, GROUP],
            [
                [relion_path(out, self.project_dir), str(groups.index(key) + 1)]
                for (_, out), key in zip(pairs, keys, strict=True)
            ],
        )
        return [optics, mics]


def _scaled(value: str, ratio: float) -> str:
    if abs(ratio - 1) < 1e-6:
        return value
    try:
        return _fmt(float(value) * ratio)
    except ValueError:
        return value


def _compatible(a: MicrographStar, b: MicrographStar) -> bool:
    """Same blocks and columns, and the same values outside the micrograph table."""
    if list(a.blocks) != list(b.blocks) or a.block != b.block or a.column != b.column:
        return False
    for name, block in a.blocks.items():
        other = b.blocks[name]
        if block.columns != other.columns:
            return False
        if name != a.block and not block.table.equals(other.table):
            return False
    return True
