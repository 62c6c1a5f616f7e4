"""Noise2Noise training pairs: even/odd half sums of movies, or ready-made halves.

A movie (MRC stack ``.mrcs``/``.mrc``, a multi-page TIFF, or an EER file
whose raw frames are summed in groups, see :class:`~napari_cryodenoise.io.EerMovie`)
is read one frame at a time (:class:`~napari_cryodenoise.io.movies.MovieReader`), so
memory stays at a few frame-sized buffers whatever the number of frames. The chosen
frames (``frames=A:B``, Python slice semantics, 0-based) are split into alternating
halves: the 1st, 3rd, 5th ... chosen frame go to ``even``, the 2nd, 4th ... to ``odd``. Each
frame can be multiplied by a gain reference and, optionally, shifted to undo
global stage drift before it is added to its half (:func:`estimate_drift`).

Ready-made halves come from two lists of files, two folders matched by file
name, or two arrays (e.g. two napari layers).

``MovieReader``, ``parse_frame_range``, ``estimate_drift``, ``ImagePair`` and
``PairSource`` are re-exported here from their homes (:mod:`..io.movies`,
:mod:`.alignment`, :mod:`.pair`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import fft as sfft

from ..errors import Cancelled, InputError
from ..io import DEFAULT_EER_GROUPING, read_image, write_mrc
from ..io.movies import MovieReader, parse_frame_range
from ..types import CancelFn, ProgressFn
from .alignment import estimate_drift, phase_ramp
from .half_names import match_half_folders
from .pair import ImagePair, PairSource

#: Frame groups kept per movie for random frame partitions (see :func:`pair_from_movie`).
DEFAULT_FRAME_GROUPS = 8

__all__ = [
    "ImagePair",
    "MovieReader",
    "PairSource",
    "estimate_drift",
    "pair_from_arrays",
    "DEFAULT_FRAME_GROUPS",
    "group_count",
    "pair_from_movie",
    "pairs_from_files",
    "pairs_from_folders",
    "pairs_from_movies",
    "parse_frame_range",
    "read_single_images",
]


def pair_from_movie(
    movie: str | os.PathLike | np.ndarray,
    *,
    frames: str | slice | None = None,
    align: bool = False,
    gain: str | os.PathLike | np.ndarray | None = None,
    eer_grouping: int = DEFAULT_EER_GROUPING,
    name: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    frame_groups: int = DEFAULT_FRAME_GROUPS,
    gain_name: str | None = None,
) -> ImagePair:
    """Even/odd half sums of one movie, streamed frame by frame.

    Parameters
    ----------
    movie : path or numpy.ndarray
        Movie file (``.mrcs``, ``.mrc`` with frames, ``.tif``, ``.eer``) or
        ``(F, H, W)`` array.
    frames : str or slice, optional
        Frame range ``"A:B"`` (0-based, B exclusive); default all frames. For
        EER movies the range counts fractions (groups of raw frames).
    align : bool
        Estimate and undo global drift (:func:`estimate_drift`) before summing.
    gain : path or numpy.ndarray, optional
        Gain reference multiplied into every frame.
    eer_grouping : int
        EER movies only: raw frames summed into each fraction.
    name : str, optional
        Label of the pair (default: the file stem).
    progress, cancel : callable, optional
        ``progress(done, total)`` over frame reads; ``cancel()`` -> True raises
        :class:`~napari_cryodenoise.errors.Cancelled`.
    frame_groups : int
        Also keep the frames summed in this many interleaved groups (rounded down to
        an even number no larger than the frame count; 0 or fewer than 4 frames: none),
        so training can draw random partitions of the frames (``pairing="random"``).
        Costs ``frame_groups`` float32 images of memory.
    gain_name : str, optional
        What errors call a gain given as an array (the file it was read from).

    Returns
    -------
    ImagePair
        float32 halves; the 1st, 3rd, ... chosen frame in ``even``.

    """
    reader = MovieReader(movie, gain=gain, eer_grouping=eer_grouping, gain_name=gain_name)
    idx = reader.indices(frames)
    n = len(idx)
    total_work = 2 * n if align else n
    shifts = None
    if align:
        shifts = estimate_drift(
            reader,
            idx,
            cancel=cancel,
            progress=None if progress is None else (lambda d, t: progress(d, total_work)),
        )
    h, w = reader.frame_shape
    g = group_count(n, frame_groups)
    n_acc = g or 2
    if shifts is not None:
        ctype = np.complex64 if g else np.complex128
        acc = [np.zeros((h, w // 2 + 1), ctype) for _ in range(n_acc)]
    else:
        acc = [np.zeros((h, w), np.float32 if g else np.float64) for _ in range(n_acc)]
    for k, i in enumerate(idx):
        if cancel is not None and cancel():
            raise Cancelled("movie summation cancelled")
        f = reader.frame(i)
        if shifts is not None:
            acc[k % n_acc] += sfft.rfft2(f, workers=-1) * phase_ramp((h, w), tuple(shifts[k]))
        else:
            acc[k % n_acc] += f
        if progress is not None:
            progress(total_work - n + k + 1, total_work)
    if shifts is not None:
        parts = [sfft.irfft2(a, s=(h, w), workers=-1).astype(np.float32) for a in acc]
    else:
        parts = [a.astype(np.float32, copy=False) for a in acc]
    groups = None
    if g:
        groups = np.stack(parts)
        halves = [groups[0::2].sum(0, dtype=np.float64), groups[1::2].sum(0, dtype=np.float64)]
        halves = [hv.astype(np.float32) for hv in halves]
    else:
        halves = parts
    source = "" if isinstance(movie, np.ndarray) else str(movie)
    files = (f"{source} (even frames)", f"{source} (odd frames)") if source else ()
    return ImagePair(
        halves[0],
        halves[1],
        name=name or reader.name,
        shifts=shifts,
        files=files,
        groups=groups,
        pixel_size=reader.pixel_size,
    )


def group_count(frames: int, wanted: int) -> int:
    """Frame groups kept for ``frames`` frames: ``wanted`` made even and <= frames; 0 if < 4."""
    g = min(int(wanted), int(frames))
    g -= g % 2
    return g if g >= 4 else 0


def pairs_from_movies(
    movies: Sequence[str | os.PathLike | np.ndarray],
    *,
    frames: str | slice | None = None,
    align: bool = False,
    gain: str | os.PathLike | np.ndarray | None = None,
    eer_grouping: int = DEFAULT_EER_GROUPING,
    save_dir: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    frame_groups: int = DEFAULT_FRAME_GROUPS,
    group_memory: int | None = None,
) -> list[ImagePair]:
    """Even/odd pairs from several movies (see :func:`pair_from_movie`).

    Parameters
    ----------
    movies : sequence of path or numpy.ndarray
        Movie files or ``(F, H, W)`` arrays.
    frames, align, gain, eer_grouping, cancel
        As in :func:`pair_from_movie`; ``gain`` applies to all movies.
    save_dir : path, optional
        Write each pair as ``<stem>_even.mrc`` / ``<stem>_odd.mrc`` there and
        keep them memory-mapped instead of in RAM (reusable with
        :func:`pairs_from_folders`-style ``--even/--odd`` later).
    progress : callable, optional
        ``progress(done_movies, total_movies)``.
    frame_groups : int
        As in :func:`pair_from_movie`.
    group_memory : int, optional
        Bytes the frame groups of all movies may take (default: a quarter of the free
        memory, at most 8 GiB); movies beyond it keep only their even/odd sums.

    """
    if not movies:
        raise InputError("no movies given")
    if group_memory is None:
        group_memory = _default_group_memory()
    gain_arr = None
    if gain is not None and not isinstance(gain, np.ndarray):
        gain_arr, _ = read_image(gain, mmap=False)
        gain_arr = np.asarray(gain_arr, np.float32)
    elif gain is not None:
        gain_arr = gain
    inputs = {Path(m).resolve() for m in movies if not isinstance(m, np.ndarray)}
    if gain is not None and not isinstance(gain, np.ndarray):
        inputs.add(Path(gain).resolve())
    out: list[ImagePair] = []
    for k, movie in enumerate(movies):
        pair = pair_from_movie(
            movie,
            frames=frames,
            align=align,
            gain=gain_arr,
            eer_grouping=eer_grouping,
            cancel=cancel,
            name=None if not isinstance(movie, np.ndarray) else f"movie{k}",
            frame_groups=frame_groups,
            gain_name=None if gain is None or isinstance(gain, np.ndarray) else str(gain),
        )
        if pair.groups is not None:
            group_memory -= pair.groups.nbytes
            if group_memory < 0:
                pair.groups = None  # past the budget: this movie trains on even/odd only
        if save_dir is not None:
            pair = _save_pair(pair, Path(save_dir), protect=inputs)
        out.append(pair)
        if progress is not None:
            progress(k + 1, len(movies))
    return out


def _save_pair(pair: ImagePair, folder: Path, *, protect: set[Path]) -> ImagePair:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for half, data in (("even", pair.even), ("odd", pair.odd)):
        path = folder / f"{pair.name}_{half}.mrc"
        write_mrc(path, data, protect=tuple(protect))
        arrays.append(read_image(path, mmap=True)[0])
    return ImagePair(
        arrays[0],
        arrays[1],
        name=pair.name,
        shifts=pair.shifts,
        files=pair.files,
        groups=pair.groups,
        pixel_size=pair.pixel_size,
    )


def _default_group_memory() -> int:
    from ..engine import host_memory_share

    return host_memory_share(8 << 30)


def pair_from_arrays(even: np.ndarray, odd: np.ndarray, *, name: str = "pair") -> ImagePair:
    """Make a pair from two arrays (e.g. two napari layers); no copy is made."""
    even = np.asarray(even)
    odd = np.asarray(odd)
    _check_real(even, f"{name} (even)")
    _check_real(odd, f"{name} (odd)")
    return ImagePair(even, odd, name=name)


def _check_real(arr: np.ndarray, label: str) -> None:
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{label}: unsupported pixel type {arr.dtype}")


def _read_half(path: Path) -> tuple[np.ndarray, float | None]:
    """A half sum (memory-mapped) and its pixel size."""
    data, info = read_image(path, mmap=True)
    if data.ndim == 3 and info.kind in ("stack", "movie"):
        raise InputError(
            f"{path}: is a stack of {data.shape[0]} frames, not a half sum; pass movies with "
            "--movies, or sum the halves first"
        )
    _check_real(data, str(path))
    return data, info.known_pixel_size


def pairs_from_files(
    even: Sequence[str | os.PathLike], odd: Sequence[str | os.PathLike]
) -> list[ImagePair]:
    """Pairs from two equally long lists of files (the i-th even goes with the i-th odd).

    A single folder on each side is matched by file name
    (:func:`pairs_from_folders`).
    """
    even = [Path(p) for p in even]
    odd = [Path(p) for p in odd]
    if len(even) == 1 and len(odd) == 1 and even[0].is_dir() and odd[0].is_dir():
        return pairs_from_folders(even[0], odd[0])
    if len(even) != len(odd):
        raise InputError(f"{len(even)} even files but {len(odd)} odd files; they go in pairs")
    if not even:
        raise InputError("no even/odd files given")
    pairs = []
    for e, o in zip(even, odd, strict=True):
        if e.resolve() == o.resolve():
            raise InputError(f"{e}: the same file is given as even and odd half")
        (a, apix), (b, _) = _read_half(e), _read_half(o)
        if a.shape != b.shape:
            raise InputError(f"{e} is {a.shape} but {o} is {b.shape}; halves must match")
        pairs.append(ImagePair(a, b, name=e.stem, files=(str(e), str(o)), pixel_size=apix))
    return pairs


def pairs_from_folders(even_dir: str | os.PathLike, odd_dir: str | os.PathLike) -> list[ImagePair]:
    """Pairs from two folders, matched by file name (``a.mrc`` with ``a.mrc``).

    Also matched up to the half tag (``a_EVN.mrc`` with ``a_ODD.mrc``, ``a_even``
    with ``a_odd``); see :func:`.half_names.match_half_folders`.
    """
    files = match_half_folders(even_dir, odd_dir)
    return pairs_from_files([e for e, _ in files], [o for _, o in files])


def read_single_images(paths: Sequence[str | os.PathLike | np.ndarray]) -> list[ImagePair]:
    """Single exposures (micrographs, tomograms) for masked / blind-spot training.

    Stacks (``.mrcs``) contribute one image per slice.
    """
    out: list[ImagePair] = []
    for k, p in enumerate(paths):
        if isinstance(p, np.ndarray):
            _check_real(p, f"image {k}")
            out.append(ImagePair(p, None, name=f"image{k}"))
            continue
        data, info = read_image(p, mmap=True)
        _check_real(data, str(p))
        apix = info.known_pixel_size
        if data.ndim == 3 and info.kind in ("stack", "movie"):
            out.extend(
                ImagePair(
                    data[i],
                    None,
                    name=f"{Path(p).stem}_{i}",
                    files=(f"{p} (slice {i})",),
                    pixel_size=apix,
                )
                for i in range(data.shape[0])
            )
        else:
            out.append(ImagePair(data, None, name=Path(p).stem, files=(str(p),), pixel_size=apix))
    if not out:
        raise InputError("no images given")
    return out
