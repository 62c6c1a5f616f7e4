"""Batch throughput: in-process vs a local Dask cluster with 1 and 2 worker processes.

Simulates N micrographs (default 8 of 1024x1024), then denoises them with
:func:`napari_cryodenoise.batch.run_batch` in each configuration, torch
threads per worker = CPU cores / workers, and prints micrographs per minute.
"cold" includes cluster start-up and the per-worker model load; "warm" is
later batches on the same, already started cluster (steady state); in-process
and warm figures are medians of ``--repeats`` batches.

Run niced, it takes a few minutes on 2 cores::

    nice python benchmarks/bench_distributed.py [--n 8] [--size 1024] [--model unet]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_cryodenoise.batch import run_batch
from napari_cryodenoise.io import read_image, write_mrc
from napari_cryodenoise.simulate import simulate_movie


def make_inputs(folder: Path, n: int, size: int) -> list[Path]:
    paths = []
    for i in range(n):
        movie = simulate_movie((size, size), 4, seed=100 + i)
        path = folder / f"sim_{i:03d}.mrc"
        paths.append(write_mrc(path, movie.total, voxel_size=movie.pixel_size))
    return paths


def model_spec(name: str, folder: Path) -> str:
    """The alias when its weights are available, else random weights of the same architecture
    (same cost per pixel) saved to a file."""
    from napari_cryodenoise.errors import WeightsUnavailableError
    from napari_cryodenoise.models import build_model, load_model, save_model

    try:
        load_model(name, download=False)
        return name
    except WeightsUnavailableError:
        return str(save_model(build_model(name), folder / f"{name}-random.pt"))


def pairs(inputs: list[Path], outdir: Path) -> list[tuple[Path, Path]]:
    return [(p, outdir / p.name) for p in inputs]


def timed(label, inputs, outdir, spec, settings, **kw) -> tuple[float, object]:
    start = time.perf_counter()
    summary = run_batch(pairs(inputs, outdir), [spec], settings, **kw)
    wall = time.perf_counter() - start
    if not summary.ok or len(summary.done) != len(inputs):
        sys.exit(f"{label}: {summary.format()}")
    return wall, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--model", default="unet")
    parser.add_argument(
        "--repeats", type=int, default=3, help="in-process and warm batches; medians shown"
    )
    args = parser.parse_args()
    repeats = max(1, args.repeats)

    import torch

    from napari_cryodenoise.batch.cluster import start_client

    cores = len(os.sched_getaffinity(0))
    settings = {"device": "cpu"}
    rows: list[tuple[str, int, int, float, float | None]] = []
    reference: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        inputs = make_inputs(root / "in", args.n, args.size)
        spec = model_spec(args.model, root)
        print(
            f"{args.n} micrographs {args.size}x{args.size}, model {spec}, {cores} cores, "
            f"torch {torch.__version__} (simulated in {time.perf_counter() - t0:.0f} s), "
            f"load average {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
        )

        # in-process, all cores
        torch.set_num_threads(cores)
        wall = statistics.median(
            timed("in-process", inputs, root / f"serial{r}", spec, settings)[0]
            for r in range(repeats)
        )
        rows.append(("in-process", 0, cores, wall, None))
        for p in inputs:
            reference[p.name] = read_image(root / "serial0" / p.name, mmap=False)[0]
        print(f"in-process: {wall:.1f} s", file=sys.stderr)

        for workers in (1, 2):
            threads = max(1, cores // workers)
            label = f"local:{workers}"
            # cold: run_batch starts (and closes) its own cluster
            cold, _ = timed(
                label,
                inputs,
                root / f"cold{workers}",
                spec,
                settings,
                cluster=label,
                threads_per_worker=threads,
            )
            # warm: the cluster --cluster local:N starts, its workers already holding the model
            client, cluster, _plugin = start_client(label, None, threads)
            try:
                timed(
                    label,
                    inputs[:workers],
                    root / f"prime{workers}",
                    spec,
                    settings,
                    client=client,
                    threads_per_worker=threads,
                )
                warm = statistics.median(
                    timed(
                        label,
                        inputs,
                        root / f"warm{workers}_{r}",
                        spec,
                        settings,
                        client=client,
                        threads_per_worker=threads,
                    )[0]
                    for r in range(repeats)
                )
            finally:
                client.close()
                cluster.close()
            rows.append((label, workers, threads, cold, warm))
            for p in inputs:
                got = read_image(root / f"warm{workers}_0" / p.name, mmap=False)[0]
                diff = float(np.abs(got - reference[p.name]).max())
                if diff > 1e-4 * float(np.abs(reference[p.name]).max()):
                    sys.exit(f"{label}: output differs from in-process by {diff}")
            print(f"{label}: cold {cold:.1f} s, warm {warm:.1f} s", file=sys.stderr)

    n = args.n
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.1f} (1 min) on {cores} cores",
        file=sys.stderr,
    )
    print(
        "\n| configuration | workers x torch threads | cold: s | cold: mic/min "
        "| warm: s | warm: mic/min |"
    )
    print("|---|---|---|---|---|---|")
    for label, workers, threads, cold, warm in rows:
        layout = f"1 process x {threads}" if workers == 0 else f"{workers} x {threads}"
        warm_s = f"{warm:.1f} | {60 * n / warm:.1f}" if warm else "- | -"
        print(f"| {label} | {layout} | {cold:.1f} | {60 * n / cold:.1f} | {warm_s} |")


if __name__ == "__main__":
    main()
