"""What a user sees of the live view (Qt + OpenGL; run under Xvfb).

The widget is opened as the Plugins menu does. Models are tiny in-memory nets.
"""

import textwrap
import time

import numpy as np
import torch
from subprocess_runs import assert_script_closes_cleanly
from torch import nn
from widget_models import use_model

from napari_cryodenoise._napari._qt.live import camera_of
from napari_cryodenoise._napari.settings import MODE_LIVE, MODE_WHOLE
from napari_cryodenoise.io import write_mrc

PLUGIN = "napari-cryodenoise"


class Identity(nn.Module):
    """Returns its input after ``delay`` seconds: the preview is smooth, tiles keep the noise."""

    ndim, grid, halo = 2, 4, 4

    def __init__(self, delay: float = 0.0, name: str = "identity"):
        super().__init__()
        self.delay, self.name = delay, name
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        time.sleep(self.delay)
        return x * self.w


def open_widget(viewer):
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
    return w


def noisy_image(shape=(1024, 1024), seed=0):
    """Noise (sigma 1) over a smooth pattern that a coarse preview shows."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    signal = 0.4 * np.sin(x / 40.0) * np.cos(y / 55.0)
    noise = np.random.default_rng(seed).normal(size=shape)
    return (100 + signal + noise).astype(np.float32)


def finish(w, qtbot):
    w.shutdown()
    qtbot.waitUntil(lambda: w.running_workers == 0, timeout=30000)


def test_preview_never_disappears_as_tiles_arrive(make_napari_viewer, qtbot, monkeypatch):
    from napari_cryodenoise.engine import preview

    monkeypatch.setattr(
        preview, "PREVIEW_SIZE", 64
    )  # a 16x coarser preview: tiles have ~7x its range
    viewer = make_napari_viewer()
    w = open_widget(viewer)
    viewer.add_image(noisy_image(), name="mic")
    use_model(w, "identity", Identity(delay=0.05))
    w.mode.value = MODE_LIVE
    w.patch_size.value = 256
    w.fill.value = True
    records = []

    def record(*_):
        live = w.live
        store, layer = live.store, live.layer
        done = np.repeat(np.repeat(store._done[0], 256, 0), 256, 1)[:1024, :1024]
        rest = np.asarray(store[:, :])[~done]
        lo, hi = layer.contrast_limits
        records.append((tuple(layer.contrast_limits), rest.std() / (hi - lo), done.mean()))

    w.run()
    live = w.live
    live.tile_ready.connect(record)
    qtbot.waitUntil(lambda: live.t_first_view is not None, timeout=20000)
    first = tuple(live.layer.contrast_limits)
    qtbot.waitUntil(lambda: live.store.is_complete(), timeout=60000)
    assert len(records) == 16
    span = first[1] - first[0]
    for limits, visible, _fraction in records[:-1]:  # areas still showing the preview
        assert np.allclose(limits, first, atol=0.01 * span)  # no jump as tiles arrive
        assert visible > 0.1  # the preview is not a flat grey under these limits
    assert np.allclose(live.layer.contrast_limits, first, atol=0.01 * span)
    finish(w, qtbot)


def test_a_setting_change_keeps_the_last_result_until_the_new_preview(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    w = open_widget(viewer)
    viewer.add_image(noisy_image((600, 600), seed=1), name="mic")
    use_model(w, "slow", Identity(delay=0.4))
    w.patch_size.value = 256
    w.fill.value = False
    w.run()
    qtbot.waitUntil(lambda: w.live is not None and w.live.t_first_view is not None, timeout=20000)
    layer = w.result_layer
    first = w.live
    limits = tuple(layer.contrast_limits)
    stds = []

    def shown_std():
        data = layer.data[0] if layer.multiscale else layer.data
        stds.append(float(np.asarray(data).std()))
        return w.live is not first and w.live.t_first_view is not None

    w.gaussian.value = 1.0  # re-runs the live view after a short debounce
    qtbot.waitUntil(shown_std, timeout=30000)
    assert w.result_layer is layer and len(stds) > 5
    assert min(stds) > 0.05  # never a uniform grey while the new preview is computed
    assert "gaussian 1" in layer.name
    assert np.all(np.isfinite(layer.contrast_limits)) and limits
    finish(w, qtbot)


def test_raw_contrast_slider_spans_the_data(make_napari_viewer, tmp_path):
    data = np.random.default_rng(2).normal(5000, 300, (256, 256)).astype(np.float32)
    data[10, 10], data[20, 20] = 3169.0, 9163.0
    path = write_mrc(tmp_path / "mic.mrc", data, voxel_size=0.67)
    viewer = make_napari_viewer()
    (raw,) = viewer.open(str(path), plugin=PLUGIN)
    lo, hi = raw.contrast_limits
    assert 3169 < lo < hi < 9163  # robust limits
    assert raw.contrast_limits_range == [3169.0, 9163.0]  # but the slider reaches the data


def test_side_by_side_keeps_the_camera_and_fills_the_canvas(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    w = open_widget(viewer)
    viewer.add_image(noisy_image((300, 300), seed=3), name="mic")
    use_model(w, "identity", Identity())
    w.mode.value = MODE_WHOLE
    w.run()
    qtbot.waitUntil(lambda: w.result_layer is not None and not w.busy, timeout=20000)
    camera = camera_of(viewer)
    camera.center = (120.0, 80.0)
    camera.zoom = 3.0
    before = (tuple(camera.center), camera.zoom)
    assert w.toggle_side_by_side() is True
    grid = viewer.canvas.grid
    assert grid.enabled and tuple(grid.actual_shape(viewer.layers)) == (1, 2)
    assert grid.spacing == 0
    assert (tuple(camera.center), camera.zoom) == before
    assert w.toggle_side_by_side() is False
    assert (tuple(camera.center), camera.zoom) == before
    finish(w, qtbot)


def test_progress_in_the_widget_and_mode_dependent_fill(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    w = open_widget(viewer)
    assert w.fill.enabled
    w.mode.value = MODE_WHOLE
    assert not w.fill.enabled  # "fill the whole image" means nothing there
    viewer.add_image(noisy_image((256, 256), seed=4), name="mic")
    use_model(w, "slow", Identity(delay=0.15))
    w.patch_size.value = 64  # 16 tiles
    texts = set()

    def seen(done):  # polled every few ms: what the status line showed meanwhile
        texts.add(w.status.value)
        return done()

    w.run()
    qtbot.waitUntil(lambda: seen(lambda: w.result_layer is not None and not w.busy), timeout=30000)
    assert any("/16 tiles (" in t and "left" in t for t in texts), texts
    assert w.status.value.startswith("done:")
    w.mode.value = MODE_LIVE
    assert w.fill.enabled
    texts.clear()
    w.patch_size.value = 128
    w.run()
    qtbot.waitUntil(
        lambda: seen(lambda: w.live is not None and w.live.store.is_complete()), timeout=30000
    )
    qtbot.wait(100)
    assert any("tiles of this plane" in t for t in texts), texts
    assert "4/4 tiles of this plane" in w.status.value
    finish(w, qtbot)


def test_a_long_status_does_not_widen_the_dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    w = open_widget(viewer)
    qtbot.wait(200)
    dock = w.native.parent()
    while dock is not None and not hasattr(dock, "setFloating"):
        dock = dock.parent()
    width = dock.width()
    w.status.value = "live: 12/64 tiles of this plane (18%), ~1 min 40 s left " * 3
    qtbot.wait(200)
    assert dock.width() == width
    finish(w, qtbot)


CLOSE_SCRIPT = textwrap.dedent(
    """
    import time
    import numpy as np
    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    class Slow(torch.nn.Module):
        ndim, grid, halo, name = 2, 4, 4, "slow"
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
        def forward(self, x):
            time.sleep(2.0)
            return x * self.w

    viewer = napari.Viewer()
    viewer.add_image(np.random.default_rng(0).normal(size=(1024, 1024)).astype("f4"))
    _, w = viewer.window.add_plugin_dock_widget("napari-cryodenoise", "Denoise")
    w.models.put("slow", Slow())
    w.model.choices = [*w.model.choices, "slow"]
    w.model.value = "slow"
    w.patch_size.value = 128
    w.run()
    t0 = time.time()
    while time.time() - t0 < 60:
        QApplication.processEvents()
        time.sleep(0.01)
        if w.live is not None and w.live.tiles_received >= 1:
            break
    assert w.running_workers, "a worker should be busy when the viewer closes"
    viewer.close()
    print("closed", flush=True)
    """
)


def test_closing_napari_during_live_denoising_is_clean(tmp_path):
    assert_script_closes_cleanly(CLOSE_SCRIPT, tmp_path, "close_live.py")
