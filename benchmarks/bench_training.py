"""Quality benchmark of Noise2Noise training on simulated movies (not a test).

Simulates movies with ground truth (``napari_cryodenoise.simulate``), trains a
network on the even/odd halves of the training movies for a fixed wall-clock
budget, and scores, on held-out movies, the full-dose sum as it is (raw), the
best Gaussian filter (sigma chosen per image with the ground truth, i.e. an
optimistic baseline), Topaz's pretrained general ``unet`` and the trained
network: PSNR in dB against the noise-free image after the least-squares
affine fit of each result to it.

Run it alone on a quiet machine, e.g.::

    nice python benchmarks/bench_training.py --minutes 10
    python benchmarks/bench_training.py --minutes 2 --variant fast   # compare recipes
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import ndimage

from napari_cryodenoise.metrics import psnr_db
from napari_cryodenoise.simulate import simulate_movie
from napari_cryodenoise.training import TrainConfig, pair_from_movie, train_noise2noise

#: Training recipes to compare (TrainConfig overrides).
VARIANTS: dict[str, dict] = {
    "default": dict(),  # TrainConfig defaults: fine-tune the pretrained unet
    "fast": dict(arch="unet-fast", crop=128, batch_size=8, optimizer="adam", lr=3e-3),
    "finetune-256": dict(init="unet", crop=256, batch_size=4, optimizer="adam", lr=1e-4),
    "unet-small": dict(arch="unet-small", crop=256, batch_size=4, optimizer="adam", lr=1e-3),
    "topaz": dict(
        init="unet",
        crop=800,
        batch_size=4,
        optimizer="adagrad",
        lr=1e-3,
        lr_schedule="constant",
        warmup_steps=0,
    ),
}
SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0)


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    """PSNR (dB) after the least-squares affine fit of ``image`` to ``truth``."""
    return float(psnr_db(image, truth))


def denoise_with(image: np.ndarray, model) -> np.ndarray:
    from napari_cryodenoise.engine import denoise

    return denoise(image, model, device="cpu")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training budget")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="default")
    p.add_argument("--size", type=int, default=1024, help="micrograph side (px)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--n-train", type=int, default=4)
    p.add_argument("--n-test", type=int, default=2)
    p.add_argument("--no-pretrained", action="store_true", help="skip the pretrained unet")
    p.add_argument("--markdown", metavar="PATH", help="also write the table there")
    p.add_argument("--seed", type=int, default=100)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    shape = (args.size, args.size)
    movies = [
        simulate_movie(shape, n_frames=args.frames, seed=args.seed + i)
        for i in range(args.n_train + args.n_test)
    ]
    train_movies, test_movies = movies[: args.n_train], movies[args.n_train :]
    pairs = [pair_from_movie(m.frames, name=f"train{i}") for i, m in enumerate(train_movies)]
    print(
        f"simulated {len(movies)} movies of {args.size}^2 x {args.frames} frames in "
        f"{time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )

    config = TrainConfig(
        minutes=args.minutes, val_every=50, device="cpu", seed=0, **VARIANTS[args.variant]
    )

    def report(status) -> None:
        if status.message:
            print("  " + status.message.replace("\n", "\n  "), file=sys.stderr)
        if status.val_loss is not None:
            print(
                f"  step {status.step}  train {status.train_loss_avg:.4f}  val "
                f"{status.val_loss:.5f}  {status.steps_per_second:.2f} steps/s",
                file=sys.stderr,
            )

    t_train = time.perf_counter()
    result = train_noise2noise(pairs, config, on_step=report)
    train_s = time.perf_counter() - t_train
    crop = int(result.config["crop"])
    batch = int(result.config["batch_size"])
    pixels = result.steps * batch * min(crop, args.size) ** 2
    print(
        f"trained {result.steps} steps in {train_s:.0f} s ({result.steps / train_s:.2f} "
        f"steps/s, {pixels / train_s / 1e3:.0f} kpx/s), best val {result.best_val_loss:.5f} "
        f"at step {result.best_step}",
        file=sys.stderr,
    )

    rows: dict[str, list[float]] = {"raw sum": [], "best Gaussian (oracle sigma)": []}
    if not args.no_pretrained:
        rows["pretrained unet (Topaz weights)"] = []
    label = f"trained {args.variant} (this run)"
    rows[label] = []
    rows[f"trained {args.variant}, mean of denoised halves"] = []
    sigmas = []
    times: dict[str, float] = {}
    for m in test_movies:
        truth = m.clean
        rows["raw sum"].append(psnr(m.total, truth))
        scores = [psnr(ndimage.gaussian_filter(m.total, s), truth) for s in SIGMAS]
        sigmas.append(SIGMAS[int(np.argmax(scores))])
        rows["best Gaussian (oracle sigma)"].append(max(scores))
        if not args.no_pretrained:
            t = time.perf_counter()
            den = denoise_with(m.total, "unet")
            rows["pretrained unet (Topaz weights)"].append(psnr(den, truth))
            times["pretrained"] = time.perf_counter() - t
        t = time.perf_counter()
        rows[label].append(psnr(denoise_with(m.total, result.model), truth))
        times["trained"] = time.perf_counter() - t
        halves = denoise_with(m.even, result.model) + denoise_with(m.odd, result.model)
        rows[f"trained {args.variant}, mean of denoised halves"].append(psnr(halves, truth))

    lines = [
        f"Held-out simulated micrographs: {args.n_test} x {args.size}^2, {args.frames} frames, "
        f"40 e/A^2; training: {args.n_train} movies, {args.minutes:g} min budget on "
        f"{result.device} ({result.steps} steps, {train_s:.0f} s, "
        f"{result.steps / train_s:.2f} steps/s, {batch} x {crop} px crops, "
        f"init {result.config['init'] or 'none'}, arch {result.model.arch}, "
        f"{result.config['optimizer']} lr {result.config['lr']:g}).",
        "",
        "| method | PSNR dB (mean) | per image | gain over raw |",
        "|---|---|---|---|",
    ]
    raw = np.mean(rows["raw sum"])
    for name, vals in rows.items():
        per = ", ".join(f"{v:.2f}" for v in vals)
        lines.append(f"| {name} | {np.mean(vals):.2f} | {per} | {np.mean(vals) - raw:+.2f} |")
    lines.append("")
    lines.append(
        f"Best Gaussian sigmas: {sigmas}; inference on 1 image: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
    )
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
