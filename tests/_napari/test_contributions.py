"""Every contribution in ``napari.yaml``, opened the way napari opens it.

The cases are generated from the manifest: each widget through
``viewer.window.add_plugin_dock_widget``, each reader through
``viewer.open(path, plugin=...)`` on a tiny file of each filename pattern, each
writer through ``viewer.layers.save`` for each extension, each sample through
``viewer.open_sample``. A contribution added to the manifest is therefore
tested without touching this file (a new filename pattern or contribution kind
fails here until the test knows how to make a file for it).
"""

from __future__ import annotations

import bz2
import gzip
import importlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from npe2 import PluginManager, PluginManifest

import napari_cryodenoise
from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io import read_image, write_mrc

PLUGIN = "napari-cryodenoise"
MANIFEST_PATH = Path(napari_cryodenoise.__file__).with_name("napari.yaml")
MANIFEST = PluginManifest.from_file(MANIFEST_PATH)
C = MANIFEST.contributions
COMMANDS = {cmd.id: cmd for cmd in C.commands or []}

#: Contribution kinds this module opens; any other kind in the manifest fails the coverage test.
HANDLED = {"commands", "readers", "writers", "sample_data", "widgets", "menus"}

MRC_SUFFIXES = {".mrc", ".mrcs", ".st", ".rec", ".map", ".ali", ".preali", ".mrcz"}
TIFF_SUFFIXES = {".tif", ".tiff"}
COMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open}


def dock_title(display_name: str) -> str:
    """The title napari gives a plugin's dock."""
    return f"{display_name} ({PLUGIN})"


def _python_object(command_id: str):
    module, _, name = COMMANDS[command_id].python_name.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


WIDGETS = [pytest.param(w.display_name, w.command, id=w.display_name) for w in C.widgets or []]
READ_CASES = [
    pytest.param(r.command, pattern, id=pattern)
    for r in C.readers or []
    for pattern in r.filename_patterns
    if pattern != "*.star"
]
#: Readers that open RELION micrograph STAR files (as sessions).
STAR_CASES = [
    pytest.param(r.command, id="star") for r in C.readers or [] if "*.star" in r.filename_patterns
]
#: Readers that open folders (a folder of micrographs opens as a session).
DIR_CASES = [
    pytest.param(r.command, id="folder") for r in C.readers or [] if r.accepts_directories
]
WRITE_CASES = [
    pytest.param(w.command, ext, id=ext) for w in C.writers or [] for ext in w.filename_extensions
]
SAMPLES = [pytest.param(s.command, s.key, id=s.key) for s in C.sample_data or []]


def _tiny_file(folder: Path, pattern: str, data: np.ndarray) -> Path:
    """Write ``data`` to a file matching a reader's filename pattern (``*.mrc``, ``*.map.gz``)."""
    assert pattern.startswith("*."), f"unexpected reader pattern {pattern!r}"
    path = folder / ("tiny" + pattern[1:])
    suffixes = [s.lower() for s in path.suffixes]
    opener = COMPRESSORS.get(suffixes[-1])
    plain = path.with_suffix("") if opener else path
    suffix = plain.suffix.lower()
    if suffix in MRC_SUFFIXES:
        write_mrc(plain, data, voxel_size=1.25)
    elif suffix in TIFF_SUFFIXES:
        import tifffile

        tifffile.imwrite(plain, data)
    else:
        pytest.fail(f"napari.yaml reader pattern {pattern!r}: teach _tiny_file to write one")
    if opener:
        with open(plain, "rb") as src, opener(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        plain.unlink()
    return path


# ----------------------------------------------------------------------------- coverage


def test_the_manifest_napari_uses_is_this_one(make_napari_viewer):
    """napari discovered the plugin from the manifest this module is generated from."""
    make_napari_viewer()
    registered = PluginManager.instance().get_manifest(PLUGIN)
    assert registered.contributions.model_dump() == C.model_dump()


def test_every_contribution_is_exercised():
    """Each command is reached by a generated case; each contribution kind is handled here."""
    present = {k for k, v in C.model_dump(exclude_unset=True).items() if v}
    assert present <= HANDLED, f"napari.yaml has contributions this test does not open: {present}"
    exercised = {p.values[1] for p in WIDGETS}
    exercised |= {p.values[0] for p in READ_CASES + DIR_CASES + STAR_CASES + WRITE_CASES + SAMPLES}
    assert exercised == set(COMMANDS), f"commands never opened: {set(COMMANDS) - exercised}"
    for items in (C.menus or {}).values():
        for item in items:
            cmd = getattr(item, "command", None)
            assert cmd is None or cmd in {p.values[1] for p in WIDGETS}, cmd
    assert WIDGETS and READ_CASES and WRITE_CASES and SAMPLES


# ----------------------------------------------------------------------------- widgets


@pytest.mark.parametrize(("display_name", "command"), WIDGETS)
def test_widget_opens_from_the_plugins_menu(open_widget, display_name, command):
    viewer, widget = open_widget(display_name)
    assert type(widget) is _python_object(command)
    assert dock_title(display_name) in viewer.window.dock_widgets
    # a second click on the menu item shows the same dock, it does not add one
    _dock, again = viewer.window.add_plugin_dock_widget(PLUGIN, display_name)
    assert again is widget
    names = [n for n in viewer.window.dock_widgets if n.endswith(f"({PLUGIN})")]
    assert names.count(dock_title(display_name)) == 1


# ----------------------------------------------------------------------------- readers


@pytest.mark.parametrize(("command", "pattern"), READ_CASES)
def test_reader_opens_each_filename_pattern(make_napari_viewer, tmp_path, command, pattern):
    viewer = make_napari_viewer()
    data = np.random.default_rng(0).normal(size=(3, 24, 32)).astype(np.float32)
    if Path(pattern).suffixes[0].lower() in {".mrc", ".tif", ".tiff"}:
        data = data[0]  # a single image; stacks, movies and volumes stay 3D
    path = _tiny_file(tmp_path, pattern, data)
    assert _python_object(command)(str(path)) is not None  # the reader claims the file
    layers = viewer.open(str(path), plugin=PLUGIN)
    assert len(layers) == 1 and list(viewer.layers) == layers
    (layer,) = layers
    np.testing.assert_array_equal(np.asarray(layer.data), data)
    assert layer.metadata["cryodenoise"]["path"] == str(path)


@pytest.mark.parametrize("command", DIR_CASES)
def test_reader_opens_a_folder_as_a_session(make_napari_viewer, qtbot, tmp_path, command):
    """A folder of micrographs: the first one's layer, then the Session dock takes it over."""
    viewer = make_napari_viewer()
    rng = np.random.default_rng(2)
    for name in ("a.mrc", "b.mrc"):
        write_mrc(tmp_path / name, rng.normal(size=(24, 32)).astype(np.float32), voxel_size=1.25)
    assert _python_object(command)(str(tmp_path)) is not None  # the reader claims the folder
    assert _python_object(command)(str(tmp_path / "nothing")) is None
    layers = viewer.open(str(tmp_path), plugin=PLUGIN)
    assert len(layers) == 1 and layers[0].metadata["cryodenoise"]["session"] == str(tmp_path)
    widget = _adopted_session(viewer, qtbot, layers[0])
    assert len(widget.session) == 2
    widget.shutdown()
    qtbot.waitUntil(lambda: widget.running_workers == 0, timeout=30000)


def _adopted_session(viewer, qtbot, layer):
    """The Session dock that opened for a session layer, once it has taken the layer over."""
    title = dock_title("Session browser")
    qtbot.waitUntil(lambda: title in viewer.window.dock_widgets, timeout=10000)
    widget = viewer.window.dock_widgets[title]
    qtbot.waitUntil(lambda: widget.session is not None, timeout=10000)
    assert widget.display.raw_layer is layer
    return widget


@pytest.mark.parametrize("command", STAR_CASES)
def test_reader_opens_a_relion_star_as_a_session(make_napari_viewer, qtbot, tmp_path, command):
    """RELION 5's MotionCorr STAR in its project: paths relative to the project folder."""
    from relion_star_files import RELION5_MOTIONCORR_EVEN_ODD

    viewer = make_napari_viewer()
    movies = tmp_path / "MotionCorr" / "job002" / "Movies"
    movies.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for name in ("mic_0001", "mic_0002"):
        write_mrc(
            movies / f"{name}.mrc", rng.normal(size=(24, 32)).astype(np.float32), voxel_size=0.885
        )
    star = tmp_path / "MotionCorr" / "job002" / "corrected_micrographs.star"
    star.write_text(RELION5_MOTIONCORR_EVEN_ODD)
    assert _python_object(command)(str(star)) is not None  # the reader claims the STAR
    (layer,) = viewer.open(str(star), plugin=PLUGIN)
    assert layer.metadata["cryodenoise"]["path"] == str(movies / "mic_0001.mrc")
    assert layer.metadata["cryodenoise"]["session"] == str(star)
    widget = _adopted_session(viewer, qtbot, layer)
    assert [item.name for item in widget.session.items] == ["mic_0001.mrc", "mic_0002.mrc"]
    assert "motion 16.4 A" in widget.state.facts  # rlnAccumMotionTotal of the first row
    widget.shutdown()
    qtbot.waitUntil(lambda: widget.running_workers == 0, timeout=30000)

    # a STAR without micrographs is our one-line error, not "no reader"
    particles = tmp_path / "particles.star"
    particles.write_text("data_particles\n\nloop_\n_rlnCoordinateX #1\n10.0\n")
    before = list(viewer.layers)
    with pytest.raises(InputError, match="particles.star: "):
        viewer.open(str(particles), plugin=PLUGIN)
    assert list(viewer.layers) == before


def test_reader_opens_a_star_whose_first_micrograph_is_missing_at_the_next(
    make_napari_viewer, qtbot, tmp_path
):
    """A STAR whose first micrograph is gone (deleted, not yet copied) still opens: at the
    first micrograph that reads, with a warning naming the missing one."""
    from relion_star_files import RELION5_MOTIONCORR_EVEN_ODD

    viewer = make_napari_viewer()
    movies = tmp_path / "MotionCorr" / "job002" / "Movies"
    movies.mkdir(parents=True)
    image = np.random.default_rng(4).normal(size=(24, 32)).astype(np.float32)
    write_mrc(movies / "mic_0002.mrc", image, voxel_size=0.885)
    star = tmp_path / "MotionCorr" / "job002" / "corrected_micrographs.star"
    star.write_text(RELION5_MOTIONCORR_EVEN_ODD)
    with pytest.warns(UserWarning, match=r"mic_0001.mrc: no such file; showing mic_0002.mrc"):
        (layer,) = viewer.open(str(star), plugin=PLUGIN)
    assert layer.metadata["cryodenoise"]["path"] == str(movies / "mic_0002.mrc")
    widget = _adopted_session(viewer, qtbot, layer)
    assert widget.session.index == 1
    assert widget.state.facts.startswith("mic_0002.mrc   2 / 2")
    widget.shutdown()
    qtbot.waitUntil(lambda: widget.running_workers == 0, timeout=30000)

    # none readable: the first one's reason, one line, and no layer
    (movies / "mic_0002.mrc").unlink()
    before = list(viewer.layers)
    with pytest.raises(InputError, match=r"mic_0001.mrc: no such file$"):
        viewer.open(str(star), plugin=PLUGIN)
    assert list(viewer.layers) == before


# ----------------------------------------------------------------------------- writers


@pytest.mark.parametrize(("command", "ext"), WRITE_CASES)
def test_writer_saves_each_extension(make_napari_viewer, tmp_path, command, ext):
    viewer = make_napari_viewer()
    data = np.random.default_rng(1).normal(size=(12, 10)).astype(np.float32)
    viewer.add_image(data, name="img", scale=(1.5, 1.5))
    out = tmp_path / f"saved{ext}"
    written = viewer.layers.save(str(out), selected=False, plugin=PLUGIN)
    assert [Path(p) for p in written] == [out]
    back, info = read_image(out)
    np.testing.assert_array_equal(np.squeeze(back), data)
    assert info.pixel_size == pytest.approx(1.5)
    assert not [p.name for p in tmp_path.iterdir() if p.name != out.name]  # no leftovers


# ----------------------------------------------------------------------------- samples


@pytest.mark.parametrize(("command", "key"), SAMPLES)
def test_sample_opens(make_napari_viewer, command, key):
    viewer = make_napari_viewer()
    expected = [data_tuple[1]["name"] for data_tuple in _python_object(command)()]
    viewer.open_sample(PLUGIN, key)
    assert [layer.name for layer in viewer.layers] == expected
    for layer in viewer.layers:
        data = np.asarray(layer.data)
        assert data.ndim >= 2 and data.size and np.isfinite(data).all() and data.std() > 0
