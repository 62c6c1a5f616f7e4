"""Region SNR of Topaz-Denoise (Bepler et al. 2020): per pair and per micrograph, in dB."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InputError
from .regions import Region, region_from_mask, regions_from_labels

__all__ = ["pair_snr_db", "snr_db"]


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
