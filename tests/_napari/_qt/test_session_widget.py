"""The Session browser on a real viewer (Qt + OpenGL; run under Xvfb).

Tiny micrographs and a tiny in-memory model (no downloaded weights).
"""

import os

import numpy as np
import pytest
import torch

from napari_cryodenoise._napari._qt.session import SessionWidget
from napari_cryodenoise._napari.session import GOOD
from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.io.star import read_star
from napari_cryodenoise.models import build_model

PLUGIN = "napari-cryodenoise"
SHAPE = (96, 128)


def tiny_unet():
    torch.manual_seed(0)
    return build_model("unet-custom", ndim=2, depth=2, first_kernel=3, last_kernel=3, nf=4)


def _mic(path, seed, t=None):
    data = np.random.default_rng(seed).normal(size=SHAPE).astype(np.float32)
    write_mrc(path, data, voxel_size=2.4)  # auto bin 1
    if t is not None:
        os.utime(path, ns=(t, t))
    return path


@pytest.fixture
def folder(tmp_path):
    out = tmp_path / "mics"
    out.mkdir()
    for k in range(4):
        _mic(out / f"m{k}.mrc", k, 10**18 + k * 10**9)
    return out


@pytest.fixture
def browser(open_widget):
    viewer, w = open_widget("Session browser")
    assert isinstance(w, SessionWidget)
    w.add_model("tiny", tiny_unet())
    w.reset_choices()  # as napari does when layers change
    assert w.display.model_name == "tiny" and w.opener.model.value == "tiny"
    return viewer, w


def _press(viewer, key):
    """Call what the viewer's keymap binds to ``key`` (as a key press does)."""
    (bound,) = [f for k, f in viewer.keymap.items() if str(k) == key]
    bound(viewer)


def _denoised_shown(w, qtbot, index):
    qtbot.waitUntil(lambda: w.display.index == index and w.display.out_layer is not None)
    store = w.display.view.store if w.display.view is not None else None
    qtbot.waitUntil(lambda: store is None or store.tiles_done(0) > 0, timeout=30000)


def test_first_micrograph_fills_both_cells(browser, folder, qtbot):
    """Opening a session fits the view to raw | denoised, not to the raw layer alone."""
    viewer, w = browser
    w.open(str(folder))
    _denoised_shown(w, qtbot, 0)
    assert w.display.side_by_side.active
    shown = (viewer.camera.zoom, *viewer.camera.center)
    viewer.reset_view()
    assert shown == pytest.approx((viewer.camera.zoom, *viewer.camera.center))


def test_dock_opens_steps_with_keys_and_prefetches(browser, folder, qtbot):
    viewer, w = browser
    session = w.open(str(folder))
    assert session is not None and len(session) == 4
    raw = w.display.raw_layer
    assert raw.name == "m0" and "1 / 4" in w.state.facts and "2.4 A/px" in w.state.facts
    _denoised_shown(w, qtbot, 0)
    out = w.display.out_layer
    assert out.name.startswith("m0 [tiny")
    # denoise-ahead: m1's preview and visible tiles are computed while m0 is shown
    item1 = session.items[1]
    qtbot.waitUntil(lambda: item1.key in w.display.displays, timeout=30000)
    qtbot.waitUntil(lambda: not w.display.prefetcher.busy, timeout=30000)
    _press(viewer, "N")
    assert session.index == 1 and raw.name == "m1" and w.state.index == 1
    store = w.display.view.store
    assert store.tiles_done(0) == store.grid.counts[0] * store.grid.counts[1]  # prefetched
    assert w.display.out_layer is out and out.name.startswith("m1 [tiny")
    _press(viewer, "End")
    assert session.index == 3 and w.nav.slider.value == 4  # 1-based, as in 4 / 4
    _press(viewer, "Home")
    assert session.index == 0
    _press(viewer, "P")  # already at the first
    assert session.index == 0
    w.nav.slider.value = 3
    assert session.index == 2 and raw.name == "m2"
    # a real key press on the canvas goes through napari's keymap
    from qtpy.QtCore import Qt

    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: session.index == 3, timeout=5000)


def test_follow_mode_shows_a_new_file(browser, folder, qtbot):
    viewer, w = browser
    w.open(str(folder))
    w.last()
    assert w.session.index == 3
    _mic(folder / "m9.mrc", 9)
    qtbot.waitUntil(lambda: len(w.session) == 5, timeout=10000)  # the 2 s scan
    assert w.session.index == 4 and w.display.raw_layer.name == "m9"
    assert w.nav.slider.max == 5
    w.first()  # stepped away: a new arrival does not move the view
    _mic(folder / "m10.mrc", 10)
    assert len(w.scan()) == 1 and w.session.index == 0


def test_watch_outputs_are_shown_instead_of_recomputed(browser, folder, qtbot):
    viewer, w = browser
    outdir = folder / "denoised"
    outdir.mkdir()
    done = np.full(SHAPE, 7.0, np.float32)
    write_mrc(outdir / "m1.mrc", done, voxel_size=2.4)
    w.open(str(folder))
    assert w.opener.outdir.value == str(outdir)  # the default OUTDIR
    w.step(1)
    out = w.display.out_layer
    assert out.name == "m1 [watch output]" and w.display.view is None
    np.testing.assert_array_equal(np.asarray(out.data), done)
    # in the raw layer's units (napari warned "Inconsistent units across layers" without)
    assert tuple(out.units) == tuple(w.display.raw_layer.units)
    assert tuple(out.axis_labels) == tuple(w.display.raw_layer.axis_labels)
    w.step(1)
    _denoised_shown(w, qtbot, 2)  # m2: not there, computed live


STAR = """# version 30001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographPixelSize #3
opticsGroup1 1 2.400000

# version 30001

data_micrographs

loop_
_rlnMicrographName #1
_rlnOpticsGroup #2
_rlnDefocusU #3
_rlnDefocusV #4
_rlnCtfMaxResolution #5
_rlnCtfFigureOfMerit #6
{m0} 1 15234.5 14900.1 3.42 0.1234
{m1} 1 20000.0 19000.0 5.10 0.0500
{m2} 1 11000.0 10500.0 2.90 0.2000
"""


def test_star_session_curation_saved_with_every_column(browser, folder, qtbot, tmp_path):
    viewer, w = browser
    star = tmp_path / "ctf.star"
    star.write_text(STAR.format(**{f"m{k}": folder / f"m{k}.mrc" for k in range(3)}))
    w.opener.source.value = str(star)
    w.opener.open_button.clicked.emit()
    assert w.session is not None and len(w.session) == 3
    assert "defocus U 1.52 um" in w.state.facts and "CTF fit 3.4 A" in w.state.facts
    _press(viewer, "G")
    _press(viewer, "N")
    _press(viewer, "B")
    _press(viewer, "N")
    _press(viewer, "Space")
    assert w.session.mark_of() == GOOD
    assert w.curate.counts.value == "good 2   bad 1   unmarked 0"
    assert "[good]" in w.state.facts
    out = w.save("")  # the default name beside the STAR
    assert out == tmp_path / "good_micrographs.star" and "saved 2" in w.state.status
    blocks, src = read_star(out), read_star(star)
    assert list(blocks) == ["optics", "micrographs"]
    assert blocks["micrographs"].columns == src["micrographs"].columns
    assert blocks["micrographs"].table["rlnCtfFigureOfMerit"].tolist() == ["0.1234", "0.2000"]
    w.save(str(star))  # never over the input
    assert "input" in w.state.status and read_star(star)["micrographs"].table.shape[0] == 3


def test_bad_source_is_one_line(browser, tmp_path):
    _viewer, w = browser
    assert w.open(str(tmp_path / "nope")) is None
    assert w.state.status.endswith("no such folder or STAR file")


def test_a_volume_in_a_session_is_shown_raw_with_a_reason(browser, tmp_path, qtbot):
    """A tomogram among micrographs: shown raw, the denoised layer hidden, one clear line."""
    viewer, w = browser
    folder = tmp_path / "mixed"
    folder.mkdir()
    _mic(folder / "m0.mrc", 0, 10**18)
    volume = np.random.default_rng(5).normal(size=(8, *SHAPE)).astype(np.float32)
    write_mrc(folder / "tomo.mrc", volume, voxel_size=10.0)
    os.utime(folder / "tomo.mrc", ns=(10**18 + 10**9,) * 2)
    session = w.open(str(folder))
    assert [i.name for i in session.items] == ["m0.mrc", "tomo.mrc"]
    _denoised_shown(w, qtbot, 0)
    out = w.display.out_layer
    qtbot.waitUntil(lambda: not w.display.prefetcher.busy, timeout=30000)  # tomo.mrc skipped
    _press(viewer, "N")
    assert w.display.raw_layer.name == "tomo" and w.display.view is None
    assert not out.visible
    assert w.state.status == (
        "tomo.mrc is not a 2D micrograph (8 x 96 x 128); the Session browser denoises "
        "micrographs: use the Denoise widget for stacks and tomograms"
    )
    _press(viewer, "P")
    _denoised_shown(w, qtbot, 0)
    assert out.visible and w.display.out_layer is out


def test_stepping_to_a_micrograph_of_another_size_fits_it_in_view(browser, tmp_path, qtbot):
    """A folder that mixes sizes or pixel sizes: the next micrograph is not left out of view
    (the camera kept the last one's centre and zoom); same-size steps keep the user's zoom."""
    viewer, w = browser
    folder = tmp_path / "mixed"
    folder.mkdir()
    _mic(folder / "a.mrc", 0, 10**18)
    _mic(folder / "b.mrc", 1, 10**18 + 10**9)
    big = np.random.default_rng(2).normal(size=(400, 520)).astype(np.float32)
    write_mrc(folder / "c.mrc", big, voxel_size=3.0)
    os.utime(folder / "c.mrc", ns=(10**18 + 2 * 10**9,) * 2)
    w.open(str(folder))
    _denoised_shown(w, qtbot, 0)
    viewer.camera.zoom *= 3  # the user zooms in on a detail
    zoom, center = viewer.camera.zoom, tuple(viewer.camera.center)
    w.step(1)  # b: same size and pixel size
    _denoised_shown(w, qtbot, 1)
    assert viewer.camera.zoom == pytest.approx(zoom)
    assert tuple(viewer.camera.center) == pytest.approx(center)
    w.step(1)  # c: 1200 x 1560 A instead of 230 x 307 A
    _denoised_shown(w, qtbot, 2)
    shown = viewer.camera.zoom, tuple(viewer.camera.center)
    viewer.reset_view()  # what fits the raw | denoised grid
    assert shown[0] == pytest.approx(viewer.camera.zoom)
    assert shown[1] == pytest.approx(tuple(viewer.camera.center))


def test_raw_and_denoised_keep_their_cells_across_a_large_micrograph(browser, tmp_path, qtbot):
    """A micrograph above 2048 px is shown multiscale: its raw layer is a new layer, which
    must take the old one's place (raw | denoised stayed, not denoised | raw)."""
    viewer, w = browser
    folder = tmp_path / "mixed"
    folder.mkdir()
    _mic(folder / "a.mrc", 0, 10**18)
    wide = np.random.default_rng(3).normal(size=(64, 2100)).astype(np.float32)
    write_mrc(folder / "b.mrc", wide, voxel_size=2.4)
    os.utime(folder / "b.mrc", ns=(10**18 + 10**9,) * 2)
    w.open(str(folder))
    _denoised_shown(w, qtbot, 0)
    layers = viewer.layers

    def cells():
        grid = viewer.canvas.grid
        raw, out = w.display.raw_layer, w.display.out_layer
        return [grid.position(list(layers).index(x), layers) for x in (raw, out)]

    first = cells()
    w.step(1)
    _denoised_shown(w, qtbot, 1)
    assert w.display.raw_layer.multiscale and len(layers) == 2
    assert cells() == first


def test_watch_output_of_another_kind_keeps_the_users_layer_order(browser, tmp_path, qtbot):
    """A watch output above 2048 px is shown multiscale in a new layer, which must take the
    old denoised layer's place, also when the user put it first or added layers above."""
    viewer, w = browser
    folder = tmp_path / "mixed"
    outdir = folder / "denoised"
    outdir.mkdir(parents=True)
    _mic(folder / "a.mrc", 0, 10**18)
    wide = np.random.default_rng(3).normal(size=(64, 2100)).astype(np.float32)
    write_mrc(folder / "b.mrc", wide, voxel_size=2.4)
    os.utime(folder / "b.mrc", ns=(10**18 + 10**9,) * 2)
    write_mrc(outdir / "a.mrc", np.full(SHAPE, 7.0, np.float32), voxel_size=2.4)
    write_mrc(outdir / "b.mrc", np.full((64, 2100), 5.0, np.float32), voxel_size=2.4)
    w.open(str(folder))
    qtbot.waitUntil(lambda: w.display.out_layer is not None)
    layers = viewer.layers
    layers.move(list(layers).index(w.display.out_layer), 0)  # the user: denoised first
    viewer.add_points(np.zeros((1, 2)), name="picks")  # and a layer of their own on top
    assert [x.name for x in layers] == ["a [watch output]", "a", "picks"]
    w.step(1)
    out = w.display.out_layer
    assert out.multiscale and out.name == "b [watch output]"
    assert [x.name for x in layers] == ["b [watch output]", "b", "picks"]
    assert tuple(out.units) == tuple(w.display.raw_layer.units)  # no "Inconsistent units"
