"""Measure the Session browser: first denoised view of a session, and stepping with denoise-ahead.

Run as ``python benchmarks/bench_session.py [--n 6] [--size 4096] [--model unet]``
(needs a display or Xvfb). Writes ``n`` noise micrographs of ``size``^2 at
0.67 A/px (auto bin x4) in a temporary folder, opens the "Session browser"
dock, and prints medians of:

- first view: ``widget.open(folder)`` -> the coarse preview of the first
  micrograph drawn (engine warm: the model is loaded and the engine set up
  before, on another session);
- step to a prefetched micrograph: the key handler (N) -> its denoised preview
  on screen (the handler returns and one event-loop round paints it), with the
  denoise-ahead of the neighbour finished before the press;
- its visible full-resolution tiles: N -> every visible tile done.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

PLUGIN = "napari-cryodenoise"


def _spin(until: Callable[[], bool], timeout: float) -> float:
    from qtpy.QtWidgets import QApplication

    t0 = time.perf_counter()
    while not until():
        QApplication.processEvents()
        time.sleep(0.001)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"not done after {timeout} s")
    return time.perf_counter() - t0


def _write(folder: Path, n: int, size: int, seed: int) -> None:
    from napari_cryodenoise.io import write_mrc

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        data = rng.normal(100, 10, (size, size)).astype(np.float32)
        write_mrc(folder / f"mic_{k:03d}.mrc", data, voxel_size=0.67)
        t = 10**18 + k * 10**9
        os.utime(folder / f"mic_{k:03d}.mrc", ns=(t, t))


def _visible_done(w) -> bool:
    view = w.display.view
    return view is not None and not view.plan_left() and not view.busy


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements and print a small report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=6, help="micrographs (steps = n - 1)")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--sessions", type=int, default=3, help="first views to time")
    args = parser.parse_args(argv)

    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="bench session")
    viewer.window.resize(1400, 900)
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Session browser")
    w.opener.model.value = args.model
    root = Path(tempfile.mkdtemp(prefix="bench_session_"))
    print(
        f"{args.n} micrographs {args.size}^2 at 0.67 A/px; model {args.model}; "
        f"torch threads {torch.get_num_threads()}; cores {os.cpu_count()}; "
        f"load avg {os.getloadavg()[0]:.1f}"
    )
    # warm the engine on a throw-away session (model load, runner set-up)
    _write(root / "warm", 2, args.size, 99)
    w.open(str(root / "warm"))
    _spin(lambda: w.display.model() is not None and _visible_done(w), 600)
    _spin(lambda: not w.display.prefetcher.busy, 600)

    firsts = []
    shown: list[float] = []
    w.display.shown.connect(lambda _i: shown.append(time.perf_counter()))
    for s in range(args.sessions):
        folder = root / f"session{s}"
        _write(folder, args.n if s == 0 else 2, args.size, s)
        w.display.prefetcher.cancel()
        _spin(lambda: w.running_workers == 0, 120)
        shown.clear()
        t0 = time.perf_counter()
        w.open(str(folder))
        _spin(lambda: bool(shown), 120)
        QApplication.processEvents()  # the paint
        firsts.append(time.perf_counter() - t0)
        if s == 0:
            first_folder = folder
        _spin(lambda: _visible_done(w), 600)
        _spin(lambda: not w.display.prefetcher.busy, 600)

    w.open(str(first_folder))
    _spin(lambda: _visible_done(w) and not w.display.prefetcher.busy, 600)
    steps, tiles, prefetched = [], [], []
    handler = next(f for k, f in viewer.keymap.items() if str(k) == "N")
    for _ in range(args.n - 1):
        _spin(lambda: _visible_done(w), 600)
        _spin(lambda: not w.display.prefetcher.busy, 600)
        nxt = w.session.items[w.session.index + 1]
        prefetched.append(nxt.key in w.display.displays)
        shown.clear()
        t0 = time.perf_counter()
        handler(viewer)
        _spin(lambda: bool(shown), 120)
        QApplication.processEvents()
        steps.append(time.perf_counter() - t0)
        _spin(lambda: _visible_done(w), 600)
        tiles.append(time.perf_counter() - t0)

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s (n={len(values)}, max {max(values):.2f})"

    print(f"first denoised view of a new session, engine warm: {med(firsts)}")
    print(f"step (N) to a prefetched micrograph, preview on screen: {med(steps)}")
    print(f"step (N), every visible full-resolution tile done: {med(tiles)}")
    print(f"neighbour prefetched before the press: {sum(prefetched)}/{len(prefetched)}")
    w.shutdown()
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
