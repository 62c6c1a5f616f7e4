"""One intensity mapping for a live result layer (no Qt).

A live layer first shows a coarse preview of the whole plane, then exact
full-resolution tiles replace it piece by piece. Both are the same denoised
image in the same units, so they share one set of contrast limits: taken
once from the preview (robust percentiles of what a zoomed-out view shows)
and kept while tiles arrive. Full-resolution tiles hold fine detail that the
preview cannot; widening the limits to their range would turn the rest of
the preview (and the zoomed-out view) into flat grey, so they never move the
limits. The user's own contrast is never overridden.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .layers import robust_contrast_limits, sampled_range

Limits = tuple[float, float]


def data_range(data: Any, max_samples: int = 1_000_000) -> Limits:
    """``(min, max)`` of a strided sample of ``data`` (cheap on memory maps), never equal."""
    lo, hi = sampled_range(data, max_samples)
    return lo, hi


def union(a: Limits, b: Limits) -> Limits:
    """The smallest range holding both."""
    return min(a[0], b[0]), max(a[1], b[1])


def same_limits(a: Any, b: Any, rtol: float = 1e-6) -> bool:
    """True when two ``(lo, hi)`` pairs are equal up to float rounding."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(1.0, float(np.abs(np.concatenate([a, b])).max()))
    return bool(np.allclose(a, b, rtol=0, atol=rtol * scale))


class LiveContrast:
    """Contrast limits of one live layer: from its preview, then left alone.

    The widget asks :meth:`on_preview` when a coarse preview of the current
    plane was drawn; it returns the limits to set, or None. Tiles and
    finished planes never change them. After a settings change the next
    preview sets them again (a new result), unless the user has set the
    contrast: then they are never touched.
    """

    def __init__(self) -> None:
        self.ours: Limits | None = None  # the limits we set last
        self.waiting = True  # the next preview sets the limits
        self.user = False  # the user changed the contrast

    def check_user(self, current: Any) -> bool:
        """Note whether the layer's ``current`` limits differ from the ones we set."""
        if self.ours is not None and not same_limits(current, self.ours):
            self.user = True
        return self.user

    def new_result(self) -> None:
        """The settings changed: the next preview may set the limits again."""
        self.waiting = True

    def on_preview(self, current: Any, preview: Any) -> Limits | None:
        """Limits for a layer whose ``current`` limits are shown, after a ``preview`` arrived.

        ``preview`` is what a zoomed-out view shows of the current plane (e.g.
        its coarsest display level). Returns None when nothing should change.
        """
        if self.check_user(current) or not self.waiting:
            return None
        limits = robust_contrast_limits(np.asarray(preview), max_samples=250_000)
        self.ours, self.waiting = limits, False
        return limits

    def accept(self, applied: Any) -> None:
        """Remember the limits as napari stored them (it may round or clip them)."""
        self.ours = (float(applied[0]), float(applied[1]))


def apply_preview(layer: Any, policy: LiveContrast, preview: Any) -> bool:
    """Set ``layer``'s contrast from a fresh ``preview`` if the policy allows; True if set.

    The slider's range is widened to hold the preview's values first.
    """
    limits = policy.on_preview(layer.contrast_limits, preview)
    if limits is None:
        return False
    layer.contrast_limits_range = union(layer.contrast_limits_range, data_range(preview))
    layer.contrast_limits = limits
    policy.accept(layer.contrast_limits)
    return True
