"""Warnings for the Measure widget's FRC: two layers that are not independent.

An FRC measures resolution only between images with independent noise. Two
layers are certainly dependent when one is a denoised result of the other (or
both are results of the same data), which their metadata tells; otherwise the
curve itself may show it (:func:`napari_cryodenoise.metrics.dependence_warning`).
"""

from __future__ import annotations

from typing import Any

from .. import metrics as m
from ..io.output_guard import same_file
from .measure import FrcCurve
from .results import is_result, source_facts, source_path

__all__ = ["frc_warning", "provenance_note"]

ADVICE = (
    "they share their noise, so this FRC is no resolution; compare independent halves "
    "(even vs odd frame sums, or denoise(even) vs the raw odd half)"
)


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
