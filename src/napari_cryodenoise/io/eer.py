"""Read EER movies (Falcon 4/4i electron event representation) as frame fractions.

An EER file stores hundreds to thousands of raw detector frames, each a sparse
binary image of single electron events. Like RELION's ``--eer_grouping``,
:class:`EerMovie` sums consecutive groups of raw frames into *fractions* and
presents them as an ``(F, H, W)`` movie, decoded one fraction at a time (only
the fraction being built is in memory). Trailing raw frames that do not fill
a whole group are left out. Events are counted at the physical pixel grid
(4096 x 4096 on a Falcon 4); super-resolution positions are not used.

Decoding uses :mod:`tifffile` with the EER codec of :mod:`imagecodecs`
(``pip install "napari-cryodenoise[eer]"``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError

__all__ = ["DEFAULT_EER_GROUPING", "EER_SUFFIXES", "EerMovie"]

EER_SUFFIXES = (".eer",)
#: Raw EER frames summed into one fraction by default (RELION's default too).
DEFAULT_EER_GROUPING = 40
_EER_COMPRESSIONS = {65000, 65001, 65002}


def _require_codec(path: Path) -> None:
    try:
        import imagecodecs  # noqa: F401
    except ImportError as err:
        raise InputError(
            f"{path}: reading EER movies needs the imagecodecs package: "
            'pip install "napari-cryodenoise[eer]" (or pip install imagecodecs)'
        ) from err


class EerMovie:
    """Fractions of an EER movie: sums of ``grouping`` consecutive raw frames.

    Array-like for :class:`~napari_cryodenoise.training.MovieReader`:
    ``shape``, ``ndim``, ``dtype``, ``len()`` and ``movie[i]`` (fraction ``i``
    as a new ``uint16`` array of electron counts).

    Parameters
    ----------
    path : str or PathLike
        The ``.eer`` file.
    grouping : int
        Raw frames per fraction (default :data:`DEFAULT_EER_GROUPING`).

    Raises
    ------
    InputError
        Missing or unreadable file, not an EER file, no EER codec installed,
        or fewer raw frames than one group.

    """

    ndim = 3
    dtype = np.dtype(np.uint16)

    def __init__(self, path: str | os.PathLike, *, grouping: int = DEFAULT_EER_GROUPING) -> None:
        self.path = Path(path)
        self._tif: tifffile.TiffFile | None = None
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        if int(grouping) < 1:
            raise InputError(f"EER grouping must be >= 1 raw frame per fraction, got {grouping}")
        self.grouping = int(grouping)
        _require_codec(self.path)
        try:
            self._tif = tifffile.TiffFile(self.path)
            pages = self._tif.pages
            first = pages.first
            # An integrated image may precede the frames (uncompressed first page).
            self._start = 0 if first.compression in _EER_COMPRESSIONS else 1
            if len(pages) <= self._start or pages[self._start].compression not in (
                _EER_COMPRESSIONS
            ):
                raise InputError(
                    f"{self.path}: not an EER movie (TIFF compression {first.compression}, "
                    "expected EER's 65000-65002)"
                )
            frame = pages[self._start]
            self.n_raw_frames = len(pages) - self._start
            self.frame_shape = (int(frame.shape[-2]), int(frame.shape[-1]))
            self.metadata = dict(self._tif.eer_metadata or {})
        except InputError:
            self.close()
            raise
        except Exception as err:  # a corrupt file can fail in many ways inside tifffile
            self.close()
            raise InputError(f"{self.path}: not a readable EER file ({err})") from err
        self.n_fractions = self.n_raw_frames // self.grouping
        if self.n_fractions < 1:
            self.close()
            raise InputError(
                f"{self.path}: {self.n_raw_frames} raw frames, fewer than one group of "
                f"{self.grouping}; choose a smaller EER grouping"
            )
        self.shape = (self.n_fractions, *self.frame_shape)

    def __len__(self) -> int:
        return self.n_fractions

    def __getitem__(self, index: int) -> np.ndarray:
        """Fraction ``index``: electron counts summed over its raw frames."""
        index = int(index)
        if index < 0:
            index += self.n_fractions
        if not 0 <= index < self.n_fractions:
            raise IndexError(f"fraction {index} of {self.n_fractions}")
        counts = np.zeros(self.frame_shape, np.uint16)
        first = self._start + index * self.grouping
        try:
            for k in range(first, first + self.grouping):
                counts += self._tif.pages[k].asarray()
        except (tifffile.TiffFileError, ValueError, OSError, RuntimeError) as err:
            raise InputError(
                f"{self.path}: raw frame {k - self._start} cannot be decoded ({err}); "
                "the file may be truncated"
            ) from err
        return counts

    def close(self) -> None:
        """Close the file (also done when the object is garbage collected)."""
        tif = getattr(self, "_tif", None)
        if tif is not None:
            tif.close()
            self._tif = None

    def __enter__(self) -> EerMovie:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"EerMovie({str(self.path)!r}, {self.n_raw_frames} raw frames -> "
            f"{self.n_fractions} fractions of {self.grouping}, {self.frame_shape[1]} x "
            f"{self.frame_shape[0]} px)"
        )
