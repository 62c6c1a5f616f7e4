"""Run methods on images and score them: ground truth, even/odd halves, particle picks.

Three kinds of evidence, usable together (:func:`evaluate`):

* ground truth (``images`` with ``clean``): PSNR, SNR and SSIM after the best affine fit
  of each method's output to the clean image;
* even/odd half sums (``even``, ``odd``): FRC of method(even) against method(odd), FRC of
  method(even) against the raw odd half, and the noise2noise hold-out error;
* particle picks (``images`` with ``picks`` and a ``radius``): the Topaz-Denoise region
  SNR from disc regions at the picks and automatic background regions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import metrics
from ..errors import InputError
from ..io.image_info import ImageInfo
from .methods import Method

__all__ = ["FRCCurve", "PickOptions", "Row", "evaluate", "picks_for_image", "read_single"]


@dataclass
class Row:
    """Scores of one method on one image (or even/odd pair)."""

    image: str
    method: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class FRCCurve:
    """FRC curves of one method on one even/odd pair, for plots."""

    image: str
    method: str
    self_frc: metrics.FRCResult
    cross_frc: metrics.FRCResult


@dataclass(frozen=True)
class PickOptions:
    """How regions are placed at particle picks (:func:`metrics.regions_from_picks`)."""

    radius: float
    region: str = "disc"
    min_separation: float = 3.0
    seed: int = 0


def read_single(path: Path) -> tuple[np.ndarray, ImageInfo]:
    """Read an image or volume to evaluate (a stack or movie is refused: one image each)."""
    from ..io import read_image

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    data, info = read_image(path)
    if info.kind in ("stack", "movie"):
        raise InputError(
            f"{path}: is a {info.kind} of {data.shape[0]} images; evaluate takes single images "
            "or volumes (sum the frames, or split the stack, first)"
        )
    return data, info


def picks_for_image(picks: Sequence[Path], images: Sequence[Path], index: int) -> np.ndarray:
    """The picks of ``images[index]``: its own pick file, or its rows of one shared STAR file.

    Raises
    ------
    InputError
        An unreadable pick file, or neither one file per image nor one STAR file with an
        ``rlnMicrographName`` column (or one image).

    """
    from ..io.star_coords import picks_for, read_coordinates, star_micrograph_names

    if len(picks) == len(images):
        return read_coordinates(picks[index])
    star = picks[0]
    if star.suffix.lower() == ".star" and star_micrograph_names(star):
        return picks_for(star, images[index].name)
    if len(images) == 1:
        return read_coordinates(star)
    raise InputError(
        f"--picks: give one pick file per image ({len(images)}), or one STAR file with "
        "an rlnMicrographName column"
    )


@contextlib.contextmanager
def _naming(what: str) -> Iterator[None]:
    """Put the files in a metric's error (``image (6, 6) is too small ...``)."""
    try:
        yield
    except InputError as err:
        text = str(err)
        if text.startswith("held-out image"):
            text = text.replace("held-out image", "the --odd image", 1)
        elif text.startswith("truth is"):
            text = text.replace("truth is", "the --clean image is", 1)
        raise InputError(f"{what}: {text}") from None


def _pixel_size(pixel_size: float | None, info: ImageInfo | None) -> tuple[float, str]:
    if pixel_size is not None:
        return float(pixel_size), "A"
    if info is not None and info.known_pixel_size is not None:
        return info.known_pixel_size, "A"
    return 1.0, "px"


def _read_halves(
    even: Path, odd: Path, pixel_size: float | None, log: Callable[[str], None]
) -> tuple[np.ndarray, np.ndarray, ImageInfo]:
    """Read an even/odd pair that has an FRC (same shape and pixel size, not constant or tiny).

    Header pixel sizes that differ stop the run, or, with ``pixel_size`` given for
    both, give a warning through ``log``.
    """
    even_img, info = read_single(even)
    odd_img, odd_info = read_single(odd)
    if even_img.shape != odd_img.shape:
        raise InputError(f"{even} {even_img.shape} and {odd} {odd_img.shape} differ in shape")
    metrics.check_frc_image(even_img, f"--even {even}")
    metrics.check_frc_image(odd_img, f"--odd {odd}")
    differ = metrics.pixel_size_mismatch(
        info.known_pixel_size, odd_info.known_pixel_size, f"--even {even}", f"--odd {odd}"
    )
    if differ and pixel_size is None:
        raise InputError(f"{differ}; resample one of them, or give --pixel-size to use one")
    if differ:
        log(f"warning: {differ}; using --pixel-size {pixel_size:g} for both")
    return even_img, odd_img, info


def evaluate(
    methods: Sequence[Method],
    *,
    images: Sequence[Path] = (),
    clean: Sequence[Path] = (),
    picks: Sequence[Path] = (),
    pick_options: PickOptions | None = None,
    even: Sequence[Path] = (),
    odd: Sequence[Path] = (),
    pixel_size: float | None = None,
    taper: float = 0.05,
    device: str = "auto",
    precision: str = "fp32",
    log: Callable[[str], None] = lambda text: None,
) -> tuple[list[Row], list[FRCCurve], str]:
    """Run every method on every input; return the rows, the FRC curves and the length unit.

    ``clean`` (one per image) and ``picks`` (with ``pick_options``) score ``images``;
    ``even`` and ``odd`` (pairs) give FRC scores, in Angstrom when ``pixel_size`` or the
    header gives one (else pixels). Raises
    :class:`~napari_cryodenoise.errors.CryoDenoiseError` with one line for any problem.
    """
    rows: list[Row] = []
    curves: list[FRCCurve] = []
    unit = "A"
    kw = {"device": device, "precision": precision}
    # every even/odd pair is checked before any method runs
    halves = [_read_halves(e, o, pixel_size, log) for e, o in zip(even, odd, strict=True)]
    for i, path in enumerate(images):
        noisy, _ = read_single(path)
        truth = None
        if clean:
            truth, _ = read_single(clean[i])
            if truth.shape != noisy.shape:
                raise InputError(
                    f"{clean[i]}: shape {truth.shape} differs from {path} {noisy.shape}"
                )
            with _naming(f"{path} --clean {clean[i]}"):  # scorable at all? before any method
                metrics.check_truth(truth)
        sig = bg = None
        if picks:
            if noisy.ndim != 2:
                raise InputError(f"{path}: --picks needs 2D micrographs, got shape {noisy.shape}")
            opts = pick_options or PickOptions(radius=0.0)
            xy = picks_for_image(picks, images, i)
            sig, bg = metrics.regions_from_picks(
                noisy.shape,
                xy,
                opts.radius,
                region=opts.region,
                min_separation=opts.min_separation,
                seed=opts.seed,
            )
            if not sig:
                raise InputError(
                    f"{path}: none of the {len(xy)} picks has a signal and a "
                    "background region inside the image (check --radius)"
                )
            log(f"{path.name}: {len(sig)} of {len(xy)} picks paired with a background region")
        for method in methods:
            log(f"{path.name}: {method.spec} ...")
            t0 = time.perf_counter()
            out = method.apply(noisy, **kw)
            row = Row(path.name, method.spec, {"seconds": time.perf_counter() - t0})
            if truth is not None:
                row.values["psnr_db"] = metrics.psnr_db(out, truth)
                row.values["snr_gt_db"] = metrics.snr_vs_truth_db(out, truth)
                row.values["ssim"] = float(metrics.ssim(out, truth))
            if sig is not None:
                row.values["region_snr_db"] = metrics.snr_db(out, sig, bg)
                row.values["n_pairs"] = float(len(sig))
            rows.append(row)
    for (even_path, odd_path), (even_img, odd_img, info) in zip(
        zip(even, odd, strict=True), halves, strict=True
    ):
        px, unit = _pixel_size(pixel_size, info)
        frc_kw = {"pixel_size": px, "taper": taper}
        odd_f = np.asarray(odd_img, dtype=np.float32)
        with _naming(f"--even {even_path} --odd {odd_path}"):
            metrics.holdout_nmse(even_img, odd_f)
        for method in methods:
            log(f"{even_path.name} / {odd_path.name}: {method.spec} ...")
            t0 = time.perf_counter()
            out_even = method.apply(even_img, **kw)
            out_odd = method.apply(odd_img, **kw)
            seconds = time.perf_counter() - t0
            self_frc = metrics.fourier_ring_correlation(out_even, out_odd, **frc_kw)
            cross_frc = metrics.fourier_ring_correlation(out_even, odd_f, **frc_kw)
            curves.append(FRCCurve(even_path.name, method.spec, self_frc, cross_frc))
            rows.append(
                Row(
                    f"{even_path.name} vs {odd_path.name}",
                    method.spec,
                    {
                        "frc_0143": self_frc.resolution(0.143),
                        "frc_halfbit": self_frc.resolution("half-bit"),
                        "xfrc_0143": cross_frc.resolution(0.143),
                        "xfrc_05": cross_frc.resolution(0.5),
                        "holdout_nmse": metrics.holdout_nmse(out_even, odd_f),
                        "seconds": seconds,
                    },
                )
            )
    return rows, curves, unit
