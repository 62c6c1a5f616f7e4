"""The Measure widget's FRC: jobs, their curves, and warnings for dependent layers.

:func:`frc_job` makes a plain job from two image planes on the main thread;
:func:`run_frc` computes it in a worker. An FRC measures resolution only between images
with independent noise. Two layers are certainly dependent when one is a denoised result
of the other (or both are results of the same data), which their metadata tells;
otherwise the curve itself may show it
(:func:`napari_cryodenoise.metrics.dependence_warning`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from .. import metrics as m
from ..errors import InputError
from ..io.output_guard import same_file
from .measure import ImagePlane
from .results import is_result, source_facts, source_path

__all__ = [
    "FrcCurve",
    "FrcJob",
    "format_resolution",
    "frc_job",
    "frc_warning",
    "provenance_note",
    "run_frc",
]

ADVICE = (
    "they share their noise, so this FRC is no resolution; compare independent halves "
    "(even vs odd frame sums, or denoise(even) vs the raw odd half)"
)


@dataclass(frozen=True, eq=False)
class FrcJob:
    """Two images (planes or volumes) and the pixel size for an FRC / FSC curve."""

    a: ImagePlane
    b: ImagePlane
    pixel_size: float
    in_angstrom: bool
    #: A warning to show with the result (the layers' pixel sizes differ), else "".
    note: str = ""


@dataclass
class FrcCurve:
    """An FRC curve with its resolutions at 0.143 and the half-bit criterion."""

    label: str
    result: m.FRCResult
    res_0143: float
    res_halfbit: float
    unit: str
    volume: bool


def frc_job(a: ImagePlane, b: ImagePlane, pixel_size: float | None = None) -> FrcJob:
    """Make an FRC job; the pixel size is ``a``'s (else ``b``'s) unless given (> 0).

    Raises
    ------
    InputError
        Shapes differ, the same image is given twice, or the layers' pixel sizes
        differ and none is given (given, the job's ``note`` says they differ).

    """
    if a.shape != b.shape:
        raise InputError(
            f"FRC needs two images of the same shape: {a.name!r} is {a.shape}, "
            f"{b.name!r} is {b.shape}"
        )
    if a.key and a.key == b.key:
        raise InputError("choose two different layers for the FRC")
    differ = m.pixel_size_mismatch(
        a.pixel_size if a.pixel_size_known else None,
        b.pixel_size if b.pixel_size_known else None,
        repr(a.name),
        repr(b.name),
    )
    if pixel_size and pixel_size > 0:
        note = f"{differ}; using {pixel_size:g} Å/px for both" if differ else ""
        return FrcJob(a, b, float(pixel_size), True, note)
    if differ:
        raise InputError(f"{differ}; resample one, or set Pixel size to use one for both")
    known = a if a.pixel_size_known or not b.pixel_size_known else b
    return FrcJob(a, b, known.pixel_size, known.pixel_size_known)


def run_frc(job: FrcJob, *, workers: int | None = None) -> FrcCurve:
    """Compute the FRC (FSC for volumes) of a job; may take seconds on 4k images.

    Raises
    ------
    InputError
        A layer has no FRC (too small or constant), named.

    """
    m.check_frc_image(job.a.data, f"layer {job.a.name!r}")
    m.check_frc_image(job.b.data, f"layer {job.b.name!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = m.fourier_ring_correlation(
            job.a.data, job.b.data, pixel_size=job.pixel_size, workers=workers
        )
    unit = "Å" if job.in_angstrom else "px"
    return FrcCurve(
        f"{job.a.name} vs {job.b.name}",
        result,
        result.resolution(0.143),
        result.resolution("half-bit"),
        unit,
        len(job.a.shape) == 3,
    )


def format_resolution(value: float, unit: str) -> str:
    """``12.3 Å``, ``4.0 px``, or ``none`` for an infinite resolution."""
    return "none" if not math.isfinite(value) else f"{value:.1f} {unit}"


# ----------------------------------------------------------------------------- warnings


def _origin(layer: Any) -> str | None:
    """The layer a result was made from (its name), or None for an input layer."""
    return source_facts(layer).get("source_layer") if is_result(layer) else None


def provenance_note(a: Any, b: Any) -> str | None:
    """Why layers ``a`` and ``b`` are not independent, from their metadata (else None)."""
    for x, y in ((a, b), (b, a)):
        if _origin(y) == x.name:
            return f"{y.name!r} is a denoised version of {x.name!r}: {ADVICE}"
    pa, pb = source_path(a), source_path(b)
    if pa and pb and same_file(pa, pb):
        return f"{a.name!r} and {b.name!r} come from the same file ({pa}): {ADVICE}"
    if _origin(a) is not None and _origin(a) == _origin(b):
        return f"{a.name!r} and {b.name!r} are both made from {_origin(a)!r}: {ADVICE}"
    return None


def frc_warning(curve: FrcCurve, a: Any, b: Any) -> str | None:
    """One line when the FRC's two layers look dependent (metadata first, then the curve)."""
    return provenance_note(a, b) or m.dependence_warning(curve.result, repr(a.name), repr(b.name))
