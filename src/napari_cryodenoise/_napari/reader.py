"""napari reader contribution: MRC and TIFF images, stacks, movies and volumes; sessions.

A folder with micrographs (``*.mrc``) or a RELION micrograph STAR file (for example
``MotionCorr/job002/corrected_micrographs.star``) opens as a session: the reader
returns the first micrograph's layer with the session's source in its metadata, and
when napari inserts it the "Session browser" dock opens and takes it over
(:meth:`~napari_cryodenoise._napari._qt.session.SessionWidget.adopt`).
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from pathlib import Path

from ..errors import CryoDenoiseError
from ..io import is_image_path, read_image
from ..io.sniff import is_regular_file
from .layers import METADATA_KEY, apply_data_range, display_pyramid, layer_kwargs
from .session import is_session_folder, open_session

LayerData = tuple  # (data, kwargs, layer_type)
PathOrPaths = str | list[str]


def _claims(path: str) -> bool:
    """A regular file with one of our suffixes (MRC ones also as ``.gz``/``.bz2``).

    Nothing is opened: a FIFO, a device or a folder is declined at once (opening a
    FIFO would block napari). A file with our suffix is claimed even if it turns out
    unreadable, so that napari shows our one-line error rather than "no reader".
    """
    return is_image_path(path) and is_regular_file(path)


def _is_star(path: str) -> bool:
    """A regular ``.star`` file (claimed by name: a STAR without micrographs is an error)."""
    return path.lower().endswith(".star") and is_regular_file(path)


def napari_get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """Return a reader for MRC/TIFF paths, a micrograph folder or a STAR file, else None.

    The check looks only at the name and the file type (never the contents), so it
    returns at once (a folder is listed); a damaged file with an MRC or TIFF suffix, or a
    STAR file without micrographs, is claimed and reading it raises an
    :class:`~napari_cryodenoise.errors.InputError` naming the file and the problem,
    which napari shows.
    """
    paths = [path] if isinstance(path, str) else list(path)
    if len(paths) == 1 and (is_session_folder(str(paths[0])) or _is_star(str(paths[0]))):
        return read_session
    if not paths or not all(_claims(str(p)) for p in paths):
        return None
    return read_layers


#: The plugin's name and the Session dock's display name (as in napari.yaml).
PLUGIN, SESSION_DOCK = "napari-cryodenoise", "Session browser"


def read_session(path: PathOrPaths) -> list[LayerData]:
    """Open a folder of micrographs or a micrograph STAR as a session: the first one's layer.

    Only the first micrograph is read. When the layer is inserted, the
    "Session browser" dock opens and takes it over as the session's raw
    layer (the other micrographs are read only when shown). Relative paths in a
    STAR file are found as RELION writes them (see
    :func:`~napari_cryodenoise.io.star.resolve_star_path`). When the first
    micrograph cannot be read (missing, damaged), the session opens at the
    first one that can, with a warning naming the first that could not.
    """
    source = str(path if isinstance(path, str) else path[0])
    session = open_session(source)
    failed: CryoDenoiseError | None = None
    for index, item in enumerate(session.items):
        try:
            data, kwargs, kind = read_layers(str(item.path))[0]
        except CryoDenoiseError as err:
            failed = failed or err
            continue
        if failed is not None:
            warnings.warn(f"{failed}; showing {item.name} instead", UserWarning, stacklevel=2)
        kwargs["metadata"][METADATA_KEY]["session"] = source
        kwargs["metadata"][METADATA_KEY]["session_index"] = index
        _attach_session_dock_on_insert()
        return [(data, kwargs, kind)]
    if failed is not None:
        raise failed  # none of them can be read: the first one's reason
    return []


def _attach_session_dock_on_insert() -> None:
    """Have the current viewer open the Session dock for a session layer it inserts."""
    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # noqa: BLE001 - no viewer (scripts, npe2 tests): nothing to do
        return
    if viewer is None or viewer in _HOOKED:
        return

    def on_inserted(event: object) -> None:
        layer = getattr(event, "value", None)
        facts = (getattr(layer, "metadata", None) or {}).get(METADATA_KEY) or {}
        if not facts.get("session") or facts.get("session_adopted"):
            return
        facts["session_adopted"] = True
        _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, SESSION_DOCK)
        widget.adopt_later(layer)

    viewer.layers.events.inserted.connect(on_inserted)
    _HOOKED.add(viewer)


#: Viewers whose layer list already opens the Session dock for session layers.
_HOOKED: weakref.WeakSet = weakref.WeakSet()


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
