"""Writing a denoised image as MRC, TIFF or PNG, atomically (:mod:`..io.atomic`)."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_path

__all__ = ["write_output"]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (0.5, 99.5))
    if not hi > lo:
        hi = lo + 1.0
    return (np.clip((image - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8)


def write_output(
    out_path: Path,
    data: np.ndarray,
    fmt: str,
    *,
    voxel_size: Sequence[float],
    origin: Sequence[float] | None,
    kind: str,
    start: Sequence[int] | None = None,
    protect: Collection[str | os.PathLike],
    labels: Sequence[str] = (),
) -> None:
    """Write ``data`` to ``out_path`` in format ``fmt`` ("mrc", "tiff" or "png").

    MRC keeps the voxel size, origin, start (``nxstart``...) and kind, and ``labels`` (up
    to 8 header labels of 80 characters, e.g. the model used) after "denoised with
    napari-cryodenoise"; TIFF
    the pixel size (as a resolution in pixels per cm); PNG is 8-bit, scaled between the
    0.5 and 99.5 percentiles, and only for 2D images
    (:class:`~napari_cryodenoise.errors.InputError` otherwise).
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mrc":
        from ..io import write_mrc

        write_mrc(
            out_path,
            data,
            voxel_size=voxel_size,
            origin=origin,
            start=start,
            kind=kind,  # type: ignore[arg-type]
            protect=protect,
            overwrite=True,
            labels=("denoised with napari-cryodenoise", *list(labels)[:8]),
        )
        return
    if fmt == "tiff":
        import tifffile

        res = 1e8 / float(voxel_size[-1])  # pixels per cm
        with atomic_path(out_path) as tmp:
            tifffile.imwrite(
                tmp,
                np.ascontiguousarray(data, np.float32),
                resolution=(res, res),
                resolutionunit="CENTIMETER",
                metadata=None,
            )
        return
    if data.ndim != 2:
        raise InputError("PNG output is for 2D images only; use --format mrc or tiff")
    from PIL import Image

    with atomic_path(out_path) as tmp:
        Image.fromarray(_to_uint8(data)).save(tmp, format="PNG")
