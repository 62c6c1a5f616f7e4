"""Save a session's good micrographs as a RELION STAR (no Qt, no napari).

From a STAR session the output is the input STAR with only the good rows of
its micrograph block: every block (optics, any other) and every column kept,
values as the exact strings read. From a folder or glob it is a new RELION
3.1+ STAR (``data_optics`` from the headers, ``data_micrographs``), as
``cryodenoise denoise`` writes for file inputs. Written atomically; never over
an input (:func:`~napari_cryodenoise.io.output_guard.check_outputs`).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from ..errors import InputError
from ..io.output_guard import check_outputs
from ..io.star_micrographs import MicrographStar, OutputStarPlan
from ..io.star_writer import write_star
from .session import Session

__all__ = ["save_good_star"]


def save_good_star(
    session: Session, path: str | os.PathLike, project_dir: str | os.PathLike | None = None
) -> tuple[Path, int]:
    """Write the good micrographs of ``session`` to the STAR file ``path``.

    Parameters
    ----------
    session : Session
        The curated session.
    path : str or PathLike
        The STAR file to write.
    project_dir : str or PathLike, optional
        RELION project directory for the names of a new STAR (default: the
        working directory).

    Returns
    -------
    (pathlib.Path, int)
        The file written and the number of micrographs in it.

    Raises
    ------
    InputError
        Nothing marked good, or ``path`` would overwrite an input.

    """
    out = Path(path)
    good = session.good_items()
    if not good:
        raise InputError(f"{out}: no micrograph is marked good (G or Space marks one)")
    if out.suffix.lower() != ".star":
        raise InputError(f"{out}: the curated list must be a .star file")
    star = session.star if isinstance(session.star, MicrographStar) else None
    inputs: list[tuple[str, Path]] = [("micrograph", i.path) for i in session.items]
    if star is not None:
        inputs.append(("STAR", star.path))
    check_outputs([("Save good as STAR", out)], inputs)
    if star is not None:
        blocks = {name: copy.copy(block) for name, block in star.blocks.items()}
        block = blocks[star.block]
        rows = [i.row for i in good if i.row is not None]
        block.table = block.table.iloc[rows].reset_index(drop=True)
        block.row_lines = ()
        write_star(out, blocks)
    else:
        OutputStarPlan(project_dir=Path(project_dir) if project_dir else None).write(
            out, [(i.path, i.path) for i in good]
        )
    return out, len(good)
