"""Movie frames streamed one at a time: MRC stacks, multi-page TIFF, EER, arrays.

A :class:`MovieReader` opens an ``.mrcs``/``.mrc`` stack (memory-mapped), a
multi-page TIFF (memory-mapped, or decoded page by page when compressed) or an
EER file (raw frames summed in groups, :class:`~napari_cryodenoise.io.eer.EerMovie`)
and hands out single frames as float32, multiplied by an optional gain reference,
so memory stays at a few frame-sized buffers whatever the number of frames.
Frame ranges are written ``"A:B"`` (:func:`parse_frame_range`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from .eer import DEFAULT_EER_GROUPING, EER_SUFFIXES, EerMovie

__all__ = ["MovieReader", "parse_frame_range"]


def parse_frame_range(spec: str | slice | None) -> slice:
    """Parse ``"A:B"`` (0-based, B exclusive, either side optional, negatives allowed).

    ``"A"`` alone means ``A:`` (from frame A to the end).

    Raises
    ------
    InputError
        For anything but one or two integers separated by a colon.

    """
    if spec is None:
        return slice(None)
    if isinstance(spec, slice):
        return spec
    text = str(spec).strip()
    parts = text.split(":")
    if len(parts) > 2:
        raise InputError(f"frame range {spec!r}: use A:B (0-based, B exclusive), e.g. 2:30")
    try:
        start = int(parts[0]) if parts[0].strip() else None
        stop = int(parts[1]) if len(parts) == 2 and parts[1].strip() else None
    except ValueError:
        raise InputError(
            f"frame range {spec!r}: use A:B (0-based, B exclusive), e.g. 2:30"
        ) from None
    return slice(start, stop)


class _TiffFrames:
    """Pages of a (compressed) multi-page TIFF, decoded one at a time."""

    def __init__(self, path: Path) -> None:
        try:
            self._tif = tifffile.TiffFile(path)
            pages = self._tif.pages
            first = pages[0]
            self.shape = (len(pages), *first.shape[-2:])
        except (tifffile.TiffFileError, ValueError, OSError, IndexError) as err:
            raise InputError(f"{path}: not a readable TIFF file ({err})") from err
        self.ndim = 3

    def __getitem__(self, index: int) -> np.ndarray:
        return self._tif.pages[index].asarray()


class MovieReader:
    """Frames of a movie file or array, one at a time as float32.

    Parameters
    ----------
    source : path or numpy.ndarray
        ``.mrcs``/``.mrc``/``.tif``/``.eer`` movie, or an ``(F, H, W)`` array.
    gain : path or numpy.ndarray, optional
        Gain reference (multiplied into every frame), same ``(H, W)`` as a frame.
    eer_grouping : int
        EER movies only: raw frames summed into each frame (fraction).
    gain_name : str, optional
        What errors call a gain given as an array (e.g. the file it was read from).

    """

    def __init__(
        self,
        source: str | os.PathLike | np.ndarray,
        *,
        gain=None,
        eer_grouping: int = DEFAULT_EER_GROUPING,
        gain_name: str | None = None,
    ) -> None:
        self.eer_grouping = int(eer_grouping)
        self._gain_name = gain_name or "gain reference"
        #: In-plane pixel size (A) from an MRC movie's header; None when not known.
        self.pixel_size: float | None = None
        if isinstance(source, np.ndarray):
            self.name = "array"
            self.path: Path | None = None
            data = source
        else:
            self.path = Path(source)
            self.name = self.path.stem
            data = self._open(self.path)
        #: What errors name: the file, else the array's name.
        self.label = str(self.path) if self.path is not None else self.name
        if data.ndim != 3:
            raise InputError(
                f"{self.label}: a movie needs several frames (F, H, W), got shape {data.shape}"
            )
        self._data = data
        self.n_frames = int(data.shape[0])
        self.frame_shape = (int(data.shape[1]), int(data.shape[2]))
        if self.n_frames < 2:
            raise InputError(f"{self.label}: a movie needs at least 2 frames, has {self.n_frames}")
        self.gain = None if gain is None else self._load_gain(gain)

    def _open(self, path: Path) -> np.ndarray | _TiffFrames | EerMovie:
        suffix = path.suffix.lower()
        if suffix in EER_SUFFIXES:
            return EerMovie(path, grouping=self.eer_grouping)
        if suffix in (".tif", ".tiff"):
            try:
                data = tifffile.memmap(path, mode="r")
            except (ValueError, OSError, IndexError, tifffile.TiffFileError):
                return _TiffFrames(path)  # compressed: decode page by page
            return np.squeeze(data) if data.ndim > 3 else data
        from . import read_image  # the package's reader (defined in io/__init__)

        data, info = read_image(path, mmap=True)
        self.pixel_size = info.known_pixel_size
        return data

    def _load_gain(self, gain) -> np.ndarray:
        if isinstance(gain, np.ndarray):
            g, label = gain, self._gain_name
        else:
            from . import read_image

            g, _ = read_image(gain, mmap=False)
            label = str(gain)
        g = np.asarray(g, dtype=np.float32)
        if g.ndim == 3 and g.shape[0] == 1:
            g = g[0]
        if g.shape != self.frame_shape:
            hint = (
                " (transposed? rotate/flip it to match the frames)"
                if g.shape[::-1] == (self.frame_shape)
                else ""
            )
            raise InputError(
                f"{label}: gain reference is {g.shape[1]} x {g.shape[0]} px but the frames of "
                f"{self.label} are {self.frame_shape[1]} x {self.frame_shape[0]}{hint}"
            )
        if not np.all(np.isfinite(g)):
            raise InputError(f"{label}: gain reference contains NaN or infinite values")
        return g

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as a new float32 array, gain applied."""
        f = np.array(self._data[index], dtype=np.float32)
        if self.gain is not None:
            f *= self.gain
        return f

    def indices(self, frames: str | slice | None) -> list[int]:
        """Frame indices selected by a range (see :func:`parse_frame_range`)."""
        sel = list(range(self.n_frames))[parse_frame_range(frames)]
        if len(sel) < 2:
            raise InputError(
                f"{self.label}: frame range {frames!r} selects {len(sel)} of {self.n_frames} "
                "frames; at least 2 are needed for even/odd halves"
            )
        return sel
