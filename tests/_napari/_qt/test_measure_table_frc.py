"""Measure widget: a table that fits the dock, ticking, and FRC warnings (issue 16, 13-14)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import notification_manager
from scipy import ndimage as ndi

from napari_cryodenoise._napari._qt.measure_table import NUMBER_MIN
from napari_cryodenoise._napari.results import result_metadata
from napari_cryodenoise._napari.settings import DenoiseSettings
from napari_cryodenoise.io import write_mrc

PLUGIN = "napari-cryodenoise"
SHAPE = (192, 192)
CENTRES = np.array([(y, x) for y in (40, 96, 152) for x in (40, 96, 152)], float)


@pytest.fixture
def measure(open_widget):
    notification_manager.records.clear()
    viewer, w = open_widget("Measure SNR / FRC", show=True)
    return viewer, w


def add_result(viewer, source, data, name):
    """A layer as the Denoise widget makes it: metadata says which layer it came from."""
    meta = result_metadata(source, DenoiseSettings(model="unet"))
    return viewer.add_image(data, name=name, metadata=meta)


def wait(w, qtbot):
    qtbot.waitUntil(lambda: not w.busy, timeout=20000)


def visible_columns(table):
    return [c for c in range(table.columnCount()) if not table.isColumnHidden(c)]


def assert_fits(table):
    width = table.viewport().width()
    cols = visible_columns(table)
    assert sum(table.columnWidth(c) for c in cols) <= width
    assert table.horizontalScrollBar().maximum() == 0  # nothing to scroll to
    gain = table.columnViewportPosition(2)
    assert gain >= 0 and gain + table.columnWidth(2) <= width  # the Gain column is on screen


def test_table_fits_the_dock_without_horizontal_scrolling(measure, qtbot):
    viewer, w = measure
    rng = np.random.default_rng(0)
    clean = np.zeros(SHAPE, np.float32)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for y, x in CENTRES:
        clean[(yy - y) ** 2 + (xx - x) ** 2 <= 64] = 2.0
    raw = viewer.add_image(clean + rng.normal(size=SHAPE).astype(np.float32), name="raw")
    name = "a very long layer name of a denoised micrograph [unet, bin 2, lowpass 3]"
    add_result(viewer, raw, ndi.gaussian_filter(raw.data, 1.5), name)
    viewer.add_image(clean, name="truth")
    viewer.add_points(CENTRES, name="picks")
    w.radius.setValue(8)
    w.truth_combo.setCurrentText("truth")
    w.noise_check.setChecked(True)
    dock_width = w.width()
    w.measure()
    wait(w, qtbot)
    qtbot.wait(50)
    table = w.table
    assert w.table_text().splitlines()[0].startswith("Layer\tSNR (dB)\tGain (dB)\tPairs")
    assert len(visible_columns(table)) == 7  # noise and ground truth shown; Pairs: all equal
    assert table.isColumnHidden(3) and "9 of 9 picks" in w.status.text()
    assert w.width() == dock_width  # the dock did not widen
    assert_fits(table)
    for c in visible_columns(table)[1:]:  # every number whole (headers may be elided)
        assert table.columnWidth(c) >= table.sizeHintForColumn(c), c
    # the long name is elided in the cell; the tooltip has it whole
    assert table.columnWidth(0) < table.sizeHintForColumn(0)
    assert table.item(1, 0).toolTip().startswith(name)
    # numbers keep their width when there is room; in a narrow dock they shrink, still on screen
    for narrow in (300, 180):  # 180: below the table's minimum, which Qt keeps
        table.resize(narrow, table.height())
        qtbot.wait(20)
        assert table.width() == max(narrow, table.minimumWidth()) < 300 + 1
        assert_fits(table)
        assert all(table.columnWidth(c) >= NUMBER_MIN for c in visible_columns(table))


def test_layers_opened_later_are_not_ticked(open_widget):
    viewer, w = open_widget("Measure SNR / FRC")
    first = viewer.add_image(np.zeros((32, 32), np.float32), name="first")
    assert w.ticked_names() == ["first"]  # the reference layer is ticked
    viewer.add_image(np.ones((32, 32), np.float32), name="other micrograph")
    assert w.ticked_names() == ["first"]
    add_result(viewer, first, np.ones((32, 32), np.float32), "first [unet]")
    assert w.ticked_names() == ["first", "first [unet]"]  # a result of a ticked layer
    viewer.layers["other micrograph"].name = "renamed"
    assert w.ticked_names() == ["first", "first [unet]"]
    w.set_ticked("renamed")
    viewer.layers["renamed"].name = "renamed again"
    assert w.ticked_names() == ["first", "renamed again", "first [unet]"]


def test_layers_there_when_the_widget_opens_are_ticked(make_napari_viewer, open_widget):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((32, 32), np.float32), name="a")
    viewer.add_image(np.zeros((32, 32), np.float32), name="b")
    _viewer, w = open_widget("Measure SNR / FRC", viewer=viewer)
    assert w.ticked_names() == ["a", "b"]


def frc(w, qtbot, a, b):
    w.frc_a.setCurrentText(a)
    w.frc_b.setCurrentText(b)
    w.compute_frc()
    wait(w, qtbot)
    return w.last_curve


def warnings_shown():
    return [str(n.message) for n in notification_manager.records if "FRC:" in str(n.message)]


def test_frc_of_a_layer_and_its_own_denoised_version_warns(measure, qtbot, tmp_path):
    viewer, w = measure
    rng = np.random.default_rng(1)
    signal = ndi.gaussian_filter(rng.normal(size=SHAPE), 3) * 20
    even = (signal + rng.normal(size=SHAPE)).astype(np.float32)
    odd = (signal + rng.normal(size=SHAPE)).astype(np.float32)
    (raw,) = viewer.open(
        str(write_mrc(tmp_path / "even.mrc", even, voxel_size=1.5)), plugin=PLUGIN
    )
    viewer.add_image(odd, name="odd", scale=(1.5, 1.5))
    frc(w, qtbot, "even", "odd")
    assert w.frc_warning is None and "⚠" not in w.frc_label.text() and not warnings_shown()
    assert w.frc_label.toolTip().startswith("Resolution: the first frequency where the FRC")

    add_result(viewer, raw, ndi.gaussian_filter(even, 4), "even [unet]")  # smooth: no curve hint
    frc(w, qtbot, "even", "even [unet]")
    assert "'even [unet]' is a denoised version of 'even'" in w.frc_warning
    assert "⚠" in w.frc_label.text() and len(warnings_shown()) == 1

    viewer.add_image(even + 0.1 * rng.normal(size=SHAPE).astype(np.float32), name="copy")
    frc(w, qtbot, "even", "copy")  # no metadata: the curve shows it
    assert "stay correlated up to about Nyquist" in w.frc_warning


def test_frc_low_frequency_trough_is_not_the_resolution(measure, qtbot):
    viewer, w = measure
    rng = np.random.default_rng(2)
    f = np.hypot(np.fft.fftfreq(256)[:, None], np.fft.fftfreq(256)[None, :])
    transfer = np.exp(-0.5 * (f / 0.1) ** 2)
    transfer[(np.rint(f * 256) >= 2) & (np.rint(f * 256) <= 3)] = 0.0
    signal = np.fft.ifft2(np.fft.fft2(rng.normal(size=(256, 256))) * transfer).real
    for name in ("even", "odd"):
        viewer.add_image((signal + rng.normal(0, 0.5, signal.shape)).astype(np.float32), name=name)
    curve = frc(w, qtbot, "even", "odd")
    assert curve.unit == "px"
    # the trough (rings 2-3, ~100 px) would have been read as the half-bit resolution
    assert curve.res_halfbit < 10 and curve.res_0143 < 10
    assert w.frc_warning is None


def test_frc_of_layers_with_different_pixel_sizes_is_refused(measure, qtbot, tmp_path):
    """Two files opened with 1.5 and 3 A/px: one line naming both sizes, no curve; with
    the Pixel size box set, the FRC is computed and the same line is shown as a warning."""
    viewer, w = measure
    rng = np.random.default_rng(3)
    signal = ndi.gaussian_filter(rng.normal(size=SHAPE), 3) * 20
    for name, px in (("even", 1.5), ("odd", 3.0)):
        half = (signal + rng.normal(size=SHAPE)).astype(np.float32)
        viewer.open(str(write_mrc(tmp_path / f"{name}.mrc", half, voxel_size=px)), plugin=PLUGIN)
    assert frc(w, qtbot, "even", "odd") is None
    line = "'even' has 1.5 A/px and 'odd' 3 A/px: an FRC of images with different pixel sizes"
    assert line in w.frc_label.text()
    assert any(line in str(n.message) for n in notification_manager.records)
    w.pixel_size.setValue(1.5)
    assert frc(w, qtbot, "even", "odd") is not None
    assert line in w.frc_label.text() and "using 1.5 Å/px for both" in w.frc_label.text()
    assert any(line in s for s in warnings_shown())


@pytest.mark.parametrize(
    ("shape", "fill", "message"),
    [
        ((3, 3), None, "layer 'a' (3, 3) is too small for an FRC: it needs at least 16 pixels"),
        ((64, 64), 2.0, "layer 'b' is constant: a constant image has no FRC"),
    ],
)
def test_frc_of_a_tiny_or_constant_layer_says_why(measure, qtbot, tmp_path, shape, fill, message):
    """Not 'resolution none': the reason, naming the layer, and no curve."""
    viewer, w = measure
    rng = np.random.default_rng(4)
    a = rng.normal(size=shape).astype(np.float32)
    b = np.full(shape, fill, np.float32) if fill is not None else rng.normal(size=shape)
    for name, data in (("a", a), ("b", b.astype(np.float32))):
        viewer.open(str(write_mrc(tmp_path / f"{name}.mrc", data, voxel_size=2.0)), plugin=PLUGIN)
    assert frc(w, qtbot, "a", "b") is None
    assert w.frc_label.text().startswith(message) and "\n" not in w.frc_label.text()
    assert "none" not in w.frc_label.text()
    assert any(message in str(n.message) for n in notification_manager.records)
