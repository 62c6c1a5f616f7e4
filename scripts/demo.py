"""Open napari with the plugin's Denoise dock widget and a sample or the given files.

Run as ``python scripts/demo.py [FILES...] [--screenshot PNG]`` (or ``scripts/demo.sh``).
``--denoise`` starts denoising the first image at once (``--mode``, ``--model``,
``--bin``); ``--side-by-side`` shows raw | denoised in a grid with one camera;
``--zoom``/``--center`` frame the view. ``--train`` opens the Train widget on
the even/odd sample instead and trains (``--train-minutes``/``--train-steps``,
``--network``). With ``--screenshot`` the window (or, with ``--canvas-only``,
the canvas) is saved once the job is done, then napari quits.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

PLUGIN = "napari-cryodenoise"
WIDGET = "Denoise"  # display_name of the dock widget in napari.yaml
TRAIN_WIDGET = "Train (Noise2Noise)"


def main(argv: Sequence[str] | None = None) -> int:
    """Open a viewer; with ``--screenshot`` save a PNG of the window and quit."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="*", help="MRC/TIFF files to open (default: a sample)")
    parser.add_argument(
        "--sample",
        default="micrograph",
        help="sample to open without files: micrograph, movie, even_odd",
    )
    parser.add_argument("--screenshot", metavar="PNG", help="save a screenshot and exit")
    parser.add_argument("--canvas-only", action="store_true", help="screenshot the canvas only")
    parser.add_argument("--no-widget", action="store_true", help="do not open the dock widget")
    parser.add_argument("--denoise", action="store_true", help="denoise the image at once")
    parser.add_argument("--mode", choices=("live", "whole"), default="live")
    parser.add_argument("--model", default=None, help="model alias or file (default: unet)")
    parser.add_argument("--bin", type=int, default=1, help="Fourier binning factor")
    parser.add_argument(
        "--no-fill",
        action="store_true",
        help="live mode: only what is visible (and neighbouring slices)",
    )
    parser.add_argument("--side-by-side", action="store_true", help="raw | denoised grid")
    parser.add_argument("--zoom", type=float, default=None, help="camera zoom (screen px/A)")
    parser.add_argument(
        "--center",
        type=float,
        nargs=2,
        default=None,
        metavar=("Y", "X"),
        help="camera centre in world units (Angstrom)",
    )
    parser.add_argument("--train", action="store_true", help="train on the even/odd sample")
    parser.add_argument("--train-minutes", type=float, default=2.0, help="--train budget")
    parser.add_argument("--train-steps", type=int, default=None, help="--train budget in steps")
    parser.add_argument(
        "--network", default="init:", help="--train network: init:[NAME] or arch:NAME"
    )
    parser.add_argument("--model-out", default=None, help="--train: model file to write")
    parser.add_argument("--size", type=int, nargs=2, default=(1500, 950), metavar=("W", "H"))
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for --denoise")
    args = parser.parse_args(argv)

    import napari

    viewer = napari.Viewer(title="napari-cryodenoise")
    viewer.window.resize(*args.size)
    if args.files:
        viewer.open(args.files, plugin=PLUGIN)
    else:
        viewer.open_sample(PLUGIN, "even_odd" if args.train else args.sample)
    widget = None
    if not args.no_widget:
        name = TRAIN_WIDGET if args.train else WIDGET
        _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    if widget is not None and args.train:
        _train(widget, args)
    elif widget is not None and args.denoise:
        _denoise(widget, args)
    from napari_cryodenoise._napari._qt.live import camera_of

    if args.zoom is not None:
        camera_of(viewer).zoom = args.zoom
    if args.center is not None:
        camera_of(viewer).center = (0.0, *args.center)
    if args.screenshot:
        _process_events(20)
        viewer.screenshot(args.screenshot, canvas_only=args.canvas_only)
        if widget is not None:
            widget.shutdown()
            _wait(lambda: widget.running_workers == 0, 60)
        viewer.close()
        return 0
    napari.run()
    return 0


def _denoise(widget, args: argparse.Namespace) -> None:
    from napari_cryodenoise._napari.settings import MODE_LIVE, MODE_WHOLE

    if args.model:
        if args.model not in widget.model.choices:
            widget.model.value = "__file__"
            widget.model_file.value = args.model
        else:
            widget.model.value = args.model
    widget.mode.value = MODE_LIVE if args.mode == "live" else MODE_WHOLE
    widget.bin_factor.value = args.bin
    widget.fill.value = not args.no_fill
    if args.mode == "live" and (args.zoom is not None or args.center is not None):
        from napari_cryodenoise._napari._qt.live import camera_of

        if args.side_by_side:  # the grid halves the view: frame it first
            widget.viewer.canvas.grid.shape = (1, 2)
            widget.viewer.canvas.grid.enabled = True
        if args.zoom is not None:
            camera_of(widget.viewer).zoom = args.zoom
        if args.center is not None:
            camera_of(widget.viewer).center = (0.0, *args.center)
    widget.run()
    if not args.screenshot:
        return
    if args.mode == "live":
        _wait(lambda: widget.live is not None and not widget.busy, args.timeout)
        _wait(lambda: not widget.live.busy, args.timeout)
    else:
        _wait(lambda: widget.result_layer is not None and not widget.busy, args.timeout)
    if args.side_by_side:
        widget.toggle_side_by_side()


def _train(widget, args: argparse.Namespace) -> None:
    widget.network.value = args.network
    if args.train_steps:
        widget.budget_unit.value = "steps"
        widget.budget.value = args.train_steps
    else:
        widget.budget.value = args.train_minutes
    if args.model_out:
        widget.output.value = args.model_out
    widget.start()
    if args.screenshot:
        _wait(lambda: not widget.busy, args.timeout)
        _wait(lambda: widget.running_workers == 0, args.timeout)


def _process_events(n: int = 1) -> None:
    from qtpy.QtWidgets import QApplication

    for _ in range(n):
        QApplication.processEvents()
        time.sleep(0.01)


def _wait(until, timeout: float) -> None:
    t0 = time.perf_counter()
    while not until():
        _process_events()
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"still running after {timeout:.0f} s")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
