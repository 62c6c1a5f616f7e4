"""napari reader contribution: MRC and TIFF images, stacks, movies and volumes."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from ..io import is_image_path, read_image
from ..io.sniff import is_regular_file
from .layers import apply_data_range, display_pyramid, layer_kwargs

LayerData = tuple  # (data, kwargs, layer_type)
PathOrPaths = str | list[str]


def _claims(path: str) -> bool:
    """A regular file with one of our suffixes (MRC ones also as ``.gz``/``.bz2``).

    Nothing is opened: a FIFO, a device or a folder is declined at once (opening a
    FIFO would block napari). A file with our suffix is claimed even if it turns out
    unreadable, so that napari shows our one-line error rather than "no reader".
    """
    return is_image_path(path) and is_regular_file(path)


def napari_get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """Return a reader for MRC/TIFF paths this plugin can open, else None.

    The check looks only at the name and the file type (never the contents), so it
    returns at once; a damaged file with an MRC or TIFF suffix is claimed and reading
    it raises an :class:`~napari_cryodenoise.errors.InputError` naming the file and
    the problem, which napari shows.
    """
    paths = [path] if isinstance(path, str) else list(path)
    if not paths or not all(_claims(str(p)) for p in paths):
        return None
    return read_layers


def read_layers(path: PathOrPaths) -> list[LayerData]:
    """Read each path into an image layer with pixel size, units and header metadata.

    Data stays memory-mapped in its stored dtype; images larger than 2048 px
    get block-averaged display levels (a multiscale layer whose level 0 is
    the file's data) so that a zoomed-out view does not alias. A file
    without a real pixel size is shown at 1 A/pixel with a warning.
    """
    paths = [path] if isinstance(path, str) else list(path)
    layers: list[LayerData] = []
    for p in paths:
        data, info = read_image(p)
        if info.voxel_size_is_placeholder:
            warnings.warn(
                f"{Path(p).name}: the file gives no pixel size (0, 1.0, negative or NaN); "
                "showing it at 1 A/pixel.",
                UserWarning,
                stacklevel=2,
            )
        shown = display_pyramid(data)
        kwargs = layer_kwargs(data, info, multiscale=isinstance(shown, list))
        layers.append((shown, kwargs, "image"))
    _widen_contrast_range_on_insert()
    return layers


def _on_inserted(event: object) -> None:
    apply_data_range(getattr(event, "value", None))


def _widen_contrast_range_on_insert() -> None:
    """Have the current viewer widen the contrast slider of layers it gets from this reader.

    A reader can only pass ``contrast_limits``, from which napari also takes
    the slider's range: the robust limits would then be the widest the
    slider goes. The range is recorded in the layer's metadata and applied
    when the layer is inserted (connecting twice is a no-op).
    """
    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # noqa: BLE001 - no viewer (scripts, npe2 tests): nothing to do
        return
    if viewer is not None:
        viewer.layers.events.inserted.connect(_on_inserted)
