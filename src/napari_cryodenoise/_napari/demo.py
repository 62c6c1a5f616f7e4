"""Open napari with the plugin's dock widget and a sample or the given files.

Run as ``python -m napari_cryodenoise._napari.demo [FILES...] [--screenshot PNG]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

PLUGIN = "napari-cryodenoise"


def main(argv: Sequence[str] | None = None) -> int:
    """Open a viewer; with ``--screenshot`` save a PNG of the window and quit."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="*", help="MRC/TIFF files to open (default: a sample)")
    parser.add_argument("--sample", default="micrograph",
                        help="sample to open without files: micrograph, movie, even_odd")
    parser.add_argument("--screenshot", metavar="PNG", help="save a screenshot and exit")
    parser.add_argument("--no-widget", action="store_true", help="do not open the dock widget")
    args = parser.parse_args(argv)

    import napari

    viewer = napari.Viewer(title="napari-cryodenoise")
    viewer.window.resize(1500, 950)
    if args.files:
        viewer.open(args.files, plugin=PLUGIN)
    else:
        viewer.open_sample(PLUGIN, args.sample)
    if not args.no_widget:
        try:
            viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
        except (KeyError, ValueError):  # widget not part of this build
            pass
    if args.screenshot:
        from qtpy.QtWidgets import QApplication

        for _ in range(5):
            QApplication.processEvents()
        viewer.screenshot(args.screenshot, canvas_only=False)
        viewer.close()
        return 0
    napari.run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
