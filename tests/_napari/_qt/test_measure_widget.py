"""The "Measure SNR / FRC" dock widget on a real viewer (Qt + OpenGL; run under Xvfb)."""

import math

import numpy as np
import pytest
from napari.utils.notifications import notification_manager
from scipy import ndimage as ndi

from napari_cryodenoise import metrics as m
from napari_cryodenoise._napari._qt.measure.widget import REGIONS_LAYER, MeasureWidget
from napari_cryodenoise._napari.layers import bin_mean

SHAPE = (256, 256)
CENTRES_YX = np.array([(y, x) for y in (48, 128, 208) for x in (48, 128, 208)], float)
RADIUS = 8.0
CONTRAST = 2.0


def particles(shape=SHAPE, radius=10.0):
    """Discs of height CONTRAST on zero at CENTRES_YX."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    clean = np.zeros(shape, np.float32)
    for y, x in CENTRES_YX:
        clean[(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = CONTRAST
    return clean


def noisy(clean, sigma, seed):
    rng = np.random.default_rng(seed)
    return (clean + rng.normal(0.0, sigma, clean.shape)).astype(np.float32)


@pytest.fixture
def widget(open_widget):
    """The Measure widget as the Plugins menu opens it."""
    notification_manager.records.clear()
    _viewer, w = open_widget("Measure SNR / FRC")
    assert isinstance(w, MeasureWidget)
    return w


def run_measure(w, qtbot):
    w.measure()
    qtbot.waitUntil(lambda: not w.busy, timeout=20000)
    return w.last_result


def messages():
    return [str(n.message) for n in notification_manager.records]


def row(result, name):
    return next(r for r in result.rows if r.name == name)


def test_snr_of_known_contrast_with_points(widget, qtbot):
    raw = noisy(particles(), 1.0, 0)
    v = widget.viewer
    v.add_image(raw, name="raw", scale=(1.5, 1.5))
    v.add_points(CENTRES_YX, name="picks", scale=(1.5, 1.5))
    widget.radius.setValue(RADIUS)
    assert widget.regions_combo.currentText() == "picks"
    result = run_measure(widget, qtbot)

    sig, bg = m.regions_from_picks(SHAPE, CENTRES_YX[:, ::-1], RADIUS)
    expected = m.snr_db(raw, sig, bg)
    got = row(result, "raw")
    assert got.pairs == len(CENTRES_YX) == result.pairs
    assert got.snr_db == pytest.approx(expected, abs=1e-9)
    assert got.snr_db == pytest.approx(20 * math.log10(CONTRAST), abs=0.7)  # 6.02 dB
    assert widget.table.item(0, 1).text() == f"{expected:.2f}"
    assert widget.table.item(0, 2).text() == "+0.00"
    labels = v.layers[REGIONS_LAYER]
    assert set(np.unique(labels.data)) == {0, 1, 2}
    assert tuple(labels.scale) == (1.5, 1.5)
    assert "Layer\tSNR (dB)\tGain (dB)\tPairs" in widget.table_text()


def test_gain_noise_truth_and_binned_layer(widget, qtbot):
    clean = particles()
    v = widget.viewer
    v.add_image(noisy(clean, 1.0, 1), name="raw")
    den = noisy(clean, 0.5, 2)
    v.add_image(den, name="denoised")
    v.add_image(bin_mean(den, 2), name="denoised bin2", scale=(2.0, 2.0), translate=(0.5, 0.5))
    v.add_image(clean, name="truth")
    v.add_points(CENTRES_YX, name="picks")
    assert widget.ticked_names() == ["raw"]  # layers opened later are not ticked by themselves
    widget.set_ticked("denoised")
    widget.set_ticked("denoised bin2")
    widget.radius.setValue(RADIUS)
    widget.reference_combo.setCurrentText("raw")
    widget.truth_combo.setCurrentText("truth")
    widget.noise_check.setChecked(True)
    result = run_measure(widget, qtbot)

    raw, d = row(result, "raw"), row(result, "denoised")
    assert result.gain_db(d) == pytest.approx(d.snr_db - raw.snr_db)
    assert result.gain_db(d) == pytest.approx(20 * math.log10(2.0), abs=1.0)  # half the noise
    assert result.gain_db(raw) == 0.0
    b2 = row(result, "denoised bin2")
    assert b2.pairs == len(CENTRES_YX) and result.gain_db(b2) > result.gain_db(d)
    assert raw.noise_sigma == pytest.approx(1.0, rel=0.1)
    assert d.noise_sigma == pytest.approx(0.5, rel=0.1)
    assert d.psnr_db > raw.psnr_db and d.ssim > raw.ssim
    assert b2.psnr_db is None and "ground truth" in b2.note  # other shape: no PSNR
    assert not widget.table.isColumnHidden(6)


def test_shapes_regions_in_pairs(widget, qtbot):
    raw = noisy(particles(), 1.0, 3)
    v = widget.viewer
    v.add_image(raw, name="raw")
    rects = []
    for y, x in CENTRES_YX[:4]:
        rects.append(np.array([[y - 5, x - 5], [y - 5, x + 5], [y + 5, x + 5], [y + 5, x - 5]]))
        rects.append(rects[-1] + [0, 40])  # background: 40 px to the right
    v.add_shapes(rects, shape_type="rectangle", name="regions")
    widget.regions_combo.setCurrentText("regions")
    result = run_measure(widget, qtbot)

    sig = [m.region_from_polygon(r, SHAPE) for r in rects[0::2]]
    bg = [m.region_from_polygon(r, SHAPE) for r in rects[1::2]]
    assert row(result, "raw").pairs == 4
    assert row(result, "raw").snr_db == pytest.approx(m.snr_db(raw, sig, bg), abs=1e-9)

    # ellipses work too, and a second Shapes layer can hold the backgrounds
    v.add_shapes([r for r in rects[0::2]], shape_type="ellipse", name="signal")
    v.add_shapes([r for r in rects[1::2]], shape_type="ellipse", name="background")
    widget.regions_combo.setCurrentText("signal")
    widget.background_combo.setCurrentText("background")
    result = run_measure(widget, qtbot)
    assert row(result, "raw").pairs == 4
    assert row(result, "raw").snr_db == pytest.approx(20 * math.log10(CONTRAST), abs=1.5)


def test_frc_worker_fills_the_plot(widget, qtbot):
    rng = np.random.default_rng(4)
    signal = ndi.gaussian_filter(rng.normal(size=SHAPE), 2.0) * 20
    v = widget.viewer
    v.add_image((signal + rng.normal(size=SHAPE)).astype(np.float32), name="even")
    v.add_image((signal + rng.normal(size=SHAPE)).astype(np.float32), name="odd")
    widget.frc_a.setCurrentText("even")
    widget.frc_b.setCurrentText("odd")
    widget.pixel_size.setValue(1.5)
    widget.compute_frc()
    assert widget.busy
    qtbot.waitUntil(lambda: not widget.busy, timeout=20000)

    curve = widget.last_curve
    assert curve is not None and curve.unit == "Å"
    data = widget.plot.line_data()
    assert len(data) == 1 and len(data[0][0]) > 100 and np.all(np.isfinite(data[0][1]))
    assert 3.0 <= curve.res_0143 < 100 and math.isfinite(curve.res_halfbit)
    assert "0.143" in widget.frc_label.text()
    widget._clear_plot()
    assert widget.plot.line_data() == []


def test_bad_input_notifies_instead_of_raising(widget, qtbot):
    v = widget.viewer
    widget.measure()  # no image, no regions
    assert not widget.busy
    v.add_image(noisy(particles(), 1.0, 5), name="raw")
    widget.measure()  # no regions layer
    assert any("Points layer" in s for s in messages())
    v.add_points(np.zeros((0, 2)), name="empty")
    widget.measure()
    assert any("no picks" in s for s in messages())
    v.add_shapes([np.array([[10, 10], [10, 30], [30, 30], [30, 10]])], name="odd")
    widget.regions_combo.setCurrentText("odd")
    widget.measure()
    assert any("pairs" in s and "even" in s for s in messages())
    v.add_image(np.zeros((64, 64), np.float32), name="small")
    widget.frc_a.setCurrentText("raw")
    widget.frc_b.setCurrentText("small")
    widget.compute_frc()
    assert not widget.busy
    assert any("same shape" in s for s in messages())
    assert widget.last_result is None


def test_stack_measures_the_displayed_plane(widget, qtbot):
    stack = np.stack([noisy(np.zeros(SHAPE, np.float32), 1.0, 8), noisy(particles(), 1.0, 9)])
    v = widget.viewer
    v.add_image(stack, name="stack")
    picks3d = np.column_stack([np.full(len(CENTRES_YX), 1.0), CENTRES_YX])
    v.add_points(np.vstack([picks3d, [[0.0, 20.0, 20.0]]]), name="picks")  # + one on plane 0
    widget.radius.setValue(RADIUS)
    v.dims.set_current_step(0, 1)
    on = row(run_measure(widget, qtbot), "stack")
    assert on.pairs == len(CENTRES_YX)
    sig, bg = m.regions_from_picks(SHAPE, CENTRES_YX[:, ::-1], RADIUS)
    assert on.snr_db == pytest.approx(m.snr_db(stack[1], sig, bg), abs=1e-9)
    v.dims.set_current_step(0, 0)
    assert widget.last_result.requested == len(CENTRES_YX)
    assert run_measure(widget, qtbot).requested == 1


def test_load_picks_and_live_update(widget, qtbot, tmp_path):
    raw = noisy(particles(), 1.0, 6)
    v = widget.viewer
    v.add_image(raw, name="mic", scale=(2.0, 2.0))
    star = tmp_path / "mic_autopick.star"
    rows = "\n".join(f"{x:.1f} {y:.1f} mic.mrc" for y, x in CENTRES_YX[:8])
    star.write_text(
        f"data_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnMicrographName #3\n{rows}\n"
    )
    layer = widget.load_picks(star)
    assert layer is not None and len(layer.data) == 8
    np.testing.assert_allclose(layer.data, CENTRES_YX[:8])
    assert tuple(layer.scale) == (2.0, 2.0)
    widget.radius.setValue(RADIUS)
    assert widget.regions_combo.currentText() == layer.name
    assert run_measure(widget, qtbot).pairs == 8

    layer.add(CENTRES_YX[8])  # live: adding a pick re-measures
    qtbot.waitUntil(lambda: widget.last_result.pairs == 9 and not widget.busy, timeout=10000)

    other = tmp_path / "other.star"
    other.write_text(
        "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnMicrographName\n"
        "1 2 a.mrc\n3 4 b.mrc\n"
    )
    assert widget.load_picks(other) is None
    assert any("no picks for" in s for s in messages())


def test_frc_text_fallback_without_matplotlib(qtbot, monkeypatch):
    from napari_cryodenoise._napari._qt import plot
    from napari_cryodenoise._napari.measure import ImagePlane, PixelMap
    from napari_cryodenoise._napari.measure_frc import frc_job, run_frc

    monkeypatch.setattr(plot, "FigureCanvasQTAgg", None)
    widget = plot.make_frc_plot()
    qtbot.addWidget(widget)
    assert isinstance(widget, plot.TextFrcPlot)
    rng = np.random.default_rng(7)
    common = ndi.gaussian_filter(rng.normal(size=(96, 96)), 2.0) * 20
    planes = [
        ImagePlane(
            n, common + rng.normal(size=common.shape), PixelMap(np.eye(2), np.zeros(2)), key=(n,)
        )
        for n in ("a", "b")
    ]
    widget.add(run_frc(frc_job(*planes)))
    assert "a vs b:" in widget.text() and "px at 0.143" in widget.text()
    assert len(widget.line_data()) == 1
