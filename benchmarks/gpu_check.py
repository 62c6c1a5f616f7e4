"""One-shot GPU proof: GPU tests, 4096^2 denoising per precision, live first view, training.

Run on a CUDA machine through ``bash benchmarks/gpu_check.sh`` (which installs what is
missing); prints one table at the end and exits non-zero when a step failed. Every step
has its own time budget so the whole check stays within about 8 minutes.

Figures (medians, after warm-up, with ``torch.cuda.synchronize``):

- ``denoise 4096^2 unet <precision>``: one whole 4096 x 4096 micrograph, the engine's
  default (fast) path, and its deviation from fp32 as rms and max of the difference in
  units of the fp32 output's standard deviation;
- ``live first view``: the coarse whole-plane preview (the micrograph binned to at most
  384 px and denoised), warm;
- ``train steps/s``: ``cryodenoise train`` for ``--train-seconds`` on simulated even/odd
  pairs with the CPU's default crop and batch (128 px, 4), so the ratio to the CPU's
  steps per second (``--cpu-steps-per-s``, measured on the developer machine) is fair.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS: list[tuple[str, str, str]] = []  # (what, figure, note)
FAILED: list[str] = []


def row(what: str, figure: str, note: str = "") -> None:
    ROWS.append((what, figure, note))
    print(f"  {what}: {figure} {note}", flush=True)


def step(name: str, fn: Callable[[], None]) -> None:
    print(f"== {name}", flush=True)
    t0 = time.perf_counter()
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - report and go on with the next step
        traceback.print_exc()
        FAILED.append(name)
        row(name, "FAILED", f"{type(err).__name__}: {err}"[:120])
    print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _median_time(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _unet(device: str):
    """The pretrained unet, or the same architecture with random weights (offline)."""
    from napari_cryodenoise.errors import WeightsUnavailableError
    from napari_cryodenoise.models import build_model, load_model

    try:
        return load_model("unet"), "pretrained unet"
    except WeightsUnavailableError:
        return build_model("unet"), "unet architecture, random weights (no weights here)"


def check_environment(args: argparse.Namespace) -> None:
    import torch

    cuda = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if cuda else "none"
    row("torch", torch.__version__, f"CUDA {torch.version.cuda}, GPU: {name}")
    if not cuda and not args.allow_cpu:
        raise RuntimeError("no CUDA GPU visible to torch")


def gpu_tests(args: argparse.Namespace) -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"]
    cmd += ["--ignore=tests/_napari", "tests"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=args.test_seconds)
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    summary = next((ln for ln in reversed(tail) if " passed" in ln or " failed" in ln), "")
    print("\n".join(tail[-15:]))
    row("GPU tests (pytest -m gpu)", summary or f"exit {proc.returncode}")
    if proc.returncode not in (0, 5):
        raise RuntimeError(f"pytest exit {proc.returncode}")


def denoise_bench(args: argparse.Namespace) -> None:
    import numpy as np

    from napari_cryodenoise.engine import denoise

    rng = np.random.default_rng(0)
    size = args.size
    image = rng.normal(0, 1, (size, size)).astype(np.float32)
    model, what = _unet(args.device)
    ref = None
    for precision in ("fp32", "fp16", "bf16"):

        def run(p: str = precision) -> np.ndarray:
            return denoise(image, model, device=args.device, precision=p)

        out = run()
        seconds = _median_time(run, args.repeats)
        note = what
        if ref is None:
            ref = out
        else:
            scale = float(ref.std()) or 1.0
            diff = (out.astype(np.float64) - ref) / scale
            note = f"rms {np.sqrt(np.mean(diff**2)):.4f}, max {np.abs(diff).max():.3f} std of fp32"
        row(f"denoise {size}^2 unet {precision}", f"{seconds:.3f} s", note)


def live_first_view(args: argparse.Namespace) -> None:
    import numpy as np

    from napari_cryodenoise.engine import denoise, fourier_resize

    rng = np.random.default_rng(1)
    image = rng.normal(0, 1, (args.size, args.size)).astype(np.float32)
    model, _ = _unet(args.device)
    small_shape = (384, 384)

    def preview() -> np.ndarray:
        small = fourier_resize(image, small_shape)
        out = denoise(small, model, device=args.device)
        return fourier_resize(out, image.shape)

    t0 = time.perf_counter()
    preview()
    _sync()
    cold = time.perf_counter() - t0
    warm = _median_time(preview, args.repeats, warmup=1)
    row(
        f"live first view (preview of {args.size}^2)",
        f"{warm * 1000:.0f} ms warm",
        f"{cold:.2f} s cold",
    )


def training(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{os.environ.get('PYTHONPATH', '')}"}
    cli = [sys.executable, "-m", "napari_cryodenoise"]
    subprocess.run(
        [*cli, "simulate", str(work), "--n", "4", "--size", "1024", "--frames", "8"],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    evens = sorted(str(p) for p in work.glob("*_even.mrc"))
    odds = sorted(str(p) for p in work.glob("*_odd.mrc"))
    _, what = _unet(args.device)
    init = [] if what.startswith("pretrained") else ["--arch", "unet"]
    cmd = [*cli, "train", "--even", *evens, "--odd", *odds, "-o", str(work / "m.pt")]
    cmd += ["-d", args.device, "--minutes", f"{args.train_seconds / 60:.3f}"]
    cmd += ["--crop", "128", "--batch-size", "4", "--val-fraction", "0", *init]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    print(text[-1500:])
    if proc.returncode != 0:
        raise RuntimeError(f"train exit {proc.returncode}")
    steps = [int(m) for m in re.findall(r"trained (\d+) steps", text)]
    if not steps:
        steps = [int(m) for m in re.findall(r"^step (\d+)/", text, re.M)]
    if not steps:
        raise RuntimeError("could not read the number of steps from the train output")
    rate = max(steps) / args.train_seconds
    note = f"{max(steps)} steps in {args.train_seconds:.0f} s (wall {wall:.0f} s)"
    if args.cpu_steps_per_s:
        note += f"; {rate / args.cpu_steps_per_s:.0f}x the 2-core CPU"
    row("train steps/s (crop 128, batch 4)", f"{rate:.1f}", note)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--test-seconds", type=float, default=150)
    p.add_argument("--train-seconds", type=float, default=120)
    p.add_argument("--cpu-steps-per-s", type=float, default=None)
    p.add_argument("--allow-cpu", action="store_true", help="run without CUDA (plumbing check)")
    p.add_argument("--skip", default="", help="comma-separated steps to skip: tests,train")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    t0 = time.perf_counter()
    step("environment", lambda: check_environment(args))
    if "environment" in FAILED:
        return 2
    if "tests" not in skip:
        step("GPU tests", lambda: gpu_tests(args))
    step("denoise 4096^2", lambda: denoise_bench(args))
    step("live first view", lambda: live_first_view(args))
    if "train" not in skip:
        step("training", lambda: training(args))
    width = max(len(w) for w, _, _ in ROWS)
    print(f"\n{'check':<{width}}  {'figure':>14}  note")
    for what, figure, note in ROWS:
        print(f"{what:<{width}}  {figure:>14}  {note}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; failed: {', '.join(FAILED) or 'none'}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
