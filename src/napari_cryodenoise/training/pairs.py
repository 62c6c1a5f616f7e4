"""Noise2Noise training pairs: even/odd half sums of movies, or ready-made halves.

A movie (MRC stack ``.mrcs``/``.mrc``, a multi-page TIFF, or an EER file
whose raw frames are summed in groups, see :class:`~napari_cryodenoise.io.EerMovie`)
is read one frame at a time, so memory stays at a few frame-sized buffers
whatever the number of frames. The chosen frames (``frames=A:B``,
Python slice semantics, 0-based) are split into alternating halves: the 1st,
3rd, 5th ... chosen frame go to ``even``, the 2nd, 4th ... to ``odd``. Each
frame can be multiplied by a gain reference and, optionally, shifted to undo
global stage drift before it is added to its half (:func:`estimate_drift`).

Ready-made halves come from two lists of files, two folders matched by file
name, or two arrays (e.g. two napari layers).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from scipy import fft as sfft

from ..errors import Cancelled, InputError
from ..io import (
    DEFAULT_EER_GROUPING,
    EER_SUFFIXES,
    EerMovie,
    read_image,
    write_mrc,
)
from ..types import CancelFn, ProgressFn

__all__ = [
    "ImagePair",
    "MovieReader",
    "PairSource",
    "estimate_drift",
    "pair_from_arrays",
    "pair_from_movie",
    "pairs_from_files",
    "pairs_from_folders",
    "pairs_from_movies",
    "parse_frame_range",
    "read_single_images",
]


#: Alignment spectra kept in memory at most (bytes); frames are Fourier-cropped to fit.
_ALIGN_MEMORY = 256 * 1024**2
#: Largest side of the Fourier-cropped frames used to measure drift.
_ALIGN_SIZE = 1024


@dataclass
class ImagePair:
    """Two independent noisy observations of one field (2D image or 3D volume).

    Attributes
    ----------
    even, odd : numpy.ndarray
        Same shape, ``(H, W)`` or ``(D, H, W)``; any real dtype (converted to
        float32 crop by crop). ``odd`` is None for a single image (masked /
        blind-spot training).
    name : str
        Label (movie or file stem).
    shifts : numpy.ndarray or None
        ``(F, 2)`` shifts ``(dy, dx)`` applied to the chosen frames when they
        were aligned.
    files : tuple of str
        The files the halves were read from (even, odd), or the single image's file;
        empty for arrays. Errors about the pixels name them.

    """

    even: np.ndarray
    odd: np.ndarray | None
    name: str = ""
    shifts: np.ndarray | None = None
    files: tuple[str, ...] = ()
    _stats: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.odd is not None and self.even.shape != self.odd.shape:
            raise InputError(
                f"{self.name or 'pair'}: even and odd halves differ in shape "
                f"({self.even.shape} vs {self.odd.shape})"
            )
        if self.even.ndim not in (2, 3):
            raise InputError(
                f"{self.name or 'pair'}: expected a 2D image or a 3D volume, got shape "
                f"{self.even.shape}"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """Image shape."""
        return tuple(self.even.shape)

    @property
    def ndim(self) -> int:
        """2 for images, 3 for volumes."""
        return self.even.ndim

    def stats(self, which: str) -> tuple[float, float]:
        """Mean and standard deviation of ``"even"`` or ``"odd"`` (cached, chunked float64)."""
        if which not in self._stats:
            arr = self.even if which == "even" else self.odd
            if arr is None:
                raise ValueError("this pair has no odd half")
            try:
                self._stats[which] = _mean_std(arr)
            except InputError as err:
                raise InputError(f"{self._label(which)}: {err}") from None
        return self._stats[which]

    def _label(self, which: str) -> str:
        index = 1 if which == "odd" and len(self.files) > 1 else 0
        if self.files:
            return self.files[index]
        name = self.name or "image"
        return f"{name} ({which} half)" if self.odd is not None else name


#: What the trainer consumes: a sequence of pairs.
PairSource = Sequence[ImagePair]


def _mean_std(arr: np.ndarray) -> tuple[float, float]:
    """Mean and std over a (memory-mapped) array without a full float64 copy."""
    flat = arr.reshape(arr.shape[0], -1)
    total = 0.0
    total_sq = 0.0
    n = 0
    for start in range(0, flat.shape[0], 64):
        block = np.asarray(flat[start : start + 64], dtype=np.float64)
        total += float(block.sum())
        total_sq += float(np.square(block).sum())
        n += block.size
    mean = total / n
    var = max(total_sq / n - mean * mean, 0.0)
    std = float(np.sqrt(var))
    if not np.isfinite(mean) or not np.isfinite(std):
        raise InputError("image contains NaN or infinite values")
    return mean, std


# ----------------------------------------------------------------------------- frame ranges


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


# ----------------------------------------------------------------------------- movie frames


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

    """

    def __init__(
        self,
        source: str | os.PathLike | np.ndarray,
        *,
        gain=None,
        eer_grouping: int = DEFAULT_EER_GROUPING,
    ) -> None:
        self.eer_grouping = int(eer_grouping)
        if isinstance(source, np.ndarray):
            self.name = "array"
            self.path: Path | None = None
            data = source
        else:
            self.path = Path(source)
            self.name = self.path.stem
            data = self._open(self.path)
        if data.ndim != 3:
            raise InputError(
                f"{self.name}: a movie needs several frames (F, H, W), got shape {data.shape}"
            )
        self._data = data
        self.n_frames = int(data.shape[0])
        self.frame_shape = (int(data.shape[1]), int(data.shape[2]))
        if self.n_frames < 2:
            raise InputError(f"{self.name}: a movie needs at least 2 frames, has {self.n_frames}")
        self.gain = None if gain is None else self._load_gain(gain)

    def _open(self, path: Path) -> np.ndarray | _TiffFrames | EerMovie:
        suffix = path.suffix.lower()
        if suffix in EER_SUFFIXES:
            return EerMovie(path, grouping=self.eer_grouping)
        if suffix in (".tif", ".tiff"):
            try:
                data = tifffile.memmap(path, mode="r")
            except (ValueError, OSError, tifffile.TiffFileError):
                return _TiffFrames(path)  # compressed: decode page by page
            return np.squeeze(data) if data.ndim > 3 else data
        data, _ = read_image(path, mmap=True)
        return data

    def _load_gain(self, gain) -> np.ndarray:
        if isinstance(gain, np.ndarray):
            g, label = gain, "gain reference"
        else:
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
                f"{self.name} are {self.frame_shape[1]} x {self.frame_shape[0]}{hint}"
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
                f"{self.name}: frame range {frames!r} selects {len(sel)} of {self.n_frames} "
                "frames; at least 2 are needed for even/odd halves"
            )
        return sel


# ----------------------------------------------------------------------------- alignment


def _crop_shape(shape: tuple[int, int], n_frames: int) -> tuple[int, int]:
    """Size of the Fourier-cropped frames used for drift estimation."""
    h, w = shape
    scale = min(1.0, _ALIGN_SIZE / max(h, w))
    # each kept spectrum is complex64: 8 bytes * h' * (w'/2+1)
    while n_frames * 8 * (h * scale) * (w * scale / 2 + 1) > _ALIGN_MEMORY and scale > 0.05:
        scale *= 0.8
    ch = max(16, int(h * scale) // 2 * 2)
    cw = max(16, int(w * scale) // 2 * 2)
    return min(ch, h - h % 2), min(cw, w - w % 2)


def _fourier_crop(spec: np.ndarray, shape: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """Keep the low frequencies of an rfft2 spectrum of ``shape`` for a smaller image ``out``."""
    h, _ = shape
    oh, ow = out
    top = spec[: oh // 2]
    bottom = spec[h - oh // 2 :]
    return np.concatenate([top, bottom], axis=0)[:, : ow // 2 + 1]


def _phase_ramp(shape: tuple[int, int], shift: tuple[float, float]) -> np.ndarray:
    """rfft2-grid factor that shifts an image by ``shift`` (dy, dx) pixels."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    return np.exp(-2j * np.pi * (ky * shift[0] + kx * shift[1]))


def _peak_subpixel(
    cc: np.ndarray, radius: float, centre: Sequence[float] = (0.0, 0.0)
) -> tuple[float, float]:
    """Sub-pixel location (dy, dx) of the maximum of a circular cross-correlation.

    Only displacements within ``radius`` (per axis) of ``centre`` are searched.
    """
    h, w = cc.shape
    cy, cx = h // 2, w // 2
    cc = np.fft.fftshift(cc)
    yy = np.abs(np.arange(h) - cy - centre[0])[:, None]
    xx = np.abs(np.arange(w) - cx - centre[1])[None, :]
    masked = np.where((yy <= radius) & (xx <= radius), cc, -np.inf)
    if not np.isfinite(masked).any():
        return float(centre[0]), float(centre[1])
    py, px = np.unravel_index(int(np.argmax(masked)), cc.shape)

    def refine(m1: float, c0: float, p1: float) -> float:
        denom = m1 - 2.0 * c0 + p1
        if denom >= 0:
            return 0.0
        return float(np.clip(0.5 * (m1 - p1) / denom, -0.5, 0.5))

    dy = refine(cc[(py - 1) % h, px], cc[py, px], cc[(py + 1) % h, px])
    dx = refine(cc[py, (px - 1) % w], cc[py, px], cc[py, (px + 1) % w])
    return py - cy + dy, px - cx + dx


def _smooth_trajectory(time: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Least-squares polynomial (degree 1-3, chosen by BIC) through noisy per-frame shifts."""
    n = len(time)
    best, best_bic = measured, np.inf
    for degree in range(1, min(3, n - 2) + 1):
        design = np.vander(time, degree + 1)
        coef, *_ = np.linalg.lstsq(design, measured, rcond=None)
        fit = design @ coef
        rss = float(np.sum((measured - fit) ** 2)) + 1e-12
        bic = 2 * n * np.log(rss / (2 * n)) + 2 * (degree + 1) * np.log(2 * n)
        if bic < best_bic:
            best, best_bic = fit, bic
    return best


def estimate_drift(
    reader: MovieReader,
    indices: Sequence[int],
    *,
    iterations: int = 4,
    max_shift: float | None = None,
    filter_px: float = 5.0,
    smooth: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> np.ndarray:
    """Global per-frame shifts that align the chosen frames (cross-correlation).

    One streaming pass Fourier-transforms each frame and keeps a low-pass,
    Fourier-cropped spectrum (at most ~1024 px per side, 256 MB in all).
    Then, ``iterations`` times, every frame is cross-correlated with the sum
    of all *other* frames at their current shifts (leaving the frame out
    avoids the self-correlation of its own noise at zero shift), the peak is
    located to sub-pixel precision by a parabolic fit, and the shifts are
    re-centred to zero mean. With ``smooth`` the shifts are then replaced by a
    least-squares polynomial in time (linear, quadratic or cubic, chosen by
    the Bayesian information criterion), as stage drift is smooth: this
    averages out the large per-frame errors of low-dose frames, and later
    iterations search only near that trajectory.

    Parameters
    ----------
    reader : MovieReader
        The movie.
    indices : sequence of int
        Frames to align.
    iterations : int
        Refinement rounds against the leave-one-out reference.
    max_shift : float, optional
        Largest shift searched, px at full resolution (default: an eighth of
        the smaller side, at most 64 px).
    filter_px : float
        Gaussian low-pass (sigma, px of the cropped frames) applied to the
        cross-correlation to suppress shot noise.
    smooth : bool
        Fit a smooth trajectory (see above) instead of independent shifts.
    progress, cancel : callable, optional
        ``progress(done, total)`` over the frames read; ``cancel()`` -> True stops.

    Returns
    -------
    numpy.ndarray
        ``(len(indices), 2)`` shifts ``(dy, dx)`` in px to apply to each frame
        (zero mean).

    """
    shape = reader.frame_shape
    n = len(indices)
    crop = _crop_shape(shape, n)
    scale = np.array([shape[0] / crop[0], shape[1] / crop[1]])
    ky = np.fft.fftfreq(crop[0])[:, None]
    kx = np.fft.rfftfreq(crop[1])[None, :]
    lowpass = np.exp(-2.0 * (np.pi * filter_px) ** 2 * (ky**2 + kx**2)).astype(np.float32)
    spectra = np.empty((n, crop[0], crop[1] // 2 + 1), np.complex64)
    for k, i in enumerate(indices):
        if cancel is not None and cancel():
            raise Cancelled("drift estimation cancelled")
        f = reader.frame(i)
        f -= f.mean()
        spectra[k] = _fourier_crop(sfft.rfft2(f, workers=-1), shape, crop)
        if progress is not None:
            progress(k + 1, n)
    limit = min(min(shape) / 8.0, 64.0) if max_shift is None else float(max_shift)
    search = np.full(n, max(1.0, limit / scale.max()))
    shifts = np.zeros((n, 2))  # in cropped px
    time = np.linspace(-1.0, 1.0, n)
    for _ in range(max(1, iterations)):
        aligned = [
            spectra[k] * _phase_ramp(crop, tuple(s)).astype(np.complex64)
            for k, s in enumerate(shifts)
        ]
        total = np.sum(aligned, axis=0)
        measured = np.empty_like(shifts)
        for k in range(n):
            ref = total - aligned[k]
            cc = sfft.irfft2(ref * np.conj(spectra[k]) * lowpass, s=crop, workers=-1)
            measured[k] = _peak_subpixel(cc, search[k], centre=shifts[k])
        if smooth and n >= 3:
            new = _smooth_trajectory(time, measured)
            residual = np.sqrt(np.mean(np.sum((measured - new) ** 2, axis=1)))
            search = np.full(n, max(2.0, 3.0 * residual))
        else:
            new = measured
        new -= new.mean(axis=0)
        done = np.max(np.abs(new - shifts)) < 0.01
        shifts = new
        if done:
            break
    return shifts * scale


# ----------------------------------------------------------------------------- pairs


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

    Returns
    -------
    ImagePair
        float32 halves; the 1st, 3rd, ... chosen frame in ``even``.

    """
    reader = MovieReader(movie, gain=gain, eer_grouping=eer_grouping)
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
    if shifts is not None:
        acc = [np.zeros((h, w // 2 + 1), np.complex128) for _ in range(2)]
    else:
        acc = [np.zeros((h, w), np.float64) for _ in range(2)]
    for k, i in enumerate(idx):
        if cancel is not None and cancel():
            raise Cancelled("movie summation cancelled")
        f = reader.frame(i)
        if shifts is not None:
            acc[k % 2] += sfft.rfft2(f, workers=-1) * _phase_ramp((h, w), tuple(shifts[k]))
        else:
            acc[k % 2] += f
        if progress is not None:
            progress(total_work - n + k + 1, total_work)
    if shifts is not None:
        halves = [sfft.irfft2(a, s=(h, w), workers=-1).astype(np.float32) for a in acc]
    else:
        halves = [a.astype(np.float32) for a in acc]
    source = "" if isinstance(movie, np.ndarray) else str(movie)
    files = (f"{source} (even frames)", f"{source} (odd frames)") if source else ()
    return ImagePair(halves[0], halves[1], name=name or reader.name, shifts=shifts, files=files)


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

    """
    if not movies:
        raise InputError("no movies given")
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
        )
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
    return ImagePair(arrays[0], arrays[1], name=pair.name, shifts=pair.shifts, files=pair.files)


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


def _read_half(path: Path) -> np.ndarray:
    data, info = read_image(path, mmap=True)
    if data.ndim == 3 and info.kind in ("stack", "movie"):
        raise InputError(
            f"{path}: is a stack of {data.shape[0]} frames, not a half sum; pass movies with "
            "--movies, or sum the halves first"
        )
    _check_real(data, str(path))
    return data


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
        a, b = _read_half(e), _read_half(o)
        if a.shape != b.shape:
            raise InputError(f"{e} is {a.shape} but {o} is {b.shape}; halves must match")
        pairs.append(ImagePair(a, b, name=e.stem, files=(str(e), str(o))))
    return pairs


def pairs_from_folders(even_dir: str | os.PathLike, odd_dir: str | os.PathLike) -> list[ImagePair]:
    """Pairs from two folders, matched by file name (``a.mrc`` with ``a.mrc``).

    Also matched up to the half tag (``a_EVN.mrc`` with ``a_ODD.mrc``, ``a_even``
    with ``a_odd``); see :func:`.pair_sources.match_half_folders`.
    """
    from .pair_sources import match_half_folders

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
        if data.ndim == 3 and info.kind in ("stack", "movie"):
            out.extend(
                ImagePair(data[i], None, name=f"{Path(p).stem}_{i}", files=(f"{p} (slice {i})",))
                for i in range(data.shape[0])
            )
        else:
            out.append(ImagePair(data, None, name=Path(p).stem, files=(str(p),)))
    if not out:
        raise InputError("no images given")
    return out
