"""Sustained throughput of ``cryodenoise watch`` on simulated arrivals (not a timed test).

Run as ``python benchmarks/bench_watch.py [-n 12] [--size 4096] [--model unet] [--bin 4]``.

A writer thread drops N micrographs (float32 MRC, SIZE^2 px) into a folder, one every
``--every`` seconds (default 0.5: faster than the watch, so its queue never runs dry),
while :func:`napari_cryodenoise.watch.run_watch` follows the folder exactly as the
command does (same scanner, same per-file pipeline). Prints the sustained rate in
micrographs per minute (the median interval between consecutive outputs, the first
output excluded as it includes loading the model) and, to say what limits it, the
time of each stage on one micrograph: reading the file, Fourier binning, the network
on the binned image, writing the result.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _writer(folder: Path, n: int, size: int, every: float, stop: threading.Event) -> None:
    from napari_cryodenoise.io import write_mrc

    rng = np.random.default_rng(0)
    base = rng.normal(size=(size, size)).astype(np.float32)
    for i in range(n):
        if stop.is_set():
            return
        write_mrc(folder / f"FoilHole_{i:05d}.mrc", base + np.float32(i), voxel_size=0.83)
        time.sleep(every)


def _stages(path: Path, model: str, bin_factor: float) -> dict[str, float]:
    """Seconds of each stage of one micrograph, measured alone."""
    from napari_cryodenoise.engine import denoise, load_models
    from napari_cryodenoise.engine.filters import bin_shape, fourier_resize
    from napari_cryodenoise.io import read_image, write_mrc

    times: dict[str, float] = {}
    t = time.perf_counter()
    data, _ = read_image(path, mmap=False)
    data = np.asarray(data, np.float32)
    times["read"] = time.perf_counter() - t
    t = time.perf_counter()
    small = fourier_resize(data, bin_shape(data.shape, bin_factor))
    times["fourier bin"] = time.perf_counter() - t
    models = load_models(model)
    t = time.perf_counter()
    out = denoise(small, models)
    times["network"] = time.perf_counter() - t
    t = time.perf_counter()
    write_mrc(path.with_name(".stage_out.mrc"), out, voxel_size=0.83 * bin_factor)
    times["write"] = time.perf_counter() - t
    return times


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=12, help="micrographs (default 12)")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--bin", type=float, default=4.0)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between arrivals")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()

    from napari_cryodenoise.engine import set_threads
    from napari_cryodenoise.options import FileOptions
    from napari_cryodenoise.watch import WatchConfig, run_watch

    set_threads(args.threads)
    import torch

    with tempfile.TemporaryDirectory(prefix="bench_watch_") as tmp:
        indir, outdir = Path(tmp) / "in", Path(tmp) / "out"
        indir.mkdir()
        stop = threading.Event()
        writer = threading.Thread(
            target=_writer, args=(indir, args.n, args.size, args.every, stop), daemon=True
        )
        config = WatchConfig(
            folder=indir,
            outdir=outdir,
            models=(args.model,),
            settings=FileOptions(bin_factor=args.bin),
            settle=1.0,
            poll=0.5,
            stop_after_idle=3.0,
            out_star=outdir / "denoised_micrographs.star",
        )
        writer.start()
        try:
            summary = run_watch(config)
        finally:
            stop.set()
        times = summary.finish_times
        gaps = [b - a for a, b in zip(times[1:], times[2:], strict=False)]
        stages = _stages(indir / "FoilHole_00000.mrc", args.model, args.bin)
    rate = 60.0 / statistics.median(gaps) if gaps else float("nan")
    print(
        f"watch: {summary.done} micrographs {args.size}^2, model {args.model}, bin "
        f"{args.bin:g}, {torch.get_num_threads()} torch threads"
    )
    print(f"sustained rate (median interval between outputs): {rate:.1f} micrographs/min")
    print(f"per micrograph in the watch (median): {statistics.median(summary.seconds):.2f} s")
    total = sum(stages.values())
    for name, sec in stages.items():
        print(f"  {name:12s} {sec:6.2f} s  {100 * sec / total:4.0f}%")
    limit = max(stages, key=stages.get)
    print(f"limited by: {limit}")


if __name__ == "__main__":
    main()
