"""napari reader contribution: MRC and TIFF images, stacks, movies and volumes."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from ..io import IMAGE_SUFFIXES, is_mrc_file, read_image
from ..io.tiff import TIFF_SUFFIXES
from .layers import apply_data_range, display_pyramid, layer_kwargs

LayerData = tuple  # (data, kwargs, layer_type)
PathOrPaths = str | list[str]


def _claims(path: str) -> bool:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        return False
    if suffix in TIFF_SUFFIXES:
        return p.is_file()
    return is_mrc_file(p)


def napari_get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """Return a reader for MRC/TIFF paths this plugin can open, else None.

    The check is cheap (suffix and MRC header words), so napari can offer the
    file to other readers when it is not one of ours.
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
                f"{Path(p).name}: the file gives no pixel size (0 or 1.0 in the header); "
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
