"""Image-quality metrics for denoised cryo-EM images (numpy and scipy only).

Four families, all accumulating in float64, all reading memory-mapped arrays
without copying them whole where they can:

* **Region SNR** (Topaz-Denoise, Bepler et al. 2020): contrast of paired
  signal / background regions against the background's variance, in dB.
  Regions come from particle picks (:func:`regions_from_picks`), masks,
  label images or polygons.
* **Fourier ring / shell correlation** between two images or volumes
  (:func:`fourier_ring_correlation`, :func:`fourier_shell_correlation`), with
  resolution read-out at 0.143, 0.5, the 1/2-bit and 1-bit criteria.
* **Ground-truth scores**: PSNR and SNR after the best affine fit, SSIM
  (Wang et al. 2004, Gaussian window), and the noise2noise hold-out error.
* **No-reference noise level** (:func:`estimate_noise_sigma`).

Invalid input (NaN or infinite pixels, mismatched shapes, empty regions)
raises :class:`napari_cryodenoise.errors.InputError`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import fft as sfft
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from .errors import InputError

__all__ = [
    "FRCResult",
    "Region",
    "affine_fit",
    "estimate_noise_sigma",
    "fourier_ring_correlation",
    "fourier_shell_correlation",
    "frc_threshold",
    "holdout_nmse",
    "pair_snr_db",
    "psnr_db",
    "region_from_box",
    "region_from_disc",
    "region_from_mask",
    "region_from_polygon",
    "regions_from_labels",
    "regions_from_picks",
    "regions_to_labels",
    "snr_db",
    "snr_vs_truth_db",
    "ssim",
]

Fit = Literal["affine", "match", "none"]
Criterion = float | Literal["half-bit", "one-bit", "3sigma"]

#: Elements per block when scanning large arrays (keeps temporaries ~128 MB).
_CHUNK = 1 << 24


# ----------------------------------------------------------------------------- validation


def _as_array(x: ArrayLike, name: str, *, min_ndim: int = 1) -> np.ndarray:
    """View ``x`` as a real numeric array (no copy for arrays and memmaps) and check it."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    if arr.ndim < min_ndim:
        raise InputError(
            f"{name}: expected at least {min_ndim} dimension(s), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise InputError(f"{name}: the array is empty (shape {arr.shape})")
    _check_finite(arr, name)
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind != "f":
        return
    rows = max(1, _CHUNK // max(1, arr.size // arr.shape[0])) if arr.ndim > 1 else _CHUNK
    bad = 0
    for start in range(0, arr.shape[0], rows):  # blockwise: no image-sized temporaries
        bad += int(np.count_nonzero(~np.isfinite(arr[start : start + rows])))
    if bad:
        raise InputError(
            f"{name} contains {bad} NaN or infinite value(s); metrics need finite pixels "
            "(crop, mask or fill them first)"
        )


def _same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise InputError(
            f"{name_a} and {name_b} must have the same shape, got {a.shape} and {b.shape}"
        )


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


# ----------------------------------------------------------------------------- regions


@dataclass(frozen=True, eq=False)
class Region:
    """A set of pixels: a bounding box in the image plus an optional mask inside it.

    Storing only the box keeps hundreds of regions on a 4k micrograph cheap and
    reads a memory-mapped image only where the regions are.

    Attributes
    ----------
    slices : tuple of slice
        Bounding box, one slice per image axis (``(rows, cols)`` in 2D).
    mask : numpy.ndarray of bool or None
        Which pixels of the box belong to the region (shape of the box);
        None means the whole box.
    label : int
        Free tag: the pick index for regions made from picks, the label value
        for regions from label images, else the position in the input list.

    """

    slices: tuple[slice, ...]
    mask: np.ndarray | None = None
    label: int = -1

    @property
    def box_shape(self) -> tuple[int, ...]:
        """Shape of the bounding box."""
        return tuple(s.stop - s.start for s in self.slices)

    @property
    def size(self) -> int:
        """Number of pixels in the region."""
        return int(self.mask.sum()) if self.mask is not None else math.prod(self.box_shape)

    @property
    def center(self) -> tuple[float, ...]:
        """Centroid in array coordinates (``(row, col)`` in 2D)."""
        if self.mask is None:
            return tuple((s.start + s.stop - 1) / 2 for s in self.slices)
        idx = np.nonzero(self.mask)
        return tuple(float(i.mean()) + s.start for i, s in zip(idx, self.slices, strict=True))

    def fits(self, shape: Sequence[int]) -> bool:
        """Tell whether the bounding box lies inside an image of ``shape``."""
        return len(shape) == len(self.slices) and all(
            0 <= s.start < s.stop <= n for s, n in zip(self.slices, shape, strict=True)
        )

    def values(self, image: np.ndarray) -> np.ndarray:
        """Return the region's pixels of ``image`` as a 1-D float64 array."""
        box = _f64(image[self.slices])
        return box.reshape(-1) if self.mask is None else box[self.mask]

    def to_mask(self, shape: Sequence[int]) -> np.ndarray:
        """Return the region as a full-size boolean mask of ``shape``."""
        out = np.zeros(tuple(shape), dtype=bool)
        out[self.slices] = True if self.mask is None else self.mask
        return out


def region_from_disc(
    center_yx: Sequence[float], radius: float, *, label: int = -1
) -> Region:
    """Pixels whose centres lie within ``radius`` of ``center_yx`` (a disc or a ball).

    Parameters
    ----------
    center_yx : sequence of float
        Centre in array coordinates, ``(row, col)`` or ``(z, row, col)``.
    radius : float
        Radius in pixels (> 0).
    label : int
        Tag stored on the region.

    """
    if not radius > 0:
        raise InputError(f"region radius must be > 0, got {radius}")
    c = np.asarray(center_yx, dtype=np.float64)
    lo = np.ceil(c - radius).astype(int)
    hi = np.floor(c + radius).astype(int) + 1
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    d2 = sum((g - ci) ** 2 for g, ci in zip(grids, c, strict=True))
    mask = np.asarray(d2 <= radius * radius)
    return Region(tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True)), mask, label)


def region_from_box(
    center_yx: Sequence[float], radius: float, *, label: int = -1
) -> Region:
    """Square (cube) of pixels whose centres are within ``radius`` of ``center_yx`` per axis."""
    if not radius > 0:
        raise InputError(f"region radius must be > 0, got {radius}")
    c = np.asarray(center_yx, dtype=np.float64)
    lo = np.ceil(c - radius).astype(int)
    hi = np.floor(c + radius).astype(int) + 1
    return Region(tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True)), None, label)


def region_from_mask(mask: ArrayLike, *, label: int = -1, name: str = "mask") -> Region:
    """Make a region from a full-size boolean mask (stored as its bounding box)."""
    m = np.asarray(mask)
    if m.dtype != bool:
        if m.dtype.kind not in "biu":
            raise InputError(f"{name}: expected a boolean mask, got dtype {m.dtype}")
        m = m != 0
    idx = np.nonzero(m)
    if idx[0].size == 0:
        raise InputError(f"{name}: the region mask is empty")
    slices = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    return Region(slices, np.ascontiguousarray(m[slices]), label)


def region_from_polygon(
    vertices_yx: ArrayLike, shape: Sequence[int], *, label: int = -1
) -> Region:
    """Pixels of a 2D image whose centres lie inside a polygon (even-odd rule).

    Parameters
    ----------
    vertices_yx : array_like, shape (K, 2)
        Polygon vertices as ``(row, col)``, e.g. ``layer.data[i]`` of a napari
        Shapes layer (its last two columns for layers with more dimensions).
    shape : sequence of int
        Image shape; the region is clipped to it.
    label : int
        Tag stored on the region.

    """
    v = np.asarray(vertices_yx, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 3 or v.shape[1] < 2:
        raise InputError(f"polygon needs at least 3 (row, col) vertices, got shape {v.shape}")
    v = v[:, -2:]
    h, w = int(shape[-2]), int(shape[-1])
    r0, c0 = (max(0, int(np.floor(v[:, k].min()))) for k in (0, 1))
    r1, c1 = (int(np.ceil(v[:, 0].max())) + 1, int(np.ceil(v[:, 1].max())) + 1)
    r1, c1 = min(h, r1), min(w, c1)
    if r0 >= r1 or c0 >= c1:
        raise InputError("polygon lies outside the image")
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    inside = np.zeros(yy.shape, dtype=bool)
    ya, xa = v[:, 0], v[:, 1]
    yb, xb = np.roll(ya, -1), np.roll(xa, -1)
    for y1, x1, y2, x2 in zip(ya, xa, yb, xb, strict=True):
        if y1 == y2:
            continue
        crosses = (y1 > yy) != (y2 > yy)
        x_at = x1 + (yy - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (xx < x_at)
    if not inside.any():
        raise InputError("polygon contains no pixel centre")
    return Region((slice(r0, r1), slice(c0, c1)), inside, label)


def regions_from_labels(
    signal_labels: ArrayLike, background_labels: ArrayLike
) -> tuple[list[Region], list[Region]]:
    """Pair regions of two label images by label value.

    Label ``k > 0`` in ``signal_labels`` is paired with label ``k`` in
    ``background_labels``; labels present in only one image are ignored
    (with a warning).

    Returns
    -------
    signal, background : list of Region
        In increasing label order; ``Region.label`` is the label value.

    """
    s = _as_array(signal_labels, "signal labels")
    b = _as_array(background_labels, "background labels")
    _same_shape(s, b, "signal labels", "background labels")
    if s.dtype.kind not in "iub" or b.dtype.kind not in "iub":
        raise InputError("label images must be integer arrays (0 = no region)")
    s_regions = _label_regions(s)
    b_regions = _label_regions(b)
    common = sorted(set(s_regions) & set(b_regions))
    lonely = sorted(set(s_regions) ^ set(b_regions))
    if lonely:
        warnings.warn(
            f"{len(lonely)} label(s) have no partner region and are ignored: {lonely[:10]}",
            RuntimeWarning,
            stacklevel=2,
        )
    if not common:
        raise InputError("no label value appears in both the signal and the background labels")
    return [s_regions[k] for k in common], [b_regions[k] for k in common]


def _label_regions(labels: np.ndarray) -> dict[int, Region]:
    lab = labels.astype(np.int64, copy=False)
    out: dict[int, Region] = {}
    for k, sl in enumerate(ndi.find_objects(np.where(lab > 0, lab, 0)), start=1):
        if sl is not None:
            out[k] = Region(tuple(sl), np.ascontiguousarray(lab[sl] == k), k)
    return out


def regions_from_picks(
    shape: Sequence[int],
    xy: ArrayLike,
    radius: float,
    *,
    region: Literal["disc", "box"] = "disc",
    min_separation: float = 3.0,
    search_radius: float = 10.0,
    n_candidates: int = 256,
    exclude: ArrayLike | None = None,
    seed: int = 0,
) -> tuple[list[Region], list[Region]]:
    """Signal regions at particle picks and a paired background region near each.

    The signal region of pick ``i`` is a disc (or box) of ``radius`` pixels
    centred on it. Its background region has the same shape, centred at the
    point closest to the pick among ``n_candidates`` random candidates
    (distance ``min_separation`` to ``search_radius`` radii from the pick) that

    * lies entirely inside the image,
    * is at least ``min_separation`` radii from *every* pick's centre (so with
      the default 3 it keeps a gap of one radius to any particle's disc), and
    * touches no pixel of ``exclude`` (e.g. a contamination or carbon mask).

    Candidates are drawn from a generator seeded with ``(seed, i)``, so the
    choice for one pick is reproducible and does not depend on the others'.

    Parameters
    ----------
    shape : sequence of int
        ``(height, width)`` of the image.
    xy : array_like, shape (N, 2)
        Pick centres as ``(x, y)`` pixels (x = column, y = row), as in RELION's
        ``rlnCoordinateX`` / ``rlnCoordinateY``.
    radius : float
        Region radius in pixels (for a box: half the side).
    region : {"disc", "box"}
        Region shape.
    min_separation, search_radius : float
        In units of ``radius`` (see above).
    n_candidates : int
        Random candidate positions tried per pick.
    exclude : array_like of bool, optional
        Pixels where no background region may lie (shape ``shape``).
    seed : int
        Seed of the candidate positions (>= 0).

    Returns
    -------
    signal, background : list of Region
        Same length; ``Region.label`` is the index of the pick in ``xy``.
        Picks whose signal region leaves the image, or for which no background
        position qualifies, are dropped (see :attr:`Region.label` for which
        were kept).

    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 2:
        raise InputError(f"picks need a 2D image shape, got {shape}")
    pts = np.asarray(xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise InputError(f"picks must be an (N, 2) array of x, y; got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise InputError("picks contain NaN or infinite coordinates")
    if not radius > 0:
        raise InputError(f"region radius must be > 0, got {radius}")
    if not 0 < min_separation < search_radius:
        raise InputError("need 0 < min_separation < search_radius (both in radii)")
    if int(seed) < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    make = {"disc": region_from_disc, "box": region_from_box}.get(region)
    if make is None:
        raise InputError(f"region must be 'disc' or 'box', got {region!r}")
    excl = None
    if exclude is not None:
        excl = np.asarray(exclude, dtype=bool)
        if excl.shape != shape:
            raise InputError(f"exclude mask shape {excl.shape} does not match image {shape}")
    yx = pts[:, ::-1]
    tree = cKDTree(yx) if len(yx) else None
    min_dist = min_separation * radius
    signal: list[Region] = []
    background: list[Region] = []
    for i, c in enumerate(yx):
        sig = make(c, radius, label=i)
        if not sig.fits(shape):
            continue
        rng = np.random.default_rng([seed, i])
        dist = np.sort(rng.uniform(min_separation, search_radius, n_candidates)) * radius
        angle = rng.uniform(0.0, 2 * np.pi, n_candidates)
        cand = c + np.stack([dist * np.sin(angle), dist * np.cos(angle)], axis=1)
        cand = np.rint(cand)
        nearest, _ = tree.query(cand, k=1)
        for j in np.nonzero(nearest >= min_dist)[0]:
            bg = make(cand[j], radius, label=i)
            if not bg.fits(shape):
                continue
            inside = True if bg.mask is None else bg.mask
            if excl is not None and np.any(excl[bg.slices] & inside):
                continue
            signal.append(sig)
            background.append(bg)
            break
    return signal, background


def regions_to_labels(regions: Sequence[Region], shape: Sequence[int]) -> np.ndarray:
    """Paint regions into an int32 label image (region ``k`` of the list gets ``k + 1``).

    Useful to show the signal and the chosen background regions as napari
    Labels layers. Later regions overwrite earlier ones where they overlap;
    regions are clipped to ``shape``.
    """
    shape = tuple(int(n) for n in shape)
    out = np.zeros(shape, dtype=np.int32)
    for k, r in enumerate(regions, start=1):
        clip = tuple(
            slice(max(0, s.start), min(n, s.stop)) for s, n in zip(r.slices, shape, strict=True)
        )
        if any(c.start >= c.stop for c in clip):
            continue
        if r.mask is None:
            out[clip] = k
        else:
            inner = tuple(slice(c.start - s.start, c.stop - s.start)
                          for c, s in zip(clip, r.slices, strict=True))
            out[clip][r.mask[inner]] = k
    return out


# ----------------------------------------------------------------------------- region SNR


def _coerce_regions(
    regions: Region | ArrayLike | Iterable[Region | ArrayLike], shape: tuple[int, ...], name: str
) -> list[Region]:
    if isinstance(regions, Region):
        return [regions]
    if isinstance(regions, np.ndarray) and regions.shape == shape:
        return [region_from_mask(regions, label=0, name=name)]
    if isinstance(regions, np.ndarray) and regions.ndim == len(shape) + 1:
        return [region_from_mask(m, label=k, name=f"{name}[{k}]") for k, m in enumerate(regions)]
    out: list[Region] = []
    for k, r in enumerate(regions):  # type: ignore[union-attr]
        if isinstance(r, Region):
            out.append(r)
        else:
            m = np.asarray(r)
            if m.shape != shape:
                raise InputError(f"{name}[{k}]: mask shape {m.shape} does not match image {shape}")
            out.append(region_from_mask(m, label=k, name=f"{name}[{k}]"))
    return out


def _pair_regions(
    shape: tuple[int, ...],
    signal_regions: object,
    background_regions: object,
) -> tuple[list[Region], list[Region]]:
    if background_regions is None:
        pairs = list(signal_regions)  # type: ignore[call-overload]
        if not all(isinstance(p, tuple | list) and len(p) == 2 for p in pairs):
            raise InputError(
                "without background_regions, signal_regions must be (signal, background) pairs"
            )
        sig = _coerce_regions([p[0] for p in pairs], shape, "signal")
        bg = _coerce_regions([p[1] for p in pairs], shape, "background")
        return sig, bg
    s_arr = signal_regions if isinstance(signal_regions, np.ndarray) else None
    b_arr = background_regions if isinstance(background_regions, np.ndarray) else None
    if (
        s_arr is not None
        and b_arr is not None
        and s_arr.shape == shape
        and b_arr.shape == shape
        and s_arr.dtype.kind in "iu"
        and b_arr.dtype.kind in "iu"
    ):
        return regions_from_labels(s_arr, b_arr)
    sig = _coerce_regions(signal_regions, shape, "signal")  # type: ignore[arg-type]
    bg = _coerce_regions(background_regions, shape, "background")  # type: ignore[arg-type]
    if len(sig) != len(bg):
        raise InputError(
            f"got {len(sig)} signal and {len(bg)} background regions; they must pair up"
        )
    return sig, bg


def pair_snr_db(
    image: ArrayLike,
    signal_regions: object,
    background_regions: object = None,
) -> np.ndarray:
    """Per-pair SNR in dB: ``10 log10((mean_s - mean_b)**2 / var_b)``.

    Parameters
    ----------
    image : array_like
        2D image (or volume); may be a memory map (only the regions are read).
    signal_regions, background_regions
        Paired regions, in one of these forms:

        * two sequences of :class:`Region` (as from :func:`regions_from_picks`)
          or of full-size boolean masks, paired by position;
        * two integer label images (0 = none), paired by label value;
        * ``signal_regions`` a sequence of ``(signal, background)`` pairs and
          ``background_regions`` None.

    Returns
    -------
    numpy.ndarray of float64
        One value per pair, NaN where it is undefined (constant background,
        or no contrast at all). ``var_b`` is the population variance (ddof 0).

    """
    img = np.asarray(image)
    if img.dtype.kind not in "biuf":
        raise InputError(f"image: expected a real numeric array, got dtype {img.dtype}")
    sig, bg = _pair_regions(img.shape, signal_regions, background_regions)
    out = np.full(len(sig), np.nan)
    for k, (s, b) in enumerate(zip(sig, bg, strict=True)):
        for r, what in ((s, "signal"), (b, "background")):
            if not r.fits(img.shape):
                raise InputError(
                    f"{what} region {k} ({r.slices}) lies outside the image {img.shape}"
                )
        sv, bv = s.values(img), b.values(img)
        if sv.size == 0 or bv.size < 2:
            raise InputError(
                f"region pair {k} is empty (signal {sv.size}, background {bv.size} px)"
            )
        if not (np.all(np.isfinite(sv)) and np.all(np.isfinite(bv))):
            raise InputError(f"region pair {k} contains NaN or infinite pixels")
        mb = bv.mean()
        var_b = np.mean((bv - mb) ** 2)
        contrast2 = (sv.mean() - mb) ** 2
        if var_b > 0 and contrast2 > 0:
            out[k] = 10.0 * math.log10(contrast2 / var_b)
    return out


def snr_db(
    image: ArrayLike,
    signal_regions: object,
    background_regions: object = None,
    *,
    average: Literal["db", "ratio"] = "db",
) -> float:
    """Micrograph SNR in dB from paired signal and background regions (Topaz-Denoise).

    For each pair ``i`` with signal pixels ``s_i`` and background pixels
    ``b_i``::

        snr_i = (mean(s_i) - mean(b_i))**2 / var(b_i)

    and the micrograph's SNR is, by default, the **mean of the per-pair dB
    values**, ``(10 / N) * sum_i log10(snr_i)``, i.e. the geometric mean of
    the ratios. This is how Bepler et al. (Nat. Commun. 11, 5208, 2020)
    average their manually paired regions (their eq. 4; the independent
    re-implementation by Salwig et al. 2024 does the same), so numbers are
    comparable with the paper's. It is also the better-behaved average: each
    pair is normalised by its own local background, so illumination gradients
    and ice thickness cancel, and a few pairs with huge contrast (picks on a
    contamination edge) cannot dominate as they would an arithmetic mean of
    ratios. ``average="ratio"`` gives ``10 log10(mean_i snr_i)`` instead.

    The measure is invariant to ``a * image + b`` (``a != 0``), so raw counts
    and normalised network outputs can be compared directly.

    Parameters
    ----------
    image : array_like
        The (raw or denoised) image; only the regions are read.
    signal_regions, background_regions
        See :func:`pair_snr_db`.
    average : {"db", "ratio"}
        Average dB values (paper, default) or ratios.

    Returns
    -------
    float
        SNR in dB. Pairs where it is undefined (constant background or zero
        contrast) are left out with a ``RuntimeWarning``.

    Raises
    ------
    InputError
        No pairs, mismatched counts, regions outside the image, NaN pixels,
        or no pair with a defined SNR.

    """
    values = pair_snr_db(image, signal_regions, background_regions)
    if values.size == 0:
        raise InputError("no signal/background region pairs to measure")
    ok = np.isfinite(values)
    if not ok.any():
        raise InputError(
            "SNR undefined for every region pair (constant background or no contrast)"
        )
    if not ok.all():
        warnings.warn(
            f"{int((~ok).sum())} of {values.size} region pairs have an undefined SNR and are "
            "left out",
            RuntimeWarning,
            stacklevel=2,
        )
    if average == "db":
        return float(values[ok].mean())
    if average == "ratio":
        return float(10.0 * math.log10(np.mean(10.0 ** (values[ok] / 10.0))))
    raise InputError(f"average must be 'db' or 'ratio', got {average!r}")


# ----------------------------------------------------------------------------- FRC / FSC


def frc_threshold(criterion: Criterion, n_coefficients: ArrayLike) -> np.ndarray:
    """Threshold curve for an FRC/FSC criterion.

    Parameters
    ----------
    criterion : float or {"half-bit", "one-bit", "3sigma"}
        A fixed value (0.143, 0.5, ...) or an information criterion of
        van Heel & Schatz (2005), which depends on the number ``n`` of Fourier
        coefficients in each ring/shell: half-bit
        ``(0.2071 + 1.9102/sqrt(n)) / (1.2071 + 0.9102/sqrt(n))``, one-bit
        ``(0.5 + 2.4142/sqrt(n)) / (1.5 + 1.4142/sqrt(n))``, 3-sigma ``3/sqrt(n)``.
    n_coefficients : array_like
        Coefficients per ring (:attr:`FRCResult.n_coefficients`).

    """
    n = np.maximum(np.asarray(n_coefficients, dtype=np.float64), 1.0)
    if isinstance(criterion, str):
        r = 1.0 / np.sqrt(n)
        if criterion == "half-bit":
            return (0.2071 + 1.9102 * r) / (1.2071 + 0.9102 * r)
        if criterion == "one-bit":
            return (0.5 + 2.4142 * r) / (1.5 + 1.4142 * r)
        if criterion == "3sigma":
            return 3.0 * r
        raise InputError(
            f"unknown FRC criterion {criterion!r}; use a number, 'half-bit', 'one-bit' or '3sigma'"
        )
    return np.full(n.shape, float(criterion))


@dataclass(frozen=True, eq=False)
class FRCResult:
    """A Fourier ring (2D) or shell (3D) correlation curve.

    Attributes
    ----------
    frequency : numpy.ndarray
        Ring centre spatial frequency in 1/Angstrom (1/pixel when
        ``pixel_size`` is 1). Ring ``k`` is at ``k * step`` with ``step`` the
        frequency spacing of the shortest axis; ring 0 is the origin.
    correlation : numpy.ndarray
        FRC value per ring (NaN where a ring is empty or one image has no power).
    n_coefficients : numpy.ndarray
        Fourier coefficients per ring over the full plane (both Friedel mates).
    pixel_size : float
        Angstrom per pixel used for ``frequency``.

    """

    frequency: np.ndarray
    correlation: np.ndarray
    n_coefficients: np.ndarray
    pixel_size: float

    def threshold(self, criterion: Criterion = 0.143) -> np.ndarray:
        """Return the threshold curve for ``criterion`` on this result's rings."""
        return frc_threshold(criterion, self.n_coefficients)

    def crossing_frequency(self, criterion: Criterion = 0.143) -> float | None:
        """First frequency (1/A) where the curve falls below the threshold.

        Walks the non-empty rings from ring 1 outwards and interpolates linearly
        between the last ring above and the first ring below. None if the curve
        never falls below (the images agree up to Nyquist); 0.0 if the first
        ring is already below.
        """
        diff = self.correlation - self.threshold(criterion)
        prev: int | None = None
        for k in range(1, len(diff)):
            if not np.isfinite(diff[k]):
                continue
            if diff[k] < 0:
                if prev is None:
                    return 0.0
                t = diff[prev] / (diff[prev] - diff[k])
                f0, f1 = self.frequency[prev], self.frequency[k]
                return float(f0 + t * (f1 - f0))
            prev = k
        return None

    def resolution(self, criterion: Criterion = 0.143) -> float:
        """Resolution in Angstrom at ``criterion`` (``1 / crossing_frequency``).

        If the curve never falls below the threshold, the Nyquist resolution
        ``1 / frequency[-1]`` is returned (the true value is at least that
        good); ``inf`` if it falls below at the first ring.
        """
        f = self.crossing_frequency(criterion)
        if f is None:
            return float(1.0 / self.frequency[-1])
        return float(1.0 / f) if f > 0 else math.inf

    def mean(self, f_min: float = 0.0, f_max: float | None = None) -> float:
        """Coefficient-weighted mean correlation over a frequency band (1/A)."""
        f_max = self.frequency[-1] if f_max is None else f_max
        sel = (self.frequency >= f_min) & (self.frequency <= f_max) & np.isfinite(self.correlation)
        sel[0] = False
        w = self.n_coefficients[sel]
        return float(np.sum(w * self.correlation[sel]) / np.sum(w)) if w.sum() else math.nan


def _taper_window(shape: tuple[int, ...], taper: float) -> np.ndarray | None:
    """Separable raised-cosine edge window; ``taper`` = fall-off as a fraction of each axis."""
    if taper <= 0:
        return None
    if taper > 0.5:
        raise InputError(f"taper must be in [0, 0.5], got {taper}")
    window: np.ndarray | None = None
    for axis, n in enumerate(shape):
        width = max(1, int(round(taper * n)))
        w = np.ones(n)
        ramp = 0.5 * (1.0 - np.cos(np.pi * (np.arange(width) + 0.5) / width))
        w[:width] = ramp
        w[n - width :] = np.minimum(w[n - width :], ramp[::-1])
        view = w.reshape([-1 if a == axis else 1 for a in range(len(shape))])
        window = view if window is None else window * view
    return window


def _prepare(x: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """Float64 copy of ``x`` minus its (weighted) mean, times the weight."""
    out = np.array(x, dtype=np.float64)
    if weight is None:
        out -= out.mean()
        return out
    out -= np.sum(out * weight) / np.sum(weight)
    out *= weight
    return out


def _ring_index(shape: tuple[int, ...], bin_width: float) -> tuple[np.ndarray, float, int]:
    """Ring index of every rfftn coefficient, the ring step (cycles/px) and the last ring."""
    step = bin_width / min(shape)
    r2 = np.zeros([1] * len(shape))
    for axis, n in enumerate(shape):
        f = sfft.rfftfreq(n) if axis == len(shape) - 1 else sfft.fftfreq(n)
        r2 = r2 + (f**2).reshape([-1 if a == axis else 1 for a in range(len(shape))])
    index = np.rint(np.sqrt(r2) / step).astype(np.int64)
    last = int(math.floor(0.5 / step + 1e-9))
    return index, step, last


def _rfft_weights(shape: tuple[int, ...]) -> np.ndarray:
    """Multiplicity of each rfftn coefficient in the full spectrum (1 or 2)."""
    n = shape[-1]
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w.reshape([1] * (len(shape) - 1) + [-1])


def fourier_ring_correlation(
    image_a: ArrayLike,
    image_b: ArrayLike,
    *,
    pixel_size: float = 1.0,
    taper: float = 0.05,
    mask: ArrayLike | None = None,
    bin_width: float = 1.0,
    workers: int | None = None,
) -> FRCResult:
    """Fourier ring (2D) or shell (3D, any nD) correlation of two images.

    ``FRC(k) = Re sum F_a F_b* / sqrt(sum |F_a|^2 sum |F_b|^2)`` over the
    coefficients of ring ``k``. Typical pairs: the even and odd half sums of a
    movie; ``denoise(even)`` vs ``denoise(odd)``; ``denoise(even)`` vs the raw
    odd half. Both images have their (weighted) mean removed, then are
    multiplied by the edge taper and the mask before the FFT, so the periodic
    boundary's jump does not add a spurious correlated cross to the spectrum.

    Parameters
    ----------
    image_a, image_b : array_like
        Same shape, 2D or more (memory maps are fine).
    pixel_size : float
        Angstrom per pixel, for ``frequency`` in 1/A (1.0 gives 1/px).
    taper : float
        Width of the raised-cosine fall-off at every edge as a fraction of
        the axis length (0 disables; default 0.05).
    mask : array_like, optional
        Soft mask in [0, 1] (same shape), multiplied with the taper.
    bin_width : float
        Ring width in units of the shortest axis's frequency spacing.
    workers : int, optional
        FFT threads (scipy.fft); default 1.

    Returns
    -------
    FRCResult
        Rings from 0 to the Nyquist frequency of the shortest axis (corner
        frequencies beyond it are left out).

    """
    a = _as_array(image_a, "image_a", min_ndim=2)
    b = _as_array(image_b, "image_b", min_ndim=2)
    _same_shape(a, b, "image_a", "image_b")
    if not pixel_size > 0:
        raise InputError(f"pixel_size must be > 0, got {pixel_size}")
    if not bin_width > 0:
        raise InputError(f"bin_width must be > 0, got {bin_width}")
    weight = _taper_window(a.shape, taper)
    if mask is not None:
        m = _as_array(mask, "mask")
        _same_shape(a, m, "image", "mask")
        weight = _f64(m) if weight is None else weight * m
        if not np.any(weight > 0):
            raise InputError("mask is zero everywhere")
    fa = sfft.rfftn(_prepare(a, weight), workers=workers or 1)
    fb = sfft.rfftn(_prepare(b, weight), workers=workers or 1)
    index, step, last = _ring_index(a.shape, bin_width)
    nbin = last + 1
    index[index > last] = nbin  # corners beyond Nyquist: an overflow bin, dropped below
    index = index.reshape(-1)
    mult = np.broadcast_to(_rfft_weights(a.shape), fa.shape).reshape(-1)

    def ring_sum(values: np.ndarray) -> np.ndarray:
        return np.bincount(index, values.reshape(-1) * mult, nbin + 1)[:nbin]

    cross = ring_sum(fa.real * fb.real + fa.imag * fb.imag)
    pa = ring_sum(fa.real**2 + fa.imag**2)
    pb = ring_sum(fb.real**2 + fb.imag**2)
    count = np.bincount(index, mult, nbin + 1)[:nbin]
    with np.errstate(invalid="ignore", divide="ignore"):
        frc = cross / np.sqrt(pa * pb)
    frc[(count == 0) | ~(pa * pb > 0)] = np.nan
    freq = np.arange(nbin) * step / pixel_size
    return FRCResult(freq, frc, count, float(pixel_size))


def fourier_shell_correlation(
    volume_a: ArrayLike, volume_b: ArrayLike, **kwargs: object
) -> FRCResult:
    """Fourier shell correlation of two volumes: :func:`fourier_ring_correlation` in 3D.

    Takes the same keyword arguments; rings become spherical shells.
    """
    a = np.asarray(volume_a)
    if a.ndim != 3:
        raise InputError(f"FSC needs 3D volumes, got shape {a.shape}")
    return fourier_ring_correlation(volume_a, volume_b, **kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- ground truth


def affine_fit(image: ArrayLike, reference: ArrayLike) -> tuple[float, float]:
    """Least-squares ``a, b`` minimising ``sum (a * image + b - reference)**2``.

    A constant image gives ``a = 0`` and ``b = mean(reference)``.
    """
    x = _as_array(image, "image")
    t = _as_array(reference, "reference")
    _same_shape(x, t, "image", "reference")
    return _affine(x, t)


def _affine(x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    xm = float(np.mean(x, dtype=np.float64))
    tm = float(np.mean(t, dtype=np.float64))
    sxx = sxt = 0.0
    xf, tf = x.reshape(-1), t.reshape(-1)
    for start in range(0, xf.size, _CHUNK):
        dx = _f64(xf[start : start + _CHUNK]) - xm
        dt = _f64(tf[start : start + _CHUNK]) - tm
        sxx += float(dx @ dx)
        sxt += float(dx @ dt)
    a = sxt / sxx if sxx > 0 else 0.0
    return a, tm - a * xm


def _fitted(image: ArrayLike, truth: ArrayLike, fit: Fit) -> tuple[np.ndarray, np.ndarray]:
    """``image`` mapped onto ``truth``'s units, both as float64.

    ``"affine"``: least squares ``a * x + b``. ``"match"``: same mean and
    standard deviation as ``truth`` (sign of ``a`` from the correlation), so a
    noisy image is not shrunk towards its mean. ``"none"``: as is.
    """
    x = _as_array(image, "image")
    t = _as_array(truth, "truth")
    _same_shape(x, t, "image", "truth")
    if fit == "none":
        return _f64(x), _f64(t)
    if fit not in ("affine", "match"):
        raise InputError(f"fit must be 'affine', 'match' or 'none', got {fit!r}")
    a, b = _affine(x, t)
    xf = _f64(x)
    if fit == "match":
        sx = float(np.std(xf))
        st = float(np.std(t, dtype=np.float64))
        a = math.copysign(st / sx, a) if sx > 0 else 0.0
        b = float(np.mean(t, dtype=np.float64)) - a * float(xf.mean())
    xf *= a
    xf += b
    return xf, _f64(t)


def _mse(x: np.ndarray, t: np.ndarray) -> float:
    xf, tf = x.reshape(-1), t.reshape(-1)
    total = 0.0
    for start in range(0, xf.size, _CHUNK):
        d = xf[start : start + _CHUNK] - tf[start : start + _CHUNK]
        total += float(d @ d)
    return total / xf.size


def psnr_db(
    image: ArrayLike,
    truth: ArrayLike,
    *,
    fit: Fit = "affine",
    data_range: float | None = None,
) -> float:
    """Peak SNR in dB against a noise-free ground truth.

    ``10 log10(data_range**2 / mse)`` where ``mse`` is the mean squared error
    between ``a * image + b`` (the least-squares affine fit to ``truth``,
    unless ``fit="none"``) and ``truth``. The fit makes the score independent
    of the image's units and offset (normalised network output vs counts)
    and of a contrast inversion.

    Parameters
    ----------
    image, truth : array_like
        Same shape.
    fit : {"affine", "match", "none"}
        Map ``image`` onto ``truth`` by least squares first (default), by
        matching mean and standard deviation, or compare as is.
    data_range : float, optional
        Peak-to-peak of the signal; default ``truth.max() - truth.min()``.

    """
    x, t = _fitted(image, truth, fit)
    peak = float(t.max() - t.min()) if data_range is None else float(data_range)
    if not peak > 0:
        raise InputError("truth is constant: PSNR needs a data_range > 0")
    mse = _mse(x, t)
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def snr_vs_truth_db(image: ArrayLike, truth: ArrayLike, *, fit: Fit = "affine") -> float:
    """SNR in dB against ground truth: ``10 log10(var(truth) / mse)``.

    ``mse`` as in :func:`psnr_db` (after the affine fit by default, in which
    case this equals ``-10 log10(1 - r**2)`` with ``r`` the Pearson correlation).
    """
    x, t = _fitted(image, truth, fit)
    var_t = float(np.var(t))
    if not var_t > 0:
        raise InputError("truth is constant: its variance (the signal power) is zero")
    mse = _mse(x, t)
    return math.inf if mse == 0 else 10.0 * math.log10(var_t / mse)


def ssim(
    image: ArrayLike,
    truth: ArrayLike,
    *,
    fit: Fit = "match",
    data_range: float | None = None,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    full: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004), Gaussian window.

    Local means, variances and covariance are Gaussian-weighted (``sigma``
    1.5 px, truncated at 3.5 sigma, reflecting borders); the map
    ``((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``
    with ``C1 = (k1 L)^2`` and ``C2 = (k2 L)^2`` is averaged away from a
    border of half a window. With ``fit="none"`` this is numerically what
    ``skimage.metrics.structural_similarity(image, truth, data_range=L,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` gives.

    Parameters
    ----------
    image, truth : array_like
        Same shape, 2D or 3D.
    fit : {"match", "affine", "none"}
        How ``image`` is mapped onto ``truth``'s units first. ``"match"``
        (default) gives it the mean and standard deviation of ``truth``, so
        outputs in normalised units score fairly. ``"affine"`` (least squares)
        is *not* recommended for SSIM: it shrinks a very noisy image towards a
        flat one, whose local variances then vanish against ``C2`` and score
        deceptively high. ``"none"`` compares as is.
    data_range : float, optional
        ``L``; default ``truth.max() - truth.min()``.
    sigma, k1, k2 : float
        Window width and the stabilising constants.
    full : bool
        Also return the SSIM map.

    Returns
    -------
    float or (float, numpy.ndarray)
        Mean SSIM (1 for identical images), and the map if ``full``.

    """
    x, t = _fitted(image, truth, fit)
    peak = float(t.max() - t.min()) if data_range is None else float(data_range)
    if not peak > 0:
        raise InputError("truth is constant: SSIM needs a data_range > 0")
    truncate = 3.5
    pad = int(truncate * sigma + 0.5)
    if min(x.shape) <= 2 * pad:
        raise InputError(f"image {x.shape} is too small for an SSIM window of sigma {sigma}")

    def blur(v: np.ndarray) -> np.ndarray:
        return ndi.gaussian_filter(v, sigma, mode="reflect", truncate=truncate)

    mx, my = blur(x), blur(t)
    vx = blur(x * x) - mx * mx
    vy = blur(t * t) - my * my
    cxy = blur(x * t) - mx * my
    c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    inner = tuple(slice(pad, n - pad) for n in smap.shape)
    value = float(smap[inner].mean(dtype=np.float64))
    return (value, smap) if full else value


def holdout_nmse(denoised: ArrayLike, heldout: ArrayLike, *, fit: Fit = "affine") -> float:
    """Noise2noise hold-out error: ``mse(a * denoised + b, heldout) / var(heldout)``.

    With ``denoised = f(even)`` and ``heldout`` the independent odd half,
    ``E[mse] = mse(f(even), clean) + noise variance of the odd half``, so this
    ranks denoisers like the (unavailable) ground-truth error does. Lower is
    better; 1.0 means no better than the held-out image's mean.
    """
    x, t = _fitted(denoised, heldout, fit)
    var_t = float(np.var(t))
    if not var_t > 0:
        raise InputError("held-out image is constant")
    return _mse(x, t) / var_t


# ----------------------------------------------------------------------------- noise level


def estimate_noise_sigma(
    image: ArrayLike,
    *,
    method: Literal["laplacian", "spectrum"] = "laplacian",
    band: tuple[float, float] = (0.35, 0.5),
) -> float:
    """Estimate the standard deviation of additive white noise from one image.

    ``method="laplacian"`` (default): the image is filtered with the separable
    second difference ``[1, -2, 1]`` along every axis (in 2D the 3x3 kernel of
    Immerkaer 1996, which annihilates constant, linear and bilinear signal);
    for white noise of std ``sigma`` the result has std ``sigma * 6**(ndim/2)``
    (the kernel's L2 norm). The residual's std is taken robustly as
    ``1.4826 * MAD`` (median absolute deviation), so edges and particles that
    survive the filter move the estimate little.

    ``method="spectrum"``: mean power in the high-frequency band
    ``band`` (cycles/pixel, radial) of the mean-subtracted, edge-tapered image,
    divided by the window's energy. For white noise the power spectrum is flat
    at ``sigma**2`` per pixel; smooth signal contributes nothing up there.

    Both assume white noise; for coloured (e.g. motion-corrected, dose
    weighted or binned) micrographs they report the noise level of the high
    frequencies, which is still useful to compare a raw and a denoised image
    in the same units.

    Parameters
    ----------
    image : array_like
        1D, 2D or 3D; memory maps are fine.
    method : {"laplacian", "spectrum"}
        Estimator (see above).
    band : (float, float)
        Radial frequency band of the spectrum method, in cycles per pixel.

    Returns
    -------
    float
        Estimated sigma, in the image's units.

    """
    x = _as_array(image, "image")
    if method == "laplacian":
        if min(x.shape) < 3:
            raise InputError(f"image {x.shape} is too small (needs >= 3 pixels per axis)")
        r = _f64(x)
        for axis in range(r.ndim):
            lo = [slice(None)] * r.ndim
            mid = [slice(None)] * r.ndim
            hi = [slice(None)] * r.ndim
            lo[axis], mid[axis], hi[axis] = slice(0, -2), slice(1, -1), slice(2, None)
            r = r[tuple(lo)] - 2.0 * r[tuple(mid)] + r[tuple(hi)]
        mad = float(np.median(np.abs(r - np.median(r))))
        return 1.4826 * mad / math.sqrt(6.0**x.ndim)
    if method == "spectrum":
        lo_f, hi_f = band
        if not 0 <= lo_f < hi_f:
            raise InputError(f"band must satisfy 0 <= low < high, got {band}")
        weight = _taper_window(x.shape, 0.05)
        f = sfft.rfftn(_prepare(x, weight))
        r2 = np.zeros([1] * x.ndim)
        for axis, n in enumerate(x.shape):
            fr = sfft.rfftfreq(n) if axis == x.ndim - 1 else sfft.fftfreq(n)
            r2 = r2 + (fr**2).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
        rad = np.sqrt(np.broadcast_to(r2, f.shape))
        sel = (rad >= lo_f) & (rad <= hi_f)
        mult = np.broadcast_to(_rfft_weights(x.shape), f.shape)[sel]
        if mult.sum() == 0:
            raise InputError(f"no Fourier coefficients in band {band}")
        power = np.sum(mult * (f.real[sel] ** 2 + f.imag[sel] ** 2)) / mult.sum()
        energy = float(np.sum(np.broadcast_to(weight, x.shape) ** 2))
        return math.sqrt(power / energy)
    raise InputError(f"method must be 'laplacian' or 'spectrum', got {method!r}")
