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

Modules: ``regions`` (regions from picks, masks, labels, polygons), ``snr``
(region SNR), ``frc`` (FRC/FSC and criteria), ``reference`` (scores against a
reference or ground truth), ``noise`` (noise level). Import from the package.
"""

from .frc import (
    CROSSING_RULE,
    MIN_FRC_SIDE,
    FRCResult,
    check_frc_image,
    dependence_warning,
    fourier_ring_correlation,
    fourier_shell_correlation,
    frc_threshold,
    pixel_size_mismatch,
)
from .noise import estimate_noise_sigma
from .reference import (
    affine_fit,
    check_truth,
    holdout_nmse,
    psnr_db,
    snr_vs_truth_db,
    ssim,
)
from .regions import (
    Region,
    region_from_box,
    region_from_disc,
    region_from_mask,
    region_from_polygon,
    regions_from_labels,
    regions_from_picks,
    regions_to_labels,
)
from .snr import pair_snr_db, snr_db

__all__ = [
    "CROSSING_RULE",
    "MIN_FRC_SIDE",
    "FRCResult",
    "dependence_warning",
    "Region",
    "affine_fit",
    "check_frc_image",
    "check_truth",
    "estimate_noise_sigma",
    "fourier_ring_correlation",
    "fourier_shell_correlation",
    "frc_threshold",
    "holdout_nmse",
    "pair_snr_db",
    "pixel_size_mismatch",
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
