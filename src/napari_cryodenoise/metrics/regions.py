"""Signal and background regions: discs, boxes, masks, polygons, label images, picks."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ..errors import InputError
from ._common import _as_array, _f64, _same_shape

__all__ = [
    "Region",
    "region_from_box",
    "region_from_disc",
    "region_from_mask",
    "region_from_polygon",
    "regions_from_labels",
    "regions_from_picks",
    "regions_to_labels",
]


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


def region_from_disc(center_yx: Sequence[float], radius: float, *, label: int = -1) -> Region:
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


def region_from_box(center_yx: Sequence[float], radius: float, *, label: int = -1) -> Region:
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
            inner = tuple(
                slice(c.start - s.start, c.stop - s.start)
                for c, s in zip(clip, r.slices, strict=True)
            )
            out[clip][r.mask[inner]] = k
    return out
