"""Forward time of the networks on CPU: memory format and the phase-kernel path.

Usage::

    python benchmarks/bench_models.py [--arch unet] [--size 1024] [--threads 2] [--repeats 3]

Prints the best-of-N wall time and process CPU time of one forward pass
(inference mode, batch 1) for NCHW vs channels-last weights, with and without
the phase-kernel decoder path, and the largest difference to the plain NCHW
output. Random weights (timing does not depend on the values). On a shared,
busy machine the wall time is unreliable; with ``--threads 1`` the CPU time
is a load-independent stand-in for the idle single-thread wall time.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from napari_cryodenoise.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="unet")
    parser.add_argument("--size", type=int, default=1024, help="edge (2D) or cube edge (3D)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.arch)
    shape = (1, 1) + (args.size,) * model.ndim
    x = torch.randn(shape)
    cl = torch.channels_last if model.ndim == 2 else torch.channels_last_3d
    variants = [
        ("nchw, plain", torch.contiguous_format, False),
        ("nchw, phase", torch.contiguous_format, True),
        ("channels_last, plain", cl, False),
        ("channels_last, phase", cl, True),
    ]
    best = {name: float("inf") for name, _, _ in variants}
    best_cpu = dict(best)
    ref = None
    diffs = {}
    with torch.inference_mode():
        for _ in range(args.repeats):  # interleaved, so load changes hit all variants alike
            for name, fmt, phase in variants:
                model = model.to(memory_format=fmt)
                if hasattr(model, "use_phase_trick"):
                    model.use_phase_trick = phase
                model(x[(...,) + (slice(0, 64),) * model.ndim])  # warm up this format
                t0, c0 = time.perf_counter(), time.process_time()
                y = model(x)
                best[name] = min(best[name], time.perf_counter() - t0)
                best_cpu[name] = min(best_cpu[name], time.process_time() - c0)
                if ref is None:
                    ref = y.clone()
                diffs[name] = float((y - ref).abs().max() / ref.abs().max())
    print(f"{args.arch} {shape[2:]} threads={args.threads} load={os.getloadavg()[0]:.1f}")
    for name, _, _ in variants:
        print(
            f"  {name:22s} wall {best[name]:7.2f} s  cpu {best_cpu[name]:7.2f} s"
            f"  rel. diff {diffs[name]:.1e}"
        )


if __name__ == "__main__":
    main()
