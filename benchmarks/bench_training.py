"""Quality benchmark of Noise2Noise training on simulated movies (not a test).

Simulates movies with ground truth (``napari_cryodenoise.simulate``), trains a
network on the training movies for a fixed wall-clock budget per recipe, and
scores, on held-out movies, the full-dose sum as it is (raw), the best Gaussian
filter (sigma chosen per image with the ground truth, i.e. an optimistic
baseline), Topaz's pretrained general ``unet`` and each trained network: PSNR in
dB against the noise-free image after the least-squares affine fit of each
result to it. Recipes ("variants") are :class:`TrainConfig` overrides; every
recipe gets the same budget, the same data and the same machine, so the table
compares them directly (``old-default`` is the recipe before issue 15). The
``supervised-*`` rows train the same way against the noise-free image instead of a
noisy half: the ceiling of what any Noise2Noise recipe of that network reaches in the
budget.

Run it alone on a quiet machine, e.g.::

    nice python benchmarks/bench_training.py --minutes 8 --variants old-default,default
    python benchmarks/bench_training.py --dose 15 --variants old-default,default
    # another particle and pixel size than the recipes were tuned on
    python benchmarks/bench_training.py --particle-diameter 250 --pixel-size 1.0 \
        --variants old-default,default
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from scipy import ndimage

from napari_cryodenoise.metrics import psnr_db
from napari_cryodenoise.simulate import ParticleModel, simulate_movie
from napari_cryodenoise.training import TrainConfig, pair_from_movie, train_noise2noise

#: The recipe before issue 15 (the defaults it replaced), spelled out.
OLD_DEFAULT = dict(
    init="unet", crop=128, batch_size=4, optimizer="adam", lr=1e-4, precision="fp32",
    pairing="fixed", ema=0.0, crop_start=None, input_share=0.5,
)  # fmt: skip
#: The first default of issue 15: bf16, random partitions into equal halves, 192 px crops.
HALVES = dict(input_share=0.5)
#: Training recipes to compare (TrainConfig overrides); each lever alone on top of the old
#: default, then combined.
VARIANTS: dict[str, dict] = {
    "old-default": OLD_DEFAULT,
    "default": dict(),  # today's TrainConfig defaults
    "bf16": {**OLD_DEFAULT, "precision": "bf16"},
    "random-pairs": {**OLD_DEFAULT, "pairing": "random"},
    "ema": {**OLD_DEFAULT, "ema": 0.995},
    "lr-3e-4": {**OLD_DEFAULT, "lr": 3e-4},
    "lr-1e-3": {**OLD_DEFAULT, "lr": 1e-3},
    "l1": {**OLD_DEFAULT, "loss": "l1"},
    "batch-8": {**OLD_DEFAULT, "batch_size": 8},
    "crop-192": {**OLD_DEFAULT, "crop": 192},
    "crop-96-256": {**OLD_DEFAULT, "crop_start": 96, "crop": 256},
    "init-unet-v0.2.1": {**OLD_DEFAULT, "init": "unet-v0.2.1"},
    "init-unet-small": {**OLD_DEFAULT, "init": "unet-small"},
    "scratch-unet-fast": {**OLD_DEFAULT, "init": None, "arch": "unet-fast", "lr": 3e-3},
    "bf16+random": {**OLD_DEFAULT, "precision": "bf16", "pairing": "random"},
    "bf16+random+lr": {**OLD_DEFAULT, "precision": "bf16", "pairing": "random", "lr": 3e-4},
    "bf16+random+lr+ema": {
        **OLD_DEFAULT,
        "precision": "bf16",
        "pairing": "random",
        "lr": 3e-4,
        "ema": 0.995,
    },  # fmt: skip
    "bf16+ema": {**OLD_DEFAULT, "precision": "bf16", "ema": 0.995},
    "bf16+random+ema": {**OLD_DEFAULT, "precision": "bf16", "pairing": "random", "ema": 0.995},
    "bf16+random+ema+crop": {
        **OLD_DEFAULT,
        "precision": "bf16",
        "pairing": "random",
        "ema": 0.995,
        "crop_start": 96,
        "crop": 192,
    },  # fmt: skip
    "bf16+random+ema+batch-8": {
        **OLD_DEFAULT,
        "precision": "bf16",
        "pairing": "random",
        "ema": 0.995,
        "batch_size": 8,
    },  # fmt: skip
    "bf16+random+crop": {
        **OLD_DEFAULT,
        "precision": "bf16",
        "pairing": "random",
        "crop_start": 96,
        "crop": 192,
    },  # fmt: skip
    "bf16+random+share-0.75": {
        **OLD_DEFAULT,
        "precision": "bf16",
        "pairing": "random",
        "input_share": 0.75,
    },  # fmt: skip
    "bf16+random+share-0.625": {
        **OLD_DEFAULT,
        "precision": "bf16",
        "pairing": "random",
        "input_share": 0.625,
    },  # fmt: skip
    "halves": HALVES,
    "halves+crops-96-256": {**HALVES, "crop_start": 96, "crop": 256},
    "halves+crop-256": {**HALVES, "crop": 256},
    "halves+no-val": {**HALVES, "val_fraction": 0.0},
    "share-0.75": dict(input_share=0.75),
    "default+lr-1.5e-4": dict(lr=1.5e-4),
    "default+lr-2e-4": dict(lr=2e-4),
    "default+lr-3e-4": dict(lr=3e-4),
    "default+init-unet-v0.2.1": dict(init="unet-v0.2.1"),
    "default+ema-0.995": dict(ema=0.995),
    "topaz": dict(
        init="unet",
        crop=800,
        batch_size=4,
        optimizer="adagrad",
        lr=1e-3,
        lr_schedule="constant",
        warmup_steps=0,
        precision="fp32",
        pairing="fixed",
    ),  # fmt: skip
}
#: Supervised ceilings (not recipes a user can run): the default recipe trained against the
#: noise-free image, from the full-dose sum or from the dose of the default's input (5 of 8
#: frame groups). Noise2Noise with the same network and budget cannot do better than these.
#: Name -> (input dose share, TrainConfig overrides).
SUPERVISED: dict[str, tuple[float, dict]] = {
    "supervised-full-dose": (1.0, {}),
    "supervised-5/8-dose": (0.625, {}),
    "supervised-full-dose+lr-3e-4": (1.0, {"lr": 3e-4}),
}
SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0)


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    """PSNR (dB) after the least-squares affine fit of ``image`` to ``truth``."""
    return float(psnr_db(image, truth))


def denoise_with(image: np.ndarray, model, ensemble: bool = False) -> np.ndarray:
    """Denoise on the CPU; ``ensemble`` averages the 8 flips/rotations (the engine's option)."""
    from napari_cryodenoise.engine import denoise

    return denoise(image, model, device="cpu", ensemble=ensemble)


def supervised_pairs(movies, share: float) -> list:
    """Pairs whose target is the noise-free image, normalised as the input's signal.

    The input is the sum of the frames ``i`` with ``i % 8 < 8 * share`` (all frames for
    share 1); the target is the ground truth at that dose, normalised with the input's mean
    and standard deviation, so it is exactly the signal part of the normalised input.
    """
    from napari_cryodenoise.training import ImagePair

    pairs = []
    for i, m in enumerate(movies):
        keep = [f for f in range(m.n_frames) if f % 8 < round(8 * share)]
        source = m.frames[keep].sum(axis=0, dtype=np.float32)
        target = (m.clean * (len(keep) / m.n_frames)).astype(np.float32)
        # the input's normalisation for both
        pairs.append(ImagePair(source, target, name=f"train{i}", shared_stats=True))
    return pairs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=8.0, help="training budget per recipe")
    p.add_argument(
        "--variants", default="old-default,default", help=f"comma list of {sorted(VARIANTS)}"
    )
    p.add_argument("--repeats", type=int, default=1, help="training seeds per recipe (median)")
    p.add_argument(
        "--first-seed", type=int, default=0, help="training seeds are FIRST..FIRST+repeats-1"
    )
    p.add_argument("--size", type=int, default=1024, help="micrograph side (px)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--dose", type=float, default=40.0, help="total dose (e/A^2)")
    p.add_argument("--pixel-size", type=float, default=1.5, help="A/px")
    p.add_argument("--particle-diameter", type=float, default=150.0, help="A")
    p.add_argument("--particle-seed", type=int, default=7)
    p.add_argument("--n-train", type=int, default=4)
    p.add_argument("--n-test", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--ensemble", action="store_true", help="also score the 8-fold self-ensemble")
    p.add_argument("--halves", action="store_true", help="also score the mean of denoised halves")
    p.add_argument("--no-pretrained", action="store_true", help="skip the pretrained unet")
    p.add_argument("--markdown", metavar="PATH", help="also write the table there")
    p.add_argument("--save-models", metavar="DIR", help="save each trained network there")
    p.add_argument("--seed", type=int, default=100)
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS and v not in SUPERVISED]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {sorted(VARIANTS) + list(SUPERVISED)}")
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    shape = (args.size, args.size)
    particle = ParticleModel.procedural(args.particle_diameter, seed=args.particle_seed)
    movies = [
        simulate_movie(
            shape,
            n_frames=args.frames,
            dose=args.dose,
            pixel_size=args.pixel_size,
            particle=particle,
            seed=args.seed + i,
        )
        for i in range(args.n_train + args.n_test)
    ]
    train_movies, test_movies = movies[: args.n_train], movies[args.n_train :]
    pairs = [pair_from_movie(m.frames, name=f"train{i}") for i, m in enumerate(train_movies)]
    print(
        f"simulated {len(movies)} movies of {args.size}^2 x {args.frames} frames in "
        f"{time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )

    rows: dict[str, list[float]] = {"raw sum": [], "best Gaussian (oracle sigma)": []}
    facts: dict[str, str] = {}
    for m in test_movies:
        rows["raw sum"].append(psnr(m.total, m.clean))
        scores = [psnr(ndimage.gaussian_filter(m.total, s), m.clean) for s in SIGMAS]
        rows["best Gaussian (oracle sigma)"].append(max(scores))
        if not args.no_pretrained:
            den = denoise_with(m.total, "unet")
            rows.setdefault("pretrained unet (Topaz weights)", []).append(psnr(den, m.clean))

    for name in variants:
        runs: list[float] = []
        steps, rates = [], []
        for rep in range(args.first_seed, args.first_seed + args.repeats):
            if name in SUPERVISED:
                share, extra = SUPERVISED[name]
                overrides = dict(swap=False, pairing="fixed", **extra)
                train_pairs = supervised_pairs(train_movies, share)
            else:
                overrides, train_pairs = VARIANTS[name], pairs
            config = TrainConfig(
                minutes=args.minutes, val_every=50, device="cpu", seed=rep, **overrides
            )
            t_train = time.perf_counter()
            result = train_noise2noise(train_pairs, config)
            train_s = time.perf_counter() - t_train
            steps.append(result.steps)
            rates.append(result.steps / train_s)
            c = result.config
            if args.save_models:
                from napari_cryodenoise.models import save_model

                save_model(result.model, f"{args.save_models}/{name}_seed{rep}.pt")
            scores = [psnr(denoise_with(m.total, result.model), m.clean) for m in test_movies]
            runs.append(float(np.mean(scores)))
            print(
                f"{name} seed {rep}: {result.steps} steps in {train_s:.0f} s, "
                f"PSNR {runs[-1]:.2f} dB",
                file=sys.stderr,
            )
            if rep == args.first_seed:
                rows[f"trained: {name}"] = scores
                if args.halves:
                    rows[f"trained: {name}, mean of denoised halves"] = [
                        psnr(
                            denoise_with(m.even, result.model) + denoise_with(m.odd, result.model),
                            m.clean,
                        )
                        for m in test_movies
                    ]
                if args.ensemble:
                    t = time.perf_counter()
                    rows[f"trained: {name}, self-ensemble x8"] = [
                        psnr(denoise_with(m.total, result.model, ensemble=True), m.clean)
                        for m in test_movies
                    ]
                    facts[f"{name} ensemble s/image"] = (
                        f"{(time.perf_counter() - t) / len(test_movies):.1f}"
                    )
        facts[name] = (
            f"{statistics.median(steps):.0f} steps, {statistics.median(rates):.2f} steps/s, "
            f"{c['batch_size']} x {c['crop']} px, {c['precision']}, pairing {c['pairing']} "
            f"(input share {c['input_share']:g}), "
            f"ema {c['ema']:g}, init {c['init'] or 'none'}/{c['arch'] or '-'}, "
            f"{c['optimizer']} lr {c['lr']:g}"
            + (
                f"; PSNR over {args.repeats} seeds: median {statistics.median(runs):.2f} "
                f"({min(runs):.2f}-{max(runs):.2f})"
                if args.repeats > 1
                else ""
            )
        )

    lines = [
        f"Held-out simulated micrographs: {args.n_test} x {args.size}^2, {args.frames} frames, "
        f"{args.dose:g} e/A^2, {args.pixel_size:g} A/px, {args.particle_diameter:g} A "
        f"particle; training: {args.n_train} movies, {args.minutes:g} min per recipe on "
        f"{torch.get_num_threads()} CPU thread(s).",
        "",
        "| method | PSNR dB (mean) | per image | gain over raw | vs old default |",
        "|---|---|---|---|---|",
    ]
    raw = np.mean(rows["raw sum"])
    old = rows.get("trained: old-default")
    for name, vals in rows.items():
        per = ", ".join(f"{v:.2f}" for v in vals)
        delta = f"{np.mean(vals) - np.mean(old):+.2f}" if old else ""
        lines.append(
            f"| {name} | {np.mean(vals):.2f} | {per} | {np.mean(vals) - raw:+.2f} | {delta} |"
        )
    lines.append("")
    lines.extend(f"- {k}: {v}" for k, v in facts.items())
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
