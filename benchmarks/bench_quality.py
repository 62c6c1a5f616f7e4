"""Denoising quality of the pretrained models: real micrograph SNR and simulated ground truth.

Part 1 (real data, needs ../shared/data): the Topaz-Denoise region SNR of
``ucsf_1142_DW.mrc`` at its RELION autopick coordinates, raw vs each
pretrained 2D model, over all picks and over the picks off the large
contamination blob (whose background regions are also kept off it).

Part 2 (simulated, always): a movie from ``simulate_movie``; the full sum is
scored against the noise-free expectation (PSNR / SNR after the best affine
fit, SSIM with matched mean and std, region SNR at the true particle centres)
for raw, the best Gaussian (sigma chosen by PSNR against the truth: an oracle
no real user has), and each model. The even/odd halves give the FRC and the
noise2noise hold-out error of each method: FRC of method(even) vs method(odd)
and, more honest for non-linear methods, xFRC of method(even) vs the raw odd half.

Run (2 shared cores: keep it niced)::

    nice python benchmarks/bench_quality.py                 # everything
    nice python benchmarks/bench_quality.py --models fcnn,affine --sim-size 384
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_cryodenoise import metrics
from napari_cryodenoise.cli.evaluate import Method, Row, format_table, parse_method
from napari_cryodenoise.io import read_image
from napari_cryodenoise.io.star_coords import read_star_coordinates

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "micrographs"
MODELS_2D = ("unet", "unet-v0.2.1", "unet-small", "fcnn", "affine")
SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def contamination_mask(
    image: np.ndarray, *, smooth: float = 10.0, k: float = 6.0, grow: int = 15
) -> np.ndarray:
    """Pixels much darker than the ice at large scale (carbon, ice crystals, blobs), grown."""
    s = ndi.gaussian_filter(np.asarray(image, dtype=np.float64), smooth)
    med = np.median(s)
    mad = 1.4826 * np.median(np.abs(s - med))
    return ndi.binary_dilation(s < med - k * mad, iterations=grow)


def run_method(method: Method, image: np.ndarray) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = method.apply(image)
    return out, time.perf_counter() - t0


def real_micrograph(models: list[str], radius: float) -> str:
    mic = SHARED / "ucsf_1142_DW.mrc"
    star = SHARED / "ucsf_1142_DW_autopick.star"
    if not mic.is_file() or not star.is_file():
        return "(real micrograph not available: ../shared/data is absent)\n"
    image, _ = read_image(mic)
    image = np.asarray(image, dtype=np.float32)
    xy = read_star_coordinates(star)
    mask = contamination_mask(image)
    rows_i = np.clip(np.rint(xy[:, 1]).astype(int), 0, image.shape[0] - 1)
    cols_i = np.clip(np.rint(xy[:, 0]).astype(int), 0, image.shape[1] - 1)
    off = ~mask[rows_i, cols_i]
    all_pairs = metrics.regions_from_picks(image.shape, xy, radius)
    ice_pairs = metrics.regions_from_picks(image.shape, xy[off], radius, exclude=mask)
    log(f"real: {len(all_pairs[0])} picks paired, {len(ice_pairs[0])} off the contamination")
    rows = []
    for spec in ["raw", "gaussian:1", "gaussian:2", "gaussian:4", *models]:
        method = parse_method(spec)
        log(f"real: {spec} ...")
        out, secs = run_method(method, image)
        rows.append(
            Row(
                "ucsf_1142_DW",
                spec,
                {
                    "region_snr_db": metrics.snr_db(out, *all_pairs),
                    "ice_snr_db": metrics.snr_db(out, *ice_pairs),
                    "seconds": secs,
                },
            )
        )
    raw = rows[0].values
    for r in rows:
        r.values["gain_db"] = r.values["region_snr_db"] - raw["region_snr_db"]
        r.values["ice_gain_db"] = r.values["ice_snr_db"] - raw["ice_snr_db"]
    head = (
        f"ucsf_1142_DW.mrc ({image.shape[1]}x{image.shape[0]}), RELION autopick, "
        f"disc radius {radius:g} px, background >= 3 radii from every pick, seed 0: "
        f"{len(all_pairs[0])} pairs (all picks), "
        f"{len(ice_pairs[0])} pairs (off contamination)"
    )
    cols = [
        ("region_snr_db", "SNR dB (all)", "{:.2f}"),
        ("gain_db", "gain dB", "{:+.2f}"),
        ("ice_snr_db", "SNR dB (ice)", "{:.2f}"),
        ("ice_gain_db", "gain dB (ice)", "{:+.2f}"),
        ("seconds", "s", "{:.1f}"),
    ]
    return head + "\n\n" + _table(rows, cols) + "\n"


def _table(rows: list[Row], cols: list[tuple[str, str, str]]) -> str:
    return format_table(rows, columns=cols)


def simulated(models: list[str], size: int, dose: float, pixel_size: float, seed: int) -> str:
    from napari_cryodenoise.simulate import simulate_movie

    log(f"sim: simulating {size}x{size}, {dose} e/A^2, {pixel_size} A/px ...")
    movie = simulate_movie((size, size), 16, dose, pixel_size, seed=seed)
    total, clean = movie.total, movie.clean
    even, odd = movie.even, movie.odd
    xy = movie.particle_xy
    radius = max(4.0, 0.35 * 150.0 / pixel_size)  # the procedural particle is ~150 A across
    pairs = metrics.regions_from_picks(total.shape, xy, radius, min_separation=2.5)
    log(f"sim: {len(xy)} particles, {len(pairs[0])} paired regions of radius {radius:.0f} px")

    # oracle Gaussian: best sigma by PSNR against the truth
    best_sigma, best_psnr = None, -math.inf
    for s in SIGMAS:
        p = metrics.psnr_db(parse_method(f"gaussian:{s:g}").apply(total), clean)
        if p > best_psnr:
            best_sigma, best_psnr = s, p
    specs = ["raw", f"gaussian:{best_sigma:g}", *models]
    rows = []
    for spec in specs:
        method = parse_method(spec)
        log(f"sim: {spec} ...")
        out, secs = run_method(method, total)
        out_even = method.apply(even)
        out_odd = method.apply(odd)
        frc = metrics.fourier_ring_correlation(out_even, out_odd, pixel_size=pixel_size)
        xfrc = metrics.fourier_ring_correlation(out_even, odd, pixel_size=pixel_size)
        label = spec + (" (best)" if spec.startswith("gaussian") else "")
        values = {
            "psnr_db": metrics.psnr_db(out, clean),
            "snr_gt_db": metrics.snr_vs_truth_db(out, clean),
            "ssim": float(metrics.ssim(out, clean)),
            "holdout_nmse": metrics.holdout_nmse(out_even, odd),
            "frc_0143": frc.resolution(0.143),
            "xfrc_0143": xfrc.resolution(0.143),
            "seconds": secs,
        }
        if pairs[0]:
            values["region_snr_db"] = metrics.snr_db(out, *pairs)
        rows.append(Row("sim", label, values))
    head = (
        f"simulate_movie({size}x{size}, 16 frames, {dose:g} e/A^2, {pixel_size:g} A/px, "
        f"seed {seed}): {len(xy)} particles, {total.mean():.1f} e/px; region SNR at the true "
        f"centres, radius {radius:.0f} px ({len(pairs[0])} pairs); Gaussian sigma by oracle "
        f"PSNR from {SIGMAS}"
    )
    cols = [
        ("psnr_db", "PSNR dB", "{:.2f}"),
        ("snr_gt_db", "SNR dB", "{:.2f}"),
        ("ssim", "SSIM", "{:.4f}"),
        ("region_snr_db", "region SNR dB", "{:.2f}"),
        ("frc_0143", "FRC 0.143 A", "{:.1f}"),
        ("xfrc_0143", "xFRC 0.143 A", "{:.1f}"),
        ("holdout_nmse", "hold-out NMSE", "{:.4f}"),
        ("seconds", "s", "{:.1f}"),
    ]
    return head + "\n\n" + _table(rows, cols) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS_2D), help="comma-separated model aliases")
    p.add_argument("--radius", type=float, default=12.0, help="pick radius on the real micrograph")
    p.add_argument("--sim-size", type=int, default=768)
    p.add_argument("--sim-dose", type=float, default=40.0)
    p.add_argument("--sim-pixel-size", type=float, default=1.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-real", action="store_true")
    p.add_argument("--skip-sim", action="store_true")
    args = p.parse_args()
    models = [m for m in args.models.split(",") if m]
    if not args.skip_real:
        print("## Real micrograph: region SNR (Topaz-Denoise definition)\n")
        print(real_micrograph(models, args.radius), flush=True)
    if not args.skip_sim:
        print("## Simulated micrograph: ground truth\n")
        print(
            simulated(models, args.sim_size, args.sim_dose, args.sim_pixel_size, args.seed),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
