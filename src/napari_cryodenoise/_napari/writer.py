"""napari writer contribution: image layers to MRC, atomically, metadata kept."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CryoDenoiseError
from ..io import write_mrc
from ..io.image_info import ImageInfo
from ..provenance import mrc_labels
from .layers import METADATA_KEY
from .save_guard import check_save, layer_inputs
from .tiles import TileStore


class WriterError(CryoDenoiseError, OSError):
    """A layer cannot be written to the chosen path; the message says why, in one line.

    Not a ValueError: napari takes a writer's ValueError to mean "this writer
    does not apply" and would replace the message with a vague warning.
    """


def write_mrc_layer(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one image layer to ``path`` as float32 MRC (see :func:`_write`).

    Raises
    ------
    WriterError
        ``path`` is (or links to) a file the layer came from, or is a folder; or
        the layer cannot be stored as MRC (RGB, not 2D/3D).

    """
    try:
        return _write(path, data, meta)
    except (CryoDenoiseError, ValueError) as err:
        raise WriterError(str(err).splitlines()[0] if str(err) else type(err).__name__) from err


def _write(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one image layer to ``path`` as float32 MRC.

    The voxel size comes from the layer's scale (Angstrom), the origin from
    its translate, the MRC start (``nxstart``...) from the file the layer was
    read or made from (:meth:`~napari_cryodenoise.io.ImageInfo.start_for`).
    The files the layer was read or made from are never overwritten: a
    ``path`` that is one of them (also through a symlink or a hard link) is
    refused before anything is written.

    Parameters
    ----------
    path : str
        Target file (``.mrc``, ``.mrcs``, ``.map``, ``.rec``).
    data : array-like
        The layer data (the first level of a multiscale layer).
    meta : dict
        The layer's attributes as napari passes them.

    Returns
    -------
    list of str
        The written path.

    Raises
    ------
    napari_cryodenoise.io.output_guard.OutputPathError
        ``path`` is (or links to) an input of the layer, or is a folder.
    ValueError
        The layer cannot be stored as MRC, or is a live result that is not finished.

    """
    check_save(path, meta)
    if isinstance(data, Sequence) or meta.get("multiscale"):
        # multiscale: the full-resolution level (napari hands a MultiScaleData, which
        # np.asarray would turn into its smallest level)
        data = data[0]
    if isinstance(data, TileStore) and not data.is_complete():
        # parts of it are still the coarse preview (or were never computed)
        raise ValueError(
            f"{path}: not saved: this live result is not finished; use 'Save denoised as "
            "MRC...' in the Denoise widget (it denoises the whole image first)"
        )
    array = np.asarray(data)
    if array.ndim not in (2, 3):
        raise ValueError(f"MRC holds 2D or 3D data; this layer is {array.ndim}D")
    if meta.get("rgb"):
        raise ValueError("RGB layers cannot be written as MRC")
    scale = tuple(float(s) for s in meta.get("scale", (1.0,) * array.ndim))
    translate = tuple(float(t) for t in meta.get("translate", (0.0,) * array.ndim))
    facts = meta.get("metadata", {}).get(METADATA_KEY, {})
    kind = facts.get("kind") if array.ndim == 3 else "image"
    if array.ndim == 3 and kind in ("stack", "movie"):
        voxel = (scale[1], scale[1], scale[2])  # the frame axis has no physical size
    else:
        voxel = scale if array.ndim == 3 else (scale[0], scale[0], scale[1])
    origin = translate if array.ndim == 3 else (0.0, *translate)
    start = _grid_start(facts, array.shape, kind)
    protect = [p for _, p in layer_inputs(meta)]
    labels = mrc_labels(facts)  # a result's provenance (input, model, settings, version)
    out = write_mrc(
        Path(path),
        array,
        voxel_size=voxel,
        origin=origin,
        start=start,
        kind=kind,
        labels=labels,
        protect=protect,
    )
    return [str(out)]


def _grid_start(facts: dict[str, Any], shape: tuple[int, ...], kind: Any) -> tuple[int, ...]:
    """The source file's MRC start on the grid of ``shape``; a warning when dropped."""
    start, source = facts.get("start"), facts.get("shape")
    if not start or not source:
        return (0, 0, 0)
    info = ImageInfo(None, "image", tuple(source), start=tuple(int(v) for v in start))
    out, note = info.start_for(shape, keep_z=kind in ("stack", "movie"))
    if note:
        warnings.warn(note, stacklevel=2)
    return out
