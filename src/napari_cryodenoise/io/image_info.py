"""What we know about an image besides its pixels: the header facts we keep."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

ImageKind = Literal["image", "stack", "movie", "volume"]

#: Voxel sizes that writers use when the true value is unknown.
_PLACEHOLDER_VOXEL_SIZES = (0.0, 1.0)


@dataclass(frozen=True)
class ImageInfo:
    """Header facts of an image file, kept with the pixels through the whole pipeline.

    Attributes
    ----------
    path : pathlib.Path or None
        Source file.
    kind : {"image", "stack", "movie", "volume"}
        A single 2D image, a stack of independent 2D images (``.mrcs``, frames
        of a movie, tilt series), or a 3D volume.
    shape : tuple of int
        Array shape, ``(y, x)`` or ``(z, y, x)``.
    voxel_size : tuple of float
        ``(z, y, x)`` in Angstrom; 1.0 where the file gave none.
    voxel_size_is_placeholder : bool
        True when the file's pixel size was 0 or 1.0 (typical placeholders)
        and 1.0 is used instead of a known value.
    origin : tuple of float
        ``(z, y, x)`` origin in Angstrom.
    start : tuple of int
        MRC ``(nzstart, nystart, nxstart)``: grid index of the first voxel.
    mode : int or None
        MRC mode of the file (None for other formats).
    dtype : str
        Stored numpy dtype.
    labels : tuple of str
        MRC header labels.
    extended_header_type : str
        e.g. ``"FEI1"``.

    """

    path: Path | None
    kind: ImageKind
    shape: tuple[int, ...]
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    voxel_size_is_placeholder: bool = True
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    start: tuple[int, int, int] = (0, 0, 0)
    mode: int | None = None
    dtype: str = "float32"
    labels: tuple[str, ...] = field(default_factory=tuple)
    extended_header_type: str = ""

    @classmethod
    def build(cls, *, raw_voxel_size: tuple[float, float, float], **kwargs: Any) -> ImageInfo:
        """Create an ImageInfo, replacing a missing or placeholder pixel size by 1.0.

        The in-plane size decides: a zero z spacing with a valid x/y spacing
        (common for 2D micrographs) takes the x spacing.
        """
        vz, vy, vx = (float(v) for v in raw_voxel_size)
        planar_ok = all(math.isfinite(v) and v > 0 for v in (vy, vx))
        placeholder = not planar_ok or (vx in _PLACEHOLDER_VOXEL_SIZES and vy == vx)
        if placeholder:
            voxel = (1.0, 1.0, 1.0)
        else:
            voxel = (vz if math.isfinite(vz) and vz > 0 else vx, vy, vx)
        return cls(voxel_size=voxel, voxel_size_is_placeholder=placeholder, **kwargs)

    @property
    def pixel_size(self) -> float:
        """In-plane pixel size in Angstrom (x)."""
        return self.voxel_size[2]

    @property
    def known_pixel_size(self) -> float | None:
        """In-plane pixel size in Angstrom as the file gives it; None for a placeholder."""
        return None if self.voxel_size_is_placeholder else float(self.pixel_size)

    @property
    def name(self) -> str:
        """The file's stem (``emd_1832`` for ``emd_1832.map.gz``); ``"image"`` if none."""
        if self.path is None:
            return "image"
        stem = Path(self.path).stem
        if Path(self.path).suffix.lower() in (".gz", ".bz2") and Path(stem).suffix:
            stem = Path(stem).stem
        return stem

    def start_for(
        self, out_shape: Sequence[int], *, keep_z: bool = False
    ) -> tuple[tuple[int, int, int], str]:
        """The MRC start ``(nzstart, nystart, nxstart)`` of a grid of ``out_shape``, and a note.

        The same start when the grid is the same; scaled when the grid was
        resampled (binned) and the start stays a whole grid index; else
        ``(0, 0, 0)`` and a one-line note saying why (the origin, in Angstrom,
        needs no change). ``keep_z``: z is not resampled (a stack binned slice
        by slice); a 2D image's z never is.
        """
        start, shape = tuple(int(v) for v in self.start), tuple(self.shape)
        if not any(start) or tuple(out_shape) == shape:
            return (start[0], start[1], start[2]), ""
        if len(out_shape) != len(shape):
            scale = [math.nan] * 3
        else:
            scale = [b / a for a, b in zip(shape, out_shape, strict=True)]
        if keep_z or len(scale) == 2:
            scale = [1.0, *scale[-2:]]
        scaled = [s * f for s, f in zip(start, scale, strict=True)]
        if all(math.isfinite(v) and abs(v - round(v)) < 1e-6 for v in scaled):
            return (round(scaled[0]), round(scaled[1]), round(scaled[2])), ""
        nz, ny, nx = start
        return (0, 0, 0), (
            f"header start (nxstart, nystart, nzstart) = ({nx}, {ny}, {nz}) not carried: "
            f"on the {'x'.join(map(str, out_shape))} output grid it falls between pixels"
        )

    def as_metadata(self) -> dict[str, Any]:
        """Plain-Python dict for napari layer metadata and JSON."""
        out = asdict(self)
        out["path"] = str(self.path) if self.path is not None else None
        out["units"] = "angstrom"
        return out
