"""Measuring denoising in the viewer: layers to region-SNR and FRC jobs, and running them.

No Qt here; FRC jobs live in :mod:`.measure_frc`. The dock widget (:mod:`._qt.measure`)
reads layers on the main thread into plain jobs: image planes (arrays, memory maps stay
mapped), affine maps from world to pixel coordinates, and regions in world coordinates.
The ``run_*`` functions then work on those jobs only, in a worker thread, and return
plain results that the widget shows on the main thread.

Regions are defined once, in world coordinates, and placed on each image's own
pixel grid, so a binned result (larger pixels) is measured over the same
patches of the specimen as its raw micrograph. Images on the reference's grid
reuse the reference's regions exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .. import metrics as m
from ..errors import InputError
from ..io.star_coords import picks_for  # noqa: F401 - re-exported for the Measure widget
from .layers import METADATA_KEY

#: Per-pair SNR below this many valid pairs is reported with a warning note.
FEW_PAIRS = 5

_ANGSTROM_UNITS = {"angstrom": 1.0, "Å": 1.0, "nanometer": 10.0, "nm": 10.0}


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True, eq=False)
class PixelMap:
    """Affine map from world ``(y, x)`` to a layer's ``(row, col)``: ``A @ world + b``."""

    matrix: np.ndarray
    offset: np.ndarray

    def __call__(self, world_yx: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` world points to pixel coordinates.

        Rounded to 1e-9 px, so that a pick stored at pixel 48 does not come
        back as 47.99999999999 and lose the disc's boundary pixels.
        """
        return np.round(np.asarray(world_yx, float) @ self.matrix.T + self.offset, 9)

    def inverse(self, pixel_yx: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` pixel coordinates back to world points."""
        return np.linalg.solve(self.matrix, (np.asarray(pixel_yx, float) - self.offset).T).T

    @property
    def pixels_per_unit(self) -> float:
        """Linear scale factor: pixels per world unit (geometric mean of the two axes)."""
        return math.sqrt(abs(float(np.linalg.det(self.matrix))))

    def same_as(self, other: PixelMap) -> bool:
        """Tell whether both maps place world points on the same pixels."""
        return bool(
            np.allclose(self.matrix, other.matrix, rtol=1e-9, atol=1e-12)
            and np.allclose(self.offset, other.offset, rtol=1e-9, atol=1e-9)
        )


def pixel_map(layer: Any, world_point: Sequence[float]) -> PixelMap:
    """Return the world-to-pixel map of a layer's last two axes around ``world_point``.

    Uses only ``layer.world_to_data`` (public napari API), sampled at the point
    and one world unit along y and x, so scale, translate, in-plane rotation
    and affine transforms are all honoured.
    """
    base = np.asarray(world_point, float)
    if base.size < 2:
        base = np.zeros(2)

    def to_data(p: np.ndarray) -> np.ndarray:
        return np.asarray(layer.world_to_data(p), float)[-2:]

    p0 = to_data(base)
    cols = []
    for axis in (-2, -1):
        p = base.copy()
        p[axis] += 1.0
        cols.append(to_data(p) - p0)
    matrix = np.stack(cols, axis=1)
    if not abs(np.linalg.det(matrix)) > 0:
        raise InputError(f"layer {layer.name!r} has a degenerate transform")
    return PixelMap(matrix, p0 - matrix @ base[-2:])


def _leading_index(layer: Any, world_point: Sequence[float]) -> tuple[int, ...]:
    """Return the displayed plane's indices along a layer's leading (non-yx) axes."""
    data = np.asarray(layer.world_to_data(np.asarray(world_point, float)), float)
    return tuple(int(round(v)) for v in data[:-2])


# ----------------------------------------------------------------------------- image layers


@dataclass(frozen=True, eq=False)
class ImagePlane:
    """One image to measure: a 2D plane (or a whole volume for FSC) and its geometry.

    Attributes
    ----------
    name : str
        Layer name (for the table and the plot).
    data : array-like
        The plane (memory maps stay memory-mapped), or the volume for FSC.
    to_pixel : PixelMap
        World ``(y, x)`` to ``(row, col)`` of ``data``.
    pixel_size : float
        Angstrom per pixel, or 1.0 when unknown.
    pixel_size_known : bool
        False when the file gave no real pixel size (results are in pixels).
    key : tuple
        Identifies layer, data object and plane (for caching per-image scores).

    """

    name: str
    data: Any
    to_pixel: PixelMap
    pixel_size: float = 1.0
    pixel_size_known: bool = False
    key: tuple = ()

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``."""
        return tuple(int(n) for n in self.data.shape)


def full_resolution(layer: Any) -> Any:
    """Level 0 of a multiscale image layer, else its data."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def is_volume(layer: Any) -> bool:
    """Tell whether a 3D image layer is a volume (tomogram, map) rather than a stack."""
    facts = (getattr(layer, "metadata", None) or {}).get(METADATA_KEY, {})
    kind = facts.get("kind") if isinstance(facts, dict) else None
    return full_resolution(layer).ndim == 3 and kind == "volume"


def layer_pixel_size(layer: Any) -> tuple[float, bool]:
    """Angstrom per pixel along x and whether it is real (not a header placeholder)."""
    facts = (getattr(layer, "metadata", None) or {}).get(METADATA_KEY, {})
    if isinstance(facts, dict) and facts.get("voxel_size_is_placeholder"):
        return 1.0, False
    units = getattr(layer, "units", None)
    unit = str(units[-1]) if units else "pixel"
    factor = _ANGSTROM_UNITS.get(unit)
    scale = abs(float(layer.scale[-1]))
    if factor is None or not scale > 0:
        return 1.0, False
    return scale * factor, True


def image_plane(layer: Any, world_point: Sequence[float], *, whole: bool = False) -> ImagePlane:
    """Return the displayed 2D plane of an image layer (the whole volume if ``whole``).

    Raises
    ------
    InputError
        RGB layers, 1D data or non-numeric data.

    """
    if getattr(layer, "rgb", False):
        raise InputError(f"layer {layer.name!r} is RGB; measure greyscale images")
    data = full_resolution(layer)
    if data.ndim < 2:
        raise InputError(f"layer {layer.name!r} is not an image (shape {data.shape})")
    if np.dtype(data.dtype).kind not in "biuf":
        raise InputError(f"layer {layer.name!r} has non-numeric data ({data.dtype})")
    lead: tuple[int, ...] = ()
    if data.ndim > 2 and not whole:
        lead = tuple(
            min(max(i, 0), n - 1)
            for i, n in zip(_leading_index(layer, world_point), data.shape[:-2], strict=True)
        )
        data = data[lead]
    size, known = layer_pixel_size(layer)
    key = (id(layer), id(full_resolution(layer)), lead, whole)
    return ImagePlane(layer.name, data, pixel_map(layer, world_point), size, known, key)


# ----------------------------------------------------------------------------- regions


@dataclass(frozen=True, eq=False)
class PickRegions:
    """Particle picks in world ``(y, x)``; discs (or boxes) with auto-chosen backgrounds."""

    world_yx: np.ndarray
    radius_px: float
    shape: Literal["disc", "box"] = "disc"
    seed: int = 0


@dataclass(frozen=True, eq=False)
class ShapeRegions:
    """Paired signal and background polygons in world ``(y, x)``."""

    signal: list[np.ndarray]
    background: list[np.ndarray]


def points_world_yx(layer: Any, world_point: Sequence[float]) -> np.ndarray:
    """World ``(y, x)`` of a Points layer's points on the displayed plane, ``(N, 2)``."""
    data = np.asarray(layer.data, float).reshape(-1, layer.ndim)
    if data.shape[0] == 0:
        return np.zeros((0, 2))
    if layer.ndim > 2:
        lead = np.asarray(_leading_index(layer, world_point))
        data = data[np.all(np.rint(data[:, :-2]) == lead, axis=1)]
    return pixel_map(layer, world_point).inverse(data[:, -2:])


def ellipse_polygon(corners: np.ndarray, n: int = 72) -> np.ndarray:
    """Polygon of the ellipse inscribed in a napari ellipse's four bounding-box corners."""
    c = np.asarray(corners, float)[:, -2:]
    center = c.mean(axis=0)
    half_a, half_b = (c[1] - c[0]) / 2, (c[3] - c[0]) / 2
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)[:, None]
    return center + np.cos(t) * half_a + np.sin(t) * half_b


def shapes_world_yx(layer: Any, world_point: Sequence[float]) -> list[np.ndarray]:
    """World ``(y, x)`` polygons of a Shapes layer's rectangles, ellipses and polygons.

    Raises
    ------
    InputError
        For lines and paths, which enclose no area.

    """
    to_pixel = pixel_map(layer, world_point)
    out = []
    for k, (verts, kind) in enumerate(zip(layer.data, layer.shape_type, strict=True)):
        if kind in ("line", "path"):
            raise InputError(
                f"shape {k + 1} of {layer.name!r} is a {kind}; draw rectangles, ellipses or "
                "polygons (they need an area)"
            )
        v = np.asarray(verts, float)[:, -2:]
        if kind == "ellipse":
            v = ellipse_polygon(v)
        out.append(to_pixel.inverse(v))
    return out


def pair_shapes(
    shapes: list[np.ndarray], background: list[np.ndarray] | None, name: str
) -> ShapeRegions:
    """Pair polygons: alternating signal, background in drawing order, or by index.

    Raises
    ------
    InputError
        No shapes, or counts that do not pair up.

    """
    if background is None:
        if not shapes:
            raise InputError(f"{name!r} has no shapes: draw a signal region, then its background")
        if len(shapes) % 2:
            raise InputError(
                f"{name!r} has {len(shapes)} shapes; draw them in pairs (signal, then its "
                "background), so the count must be even"
            )
        return ShapeRegions(shapes[0::2], shapes[1::2])
    if not shapes or len(shapes) != len(background):
        raise InputError(
            f"{len(shapes)} signal and {len(background)} background shapes: they are paired by "
            "drawing order, so draw the same number in both layers"
        )
    return ShapeRegions(shapes, background)


def _disc_centres(regions: list[m.Region]) -> np.ndarray:
    return np.array([r.center for r in regions], float).reshape(-1, 2)


@dataclass
class _Placed:
    """Regions placed on the reference grid (pixel units of the reference)."""

    signal: list[m.Region]
    background: list[m.Region]
    requested: int


def place_on_reference(ref: ImagePlane, regions: PickRegions | ShapeRegions) -> _Placed:
    """Signal/background regions on the reference's pixel grid.

    Raises
    ------
    InputError
        No picks, or no pair that fits in the image.

    """
    shape = ref.shape
    if isinstance(regions, PickRegions):
        n = len(regions.world_yx)
        if n == 0:
            raise InputError("no picks to measure: add points on particles or load a pick file")
        xy = ref.to_pixel(regions.world_yx)[:, ::-1]
        sig, bg = m.regions_from_picks(
            shape, xy, regions.radius_px, region=regions.shape, seed=regions.seed
        )
        if not sig:
            raise InputError(
                f"none of the {n} picks has a disc of radius {regions.radius_px:g} px inside "
                "the image with room for a background region; check the radius and the picks"
            )
        return _Placed(sig, bg, n)
    sig, bg = [], []
    for k, (s, b) in enumerate(zip(regions.signal, regions.background, strict=True)):
        try:
            sig.append(m.region_from_polygon(ref.to_pixel(s), shape, label=k))
            bg.append(m.region_from_polygon(ref.to_pixel(b), shape, label=k))
        except InputError as err:
            raise InputError(f"region pair {k + 1}: {err}") from None
    return _Placed(sig, bg, len(regions.signal))


def _place_on(
    image: ImagePlane, ref: ImagePlane, placed: _Placed, regions: PickRegions | ShapeRegions
) -> tuple[list[m.Region], list[m.Region]]:
    """Place the reference's region pairs on ``image``'s grid, dropping those that leave it."""
    if image.shape == ref.shape and image.to_pixel.same_as(ref.to_pixel):
        return placed.signal, placed.background
    sig: list[m.Region] = []
    bg: list[m.Region] = []
    if isinstance(regions, PickRegions):
        radius = regions.radius_px * image.to_pixel.pixels_per_unit / ref.to_pixel.pixels_per_unit
        make = m.region_from_disc if regions.shape == "disc" else m.region_from_box
        for s_ref, b_ref in zip(placed.signal, placed.background, strict=True):
            centres = image.to_pixel(ref.to_pixel.inverse(_disc_centres([s_ref, b_ref])))
            s, b = make(centres[0], radius), make(centres[1], radius)
            if s.fits(image.shape) and b.fits(image.shape):
                sig.append(s)
                bg.append(b)
        return sig, bg
    for s_ref in placed.signal:
        k = s_ref.label
        try:
            s = m.region_from_polygon(image.to_pixel(regions.signal[k]), image.shape)
            b = m.region_from_polygon(image.to_pixel(regions.background[k]), image.shape)
        except InputError:
            continue
        sig.append(s)
        bg.append(b)
    return sig, bg


# ----------------------------------------------------------------------------- SNR job


@dataclass(frozen=True, eq=False)
class SnrJob:
    """Everything the SNR worker needs, read from layers on the main thread.

    ``images[reference]`` defines the region grid and the gain's zero.
    ``extras_for`` lists the image keys whose noise / ground-truth scores are
    wanted (others are reused from an earlier run by the widget).
    """

    images: list[ImagePlane]
    regions: PickRegions | ShapeRegions
    reference: int = 0
    truth: ImagePlane | None = None
    noise: bool = True
    extras_for: frozenset = frozenset()
    labels: bool = False


@dataclass
class LayerScores:
    """One table row."""

    name: str
    key: tuple = ()
    snr_db: float = math.nan
    pairs: int = 0
    noise_sigma: float | None = None
    noise_rel: float | None = None
    psnr_db: float | None = None
    ssim: float | None = None
    note: str = ""


@dataclass
class SnrResult:
    """What the SNR worker returns."""

    rows: list[LayerScores]
    reference: str
    requested: int
    pairs: int
    labels: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def gain_db(self, row: LayerScores) -> float:
        """SNR of ``row`` minus the reference's SNR (dB)."""
        ref = next((r for r in self.rows if r.name == self.reference), None)
        return row.snr_db - ref.snr_db if ref is not None else math.nan


def region_snr_db(
    image: Any, signal: list[m.Region], background: list[m.Region]
) -> tuple[float, int]:
    """Topaz region SNR (mean of per-pair dB, as :func:`metrics.snr_db`) and the pairs used."""
    if not signal:
        return math.nan, 0
    values = m.pair_snr_db(image, signal, background)
    ok = np.isfinite(values)
    return (float(values[ok].mean()) if ok.any() else math.nan), int(ok.sum())


def _image_std(data: Any) -> float:
    rows = np.asarray(data)
    total = count = 0.0
    sq = 0.0
    step = max(1, (1 << 22) // max(1, rows.size // max(1, rows.shape[0])))
    for start in range(0, rows.shape[0], step):
        block = np.asarray(rows[start : start + step], dtype=np.float64)
        total += float(block.sum())
        sq += float(np.square(block).sum())
        count += block.size
    mean = total / count
    return math.sqrt(max(sq / count - mean * mean, 0.0))


def _extras(row: LayerScores, image: ImagePlane, job: SnrJob) -> None:
    if job.noise:
        row.noise_sigma = m.estimate_noise_sigma(image.data)
        std = _image_std(image.data)
        row.noise_rel = row.noise_sigma / std if std > 0 else math.nan
    if job.truth is not None:
        if image.shape != job.truth.shape:
            row.note = (row.note + "; " if row.note else "") + (
                f"shape {image.shape} differs from the ground truth {job.truth.shape}"
            )
            return
        row.psnr_db = m.psnr_db(image.data, job.truth.data)
        row.ssim = float(m.ssim(image.data, job.truth.data))


def run_snr(job: SnrJob) -> Iterator[tuple[int, int]]:
    """Measure every image of ``job``; a generator yielding ``(done, total)`` progress.

    Its return value (``StopIteration.value``, a worker's ``returned``) is a
    :class:`SnrResult`. Use :func:`measure_snr` to run it in one call.
    """
    ref = job.images[job.reference]
    placed = place_on_reference(ref, job.regions)
    total = len(job.images)
    yield 0, total
    rows: list[LayerScores] = []
    for k, image in enumerate(job.images):
        sig, bg = _place_on(image, ref, placed, job.regions)
        row = LayerScores(image.name, image.key)
        row.snr_db, row.pairs = region_snr_db(image.data, sig, bg)
        if not sig:
            row.note = "no region pair fits in this image"
        elif row.pairs == 0:
            row.note = "SNR undefined (constant background or no contrast)"
        if image.key in job.extras_for:
            _extras(row, image, job)
        rows.append(row)
        yield k + 1, total
    notes = []
    if 0 < len(placed.signal) < FEW_PAIRS:
        notes.append(f"only {len(placed.signal)} region pair(s): the SNR is a rough estimate")
    labels = None
    if job.labels:
        labels = np.zeros(ref.shape, np.uint8)
        labels[m.regions_to_labels(placed.background, ref.shape) > 0] = 2
        labels[m.regions_to_labels(placed.signal, ref.shape) > 0] = 1
    return SnrResult(rows, ref.name, placed.requested, len(placed.signal), labels, notes)


def measure_snr(job: SnrJob) -> SnrResult:
    """Run :func:`run_snr` to completion and return its result."""
    gen = run_snr(job)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
