"""Which files a run denoises, and what each output is called.

* :func:`expand_inputs`: files from paths, folders, glob patterns and RELION STAR lists;
* :func:`output_path`: ``OUTDIR/<stem>.<ext>`` for an input and an output format.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["SUFFIX", "expand_inputs", "output_path"]

#: File suffix of each output format (:data:`napari_cryodenoise.options.FORMATS`).
SUFFIX = {"mrc": ".mrc", "tiff": ".tif", "png": ".png"}


def expand_inputs(
    items: Sequence[str],
    *,
    suffixes: Sequence[str] | None = None,
    project_dir: str | os.PathLike | None = None,
    lists: list[Path] | None = None,
) -> list[Path]:
    """Files from paths, directories (their image files), glob patterns and RELION STAR lists.

    Missing paths are kept (and reported later as failures) so that a typo is
    not silently skipped; duplicates are dropped, order is kept. Relative names
    in STAR lists are resolved against ``project_dir`` (default: the working
    directory) first. The STAR lists read are appended to ``lists`` when given
    (they are inputs too).
    """
    from ..io import is_image_path, read_star_micrographs
    from ..io.sniff import image_suffix

    wanted = tuple(s.lower() for s in suffixes) if suffixes else None
    found: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found += sorted(
                p
                for p in path.iterdir()
                if p.is_file() and (image_suffix(p) in wanted if wanted else is_image_path(p))
            )
        elif path.suffix.lower() == ".star" and path.is_file():
            found += list(read_star_micrographs(path, project_dir=project_dir))
            if lists is not None:
                lists.append(path)
        elif any(c in item for c in "*?[") and not path.exists():
            matches = sorted(glob.glob(os.path.expanduser(item)))
            if not matches:
                found.append(path)  # reported as missing
            for m in matches:
                p = Path(m)
                if p.suffix.lower() == ".star":
                    found += list(read_star_micrographs(p, project_dir=project_dir))
                    if lists is not None:
                        lists.append(p)
                elif p.is_file():
                    found.append(p)
        else:
            found.append(path)
    unique, seen = [], set()
    for p in found:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def output_path(in_path: Path, outdir: Path, fmt: str, *, kind: str | None = None) -> Path:
    """``outdir/<stem>.<ext>``; stacks keep ``.mrcs`` when written as MRC.

    A compressed input's name loses both suffixes: ``emd_1.map.gz`` -> ``emd_1.mrc``.
    """
    from ..io.sniff import image_suffix, strip_compression

    ext = SUFFIX[fmt]
    if fmt == "mrc" and image_suffix(in_path) == ".mrcs":
        ext = ".mrcs"
    return Path(outdir) / f"{strip_compression(in_path).stem}{ext}"
