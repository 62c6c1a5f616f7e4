"""Measure the live view and GUI responsiveness on this machine (needs a display or Xvfb).

Run as ``python benchmarks/bench_live.py [IMAGE.mrc] [--model unet]``.
Prints: time to the first denoised view of the whole image (coarse preview),
time to the first full-resolution tile, tile throughput, time until the whole
visible plane (the window fits the image) is denoised, how late a 10 ms
``QTimer`` fires on the GUI thread (i.e. how long the event loop can go
without answering) while the click loads the model and draws the preview,
while live tiles arrive, and during a whole-image denoise; and whether the
preview stays visible as tiles arrive (contrast limits unchanged, the
unfinished part not flat under them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

PLUGIN = "napari-cryodenoise"


class Pinger:
    """A 10 ms QTimer on the GUI thread that records how late each tick comes."""

    def __init__(self, interval_ms: int = 10) -> None:
        from qtpy.QtCore import QTimer

        self.interval = interval_ms / 1000
        self.delays: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.delays.append(max(0.0, now - self._last - self.interval))
        self._last = now

    def start(self) -> None:
        """Start recording."""
        self.delays.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> dict[str, float]:
        """Stop; returns max/p99/median lateness in milliseconds and the tick count."""
        self._timer.stop()
        d = sorted(self.delays) or [0.0]
        return {
            "max_ms": 1000 * d[-1],
            "p99_ms": 1000 * d[int(0.99 * (len(d) - 1))],
            "median_ms": 1000 * statistics.median(d),
            "ticks": len(d),
        }


def _spin(until: Callable[[], bool], timeout: float) -> float:
    from qtpy.QtWidgets import QApplication

    t0 = time.perf_counter()
    while not until():
        QApplication.processEvents()
        time.sleep(0.002)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"not done after {timeout} s")
    return time.perf_counter() - t0


def _time_method(cls: type, name: str, record: dict[str, float]) -> None:
    """Wrap ``cls.name`` to keep its longest duration (ms) in ``record[name]``."""
    original = getattr(cls, name)

    def timed(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            record[name] = max(record.get(name, 0.0), 1000 * (time.perf_counter() - t))

    setattr(cls, name, timed)


def preview_check(live, first_limits: tuple[float, float]) -> tuple[bool, float]:
    """(contrast limits unchanged, std of the still-unfinished part / contrast range)."""
    store, layer = live.store, live.layer
    lo, hi = layer.contrast_limits
    tolerance = 0.01 * (first_limits[1] - first_limits[0])
    same = bool(np.allclose((lo, hi), first_limits, atol=tolerance))
    plane = store.plane_job_index(live.plane)
    done = store._done.get(plane)
    level = np.asarray(store.coarsest(plane))
    if done is None:
        return same, float(level.std() / (hi - lo))
    k = store.grid.tile * level.shape[0] / store.shape[-2]
    rows = np.minimum((np.arange(level.shape[0]) / k).astype(int), done.shape[0] - 1)
    cols = np.minimum((np.arange(level.shape[1]) / k).astype(int), done.shape[1] - 1)
    rest = level[~done[np.ix_(rows, cols)]]
    return same, float(rest.std() / (hi - lo)) if rest.size else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements and print a small report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("image", nargs="?", help="MRC file (default: 4096x4096 synthetic noise)")
    parser.add_argument("--model", default="unet")
    parser.add_argument("--tiles", type=int, default=6, help="full-resolution tiles to time")
    parser.add_argument(
        "--whole-seconds",
        type=float,
        default=8.0,
        help="how long to ping during a whole-image denoise",
    )
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="torch intra-op threads (0: torch's default)"
    )
    args = parser.parse_args(argv)

    import napari
    import torch

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)

    from napari_cryodenoise._napari._qt.denoise import DenoiseWidget
    from napari_cryodenoise._napari.settings import MODE_LIVE, MODE_WHOLE

    viewer = napari.Viewer(title="bench")
    viewer.window.resize(1400, 900)
    if args.image:
        (layer,) = viewer.open(args.image, plugin=PLUGIN)
    else:
        rng = np.random.default_rng(0)
        layer = viewer.add_image(
            rng.normal(100, 10, (4096, 4096)).astype(np.float32), name="noise4096"
        )
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    _spin(lambda: False if time.sleep(0.2) else True, 5)
    print(
        f"image {layer.name} {layer.data.shape} {layer.data.dtype}; model {args.model}; "
        f"torch threads {torch.get_num_threads()}; cores {os.cpu_count()}; "
        f"load avg {os.getloadavg()[0]:.1f}"
    )
    from napari_cryodenoise._napari._qt.live import LiveView

    main_ms: dict[str, float] = {}
    for name in ("_on_yielded", "_flush", "replan"):  # main-thread work of the live view
        _time_method(LiveView, name, main_ms)
    widget.model.value = args.model
    widget.mode.value = MODE_LIVE
    ping = Pinger()
    ping.start()
    t0 = time.perf_counter()
    widget.run()  # loads the model (and sets up the engine) in a worker, then goes live
    _spin(lambda: widget.live is not None, 120)
    live = widget.live
    _spin(lambda: live.t_first_view is not None, 120)
    start_ping = ping.stop()
    ping.start()
    checks: list[tuple[bool, float]] = []
    first_limits = tuple(live.layer.contrast_limits)
    live.tile_ready.connect(lambda job: checks.append(preview_check(live, first_limits)))
    first = live.t_start + live.t_first_view - t0
    print(
        f"first denoised view (coarse preview of the whole image), from the click, model "
        f"not loaded yet: {first:.2f} s (model load + engine set-up "
        f"{live.t_start - t0:.2f} s, preview {live.t_first_view:.2f} s)"
    )
    _spin(lambda: live.tiles_received >= 1, 300)
    print(f"first full-resolution tile: {live.t_first_tile:.2f} s")
    n0, t1 = live.tiles_received, time.perf_counter()
    ny, nx = live.store.grid.counts
    count = min(args.tiles, ny * nx - n0)  # the plane may have fewer tiles left
    _spin(lambda: live.tiles_received >= n0 + count, 900)
    dt = time.perf_counter() - t1
    tile = live.store.grid.tile
    if count > 0:
        print(
            f"tile throughput: {count / dt:.2f} tiles/s of up to {tile}x{tile} px "
            f"({count * tile * tile / dt / 1e6:.2f} Mpx/s, {count} tiles)"
        )
    _spin(lambda: live.store.plane_complete(live.plane), 900)
    whole_plane = time.perf_counter() - t0
    live_ping = ping.stop()
    print(
        f"whole visible plane denoised (fit to window, {live.store.tiles_done(live.plane)} "
        f"tiles), from the click: {whole_plane:.2f} s (from the live start "
        f"{time.perf_counter() - live.t_start:.2f} s)"
    )
    print(f"event loop from the click to the first preview: {start_ping}")
    print(f"event loop during live tiling (until the plane is complete): {live_ping}")
    kept = all(same for same, _ in checks)
    flat = min((v for _, v in checks), default=float("nan"))
    print(
        f"preview kept as {len(checks)} tiles arrived: contrast limits unchanged {kept}; "
        f"lowest (std of the unfinished part) / (contrast range) {flat:.2f} (flat grey: < 0.05)"
    )
    print(
        f"longest main-thread calls of the live view (ms): "
        f"{ {k: round(v, 1) for k, v in main_ms.items()} }"
    )
    widget.stop_live()
    _spin(lambda: widget.running_workers == 0, 60)
    # warm first view: a fresh store (other settings), runner already set up
    widget.gaussian.value = 0.5
    widget.run()
    live = widget.live
    warm = _spin(lambda: live.t_first_view is not None, 120)
    print(f"first denoised view, warm (engine set up, new settings): {warm:.2f} s")
    widget.stop_live()
    _spin(lambda: widget.running_workers == 0, 60)
    widget.gaussian.value = 0.0
    widget.mode.value = MODE_WHOLE
    ping.start()
    widget.run()
    t2 = time.perf_counter()
    _spin(lambda: time.perf_counter() - t2 > args.whole_seconds, args.whole_seconds + 5)
    whole_ping = ping.stop()
    print(f"event loop during a whole-image denoise ({args.whole_seconds:.0f} s): {whole_ping}")
    widget.cancel()
    _spin(lambda: widget.running_workers == 0, 120)
    print(f"total {time.perf_counter() - t0:.1f} s")
    viewer.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
