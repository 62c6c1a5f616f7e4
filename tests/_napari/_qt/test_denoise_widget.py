"""The Denoise dock widget on a real viewer (Qt + OpenGL; run under Xvfb).

Models are tiny or random-init real architectures: no downloaded weights.
"""

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from widget_models import SlowNet, use_model

from napari_cryodenoise._napari._qt.denoise import DenoiseWidget, notify
from napari_cryodenoise._napari._qt.denoise import widget as dw
from napari_cryodenoise._napari._qt.live import camera_of
from napari_cryodenoise._napari.settings import MODE_LIVE, MODE_WHOLE
from napari_cryodenoise._napari.tiles import TileStore
from napari_cryodenoise.engine import denoise, denoise_stack
from napari_cryodenoise.io import read_image, write_mrc
from napari_cryodenoise.models import build_model, save_model

PLUGIN = "napari-cryodenoise"
BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"


def _bench_live():
    """``benchmarks/bench_live.py`` (a script outside the package) as a module."""
    spec = importlib.util.spec_from_file_location("bench_live", BENCHMARKS / "bench_live.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_unet():
    torch.manual_seed(0)
    return build_model("unet-custom", ndim=2, depth=2, first_kernel=3, last_kernel=3, nf=4)


@pytest.fixture
def widget(open_widget):
    """The Denoise widget as the Plugins menu opens it."""
    _viewer, w = open_widget("Denoise")
    assert isinstance(w, DenoiseWidget)
    return w


def wait_idle(w, qtbot, timeout=30000):
    qtbot.waitUntil(
        lambda: not w.busy and (w.live is None or (not w.live.busy and w.live.active)),
        timeout=timeout,
    )


def test_widget_is_a_plugin_contribution(make_napari_viewer):
    viewer = make_napari_viewer()
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
    assert isinstance(w, DenoiseWidget) and w.viewer is viewer  # unwrapped from napari's proxy
    assert w.device.value == "auto" and w.device.native.itemText(0).startswith("auto (")
    assert "cpu" in w.device.choices
    assert "unet" in w.model.choices and dw.FROM_FILE in w.model.choices
    assert w.mode.value == MODE_LIVE
    w.shutdown()


def test_whole_image_from_reader_with_model_file(widget, qtbot, tmp_path):
    viewer = widget.viewer
    data = (np.random.default_rng(0).poisson(20, size=(150, 130))).astype(np.uint16)
    path = write_mrc(tmp_path / "mic.mrc", data, voxel_size=0.85, origin=(0, 4.25, 8.5))
    (raw,) = viewer.open(str(path), plugin=PLUGIN)
    model = tiny_unet()
    model_file = tmp_path / "tiny.pt"
    save_model(model, model_file)
    widget.model.value = dw.FROM_FILE
    assert not widget.model_file.native.isHidden()
    widget.model_file.value = model_file
    widget.mode.value = MODE_WHOLE
    widget.gaussian.value = 1.0
    assert widget.input.value is raw
    assert widget.bin_factor.value == "auto" and widget.bin_value() == 3  # 0.85 A/px
    widget.bin_factor.value = 1
    assert f"cryodenoise denoise {path}" in widget.command.value
    assert "--gaussian 1" in widget.command.value
    widget.run()
    qtbot.waitUntil(lambda: widget.result_layer is not None and not widget.busy, timeout=30000)
    out = widget.result_layer
    assert out.name == "mic [tiny, gaussian 1]"
    np.testing.assert_allclose(out.scale, raw.scale)
    np.testing.assert_allclose(out.translate, raw.translate)
    expected = denoise(data, widget.models.peek(str(model_file)), gaussian=1.0)
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-4)
    facts = out.metadata["cryodenoise"]
    assert facts["source_path"] == str(path) and "path" not in facts
    assert facts["denoise"]["version"] and facts["denoise"]["command"].startswith("cryodenoise")
    assert facts["settings"]["gaussian"] == 1.0
    lo, hi = out.contrast_limits
    assert expected.min() <= lo < hi <= expected.max()
    # a re-run with other settings and "add a new layer" keeps the first result
    widget.output.value = dw.OUTPUT_NEW
    widget.gaussian.value = 0.0
    widget.run()
    qtbot.waitUntil(lambda: widget.result_layer is not out and not widget.busy, timeout=30000)
    assert len(viewer.layers) == 3 and widget.result_layer.name == "mic [tiny]"
    # "update the last result" replaces the data in place
    widget.output.value = dw.OUTPUT_UPDATE
    widget.bin_factor.value = 2
    last = widget.result_layer
    widget.run()
    qtbot.waitUntil(lambda: last.name == "mic [tiny, bin 2]" and not widget.busy, timeout=30000)
    # binned results keep the binned grid (as the CLI does) with a 2x larger pixel
    assert len(viewer.layers) == 3 and last.data.shape == (75, 65)
    np.testing.assert_allclose(last.scale, 2 * np.asarray(raw.scale))
    np.testing.assert_allclose(last.translate, raw.translate)
    assert "--bin 2" in last.metadata["cryodenoise"]["denoise"]["command"]


def test_live_view_is_visible_first_exact_and_follows_the_camera(widget, qtbot):
    viewer = widget.viewer
    image = np.random.default_rng(1).normal(size=(1024, 1024)).astype(np.float32)
    raw = viewer.add_image(image, name="big", scale=(2.0, 2.0))
    model = SlowNet(delay=0.02)
    use_model(widget, "slow", model)
    widget.mode.value = MODE_LIVE
    widget.patch_size.value = 128
    widget.fill.value = False
    camera_of(viewer).zoom = 4.0  # a 2x-scaled layer: ~100x75 data px per 800x600 view
    camera_of(viewer).center = (0, 2 * 300, 2 * 700)
    widget.run()
    live = widget.live
    out = widget.result_layer
    assert isinstance(out.data, TileStore) and out.name == "big [slow]"
    np.testing.assert_allclose(out.scale, raw.scale)
    qtbot.waitUntil(lambda: live.t_first_view is not None, timeout=20000)
    wait_idle(widget, qtbot)
    store = out.data
    expected = denoise(image, model)
    box = live.box
    visible = set(store.grid.tiles_in_box(box))
    assert 1 <= len(visible) <= 6
    done = {(iy, ix) for iy in range(8) for ix in range(8) if store._tile_done(0, iy, ix)}
    assert done == visible  # only what is on screen, and all of it
    for iy, ix in done:
        ys, xs = store.grid.slices(iy, ix)
        np.testing.assert_allclose(store[ys, xs], expected[ys, xs], rtol=1e-5, atol=1e-5)
    received = live.tiles_received
    # pan: a new plan, old tiles kept and never recomputed
    workers = live.workers_started
    camera_of(viewer).center = (0, 2 * 900, 2 * 100)
    qtbot.waitUntil(lambda: live.workers_started > workers, timeout=5000)
    wait_idle(widget, qtbot)
    visible2 = set(store.grid.tiles_in_box(live.box))
    assert visible2 and not visible2 & visible
    assert all(store._tile_done(0, *t) for t in visible | visible2)
    assert live.tiles_received == received + len(visible2)
    # pan back: everything is cached, no worker needed for tiles
    before = live.tiles_received
    camera_of(viewer).center = (0, 2 * 300, 2 * 700)
    qtbot.wait(300)
    wait_idle(widget, qtbot)
    assert live.tiles_received == before


def test_live_layer_of_a_large_image_is_a_block_mean_pyramid(widget, qtbot):
    from napari_cryodenoise._napari.layers import bin_mean

    viewer = widget.viewer
    image = np.random.default_rng(8).normal(size=(2200, 2100)).astype(np.float32)
    viewer.add_image(image, name="large")
    model = SlowNet(delay=0.0)
    use_model(widget, "mean", model)
    widget.fill.value = False
    camera_of(viewer).zoom = 1.0
    camera_of(viewer).center = (0, 1100, 1050)
    widget.run()
    live = widget.live
    wait_idle(widget, qtbot)
    out = widget.result_layer
    assert out.multiscale and len(out.data) == 3 and out.data[0] is live.store
    store = live.store
    ny, nx = store.grid.counts
    done = [(iy, ix) for iy in range(ny) for ix in range(nx) if store._tile_done(0, iy, ix)]
    assert done
    ys, xs = store.grid.slices(*done[0])
    np.testing.assert_allclose(store[ys, xs], denoise(image, model)[ys, xs], atol=1e-5)
    level1 = np.asarray(out.data[1])
    np.testing.assert_allclose(level1, bin_mean(np.asarray(store)), rtol=1e-5, atol=1e-6)


def test_zoomed_out_pyramid_shows_new_tiles(open_widget, qtbot):
    """napari caches the coarsest level of a 2D multiscale layer: it must be refreshed."""
    viewer, w = open_widget("Denoise", show=True)
    image = np.zeros((2400, 2300), np.float32)
    image[::64] = 100.0  # stripes, so the denoised view is not uniform
    viewer.add_image(image, name="stripes")
    use_model(w, "mean", SlowNet(delay=0.0))
    w.fill.value = False
    w.run()
    qtbot.waitUntil(lambda: w.live is not None and w.live.t_first_view is not None, timeout=20000)
    wait_idle(w, qtbot)
    out = w.result_layer
    viewer.layers["stripes"].visible = False
    qtbot.wait(100)
    assert out.multiscale and out.data_level == len(out.data) - 1  # zoomed out: coarsest
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(float)
    h, wd = shot.shape[:2]
    assert shot[h // 4 : 3 * h // 4, wd // 4 : 3 * wd // 4].std() > 5
    w.shutdown()
    qtbot.waitUntil(lambda: w.running_workers == 0, timeout=30000)


def test_panning_cancels_stale_tiles(widget, qtbot):
    viewer = widget.viewer
    image = np.random.default_rng(2).normal(size=(1024, 1024)).astype(np.float32)
    viewer.add_image(image, name="img")
    use_model(widget, "slow", SlowNet(delay=0.2))
    widget.patch_size.value = 64
    widget.fill.value = False
    camera_of(viewer).zoom = 5.0  # ~160x120 px on screen: ~12 tiles of 64 px
    camera_of(viewer).center = (0, 200, 200)
    widget.run()
    live = widget.live
    qtbot.waitUntil(lambda: live.tiles_received >= 1, timeout=20000)
    first_view = set(live.store.grid.tiles_in_box(live.box))
    assert len(first_view) >= 8
    camera_of(viewer).center = (0, 850, 850)
    qtbot.waitUntil(lambda: live.workers_started >= 2, timeout=5000)
    wait_idle(widget, qtbot, timeout=60000)
    store = live.store
    stale_done = sum(store._tile_done(0, *t) for t in first_view)
    assert stale_done <= len(first_view) // 2  # the old view's queue was dropped
    assert all(store._tile_done(0, *t) for t in store.grid.tiles_in_box(live.box))
    assert live.running == 0


def test_live_stack_does_the_current_slice_first(widget, qtbot):
    viewer = widget.viewer
    stack = np.random.default_rng(3).normal(size=(4, 600, 560)).astype(np.float32)
    viewer.add_image(stack, name="stack")
    model = SlowNet(delay=0.0)
    use_model(widget, "mean", model)
    widget.patch_size.value = 256
    widget.fill.value = True
    viewer.dims.set_current_step(0, 2)
    widget.run()
    live = widget.live
    wait_idle(widget, qtbot)
    store = live.store
    assert store.shape == (4, 600, 560) and live.plane == 2
    assert store._all_tiles_done(2)
    np.testing.assert_allclose(store[2], denoise(stack[2], model), rtol=1e-5, atol=1e-5)
    # neighbours get their preview and visible tiles; nothing farther is computed
    assert sorted(store.planes_lru()) == [1, 2, 3]
    viewer.dims.set_current_step(0, 0)
    qtbot.waitUntil(lambda: live.plane == 0, timeout=5000)
    wait_idle(widget, qtbot)
    np.testing.assert_allclose(store[0], denoise(stack[0], model), rtol=1e-5, atol=1e-5)
    expected = denoise_stack(stack[:2], model)
    np.testing.assert_allclose(store[1], expected[1], rtol=1e-5, atol=1e-5)


def test_cancel_whole_image_job(widget, qtbot, monkeypatch):
    infos = []
    monkeypatch.setattr(notify, "show_info", infos.append)
    viewer = widget.viewer
    viewer.add_image(np.zeros((256, 256), np.float32), name="z")
    use_model(widget, "slow", SlowNet(delay=0.3))
    widget.mode.value = MODE_WHOLE
    widget.patch_size.value = 32  # 64 tiles of 0.3 s each
    widget.run()
    qtbot.waitUntil(lambda: widget.busy, timeout=5000)
    qtbot.wait(400)
    t0 = time.perf_counter()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.busy, timeout=10000)
    assert time.perf_counter() - t0 < 5
    assert widget.result_layer is None and len(viewer.layers) == 1
    assert any("cancelled" in m for m in infos) and widget.status.value == "cancelled"


def test_errors_become_actionable_notifications(widget, qtbot, monkeypatch):
    errors = []
    monkeypatch.setattr(notify, "show_error", errors.append)
    widget.viewer.add_image(np.zeros((64, 64), np.float32), name="flat")
    use_model(
        widget,
        "vol",
        build_model("unet-custom", ndim=3, depth=2, first_kernel=3, last_kernel=3, nf=2),
    )
    widget.run()
    assert errors and "3D" in errors[-1] and "2D model" in errors[-1]
    widget.model.value = dw.FROM_FILE
    widget.run()
    assert "choose a model file" in errors[-1]


def test_side_by_side_and_flick(widget, qtbot):
    viewer = widget.viewer
    other = viewer.add_image(np.ones((40, 40), np.float32), name="other")
    raw = viewer.add_image(
        np.random.default_rng(4).normal(size=(64, 64)).astype(np.float32), name="raw"
    )
    use_model(widget, "tiny", tiny_unet())
    widget.mode.value = MODE_WHOLE
    widget.run()
    qtbot.waitUntil(lambda: widget.result_layer is not None and not widget.busy, timeout=20000)
    out = widget.result_layer
    grid = viewer.canvas.grid
    assert widget.toggle_side_by_side() is True
    assert grid.enabled and tuple(grid.shape) == (1, 2)
    assert raw.visible and out.visible and not other.visible
    assert grid.position(list(viewer.layers).index(raw), viewer.layers) == (0, 0)
    shown = widget.flick()
    assert shown is out and grid.position(list(viewer.layers).index(out), viewer.layers) == (0, 0)
    assert widget.toggle_side_by_side() is False
    assert not grid.enabled and other.visible and raw.visible and out.visible
    # outside grid mode the flick shows one layer at a time, at the same place
    assert widget.flick() is raw and raw.visible and not out.visible
    assert widget.flick() is out and out.visible and not raw.visible
    (bound,) = [f for k, f in viewer.keymap.items() if str(k) == "Shift+F"]
    bound(viewer)  # the key flicks too
    assert raw.visible and not out.visible


def test_save_denoised_never_over_the_input(widget, qtbot, tmp_path, monkeypatch):
    errors = []
    monkeypatch.setattr(notify, "show_error", errors.append)
    viewer = widget.viewer
    data = np.random.default_rng(5).normal(size=(3, 48, 40)).astype(np.float32)
    path = write_mrc(tmp_path / "frames.mrcs", data, voxel_size=1.7)
    (raw,) = viewer.open(str(path), plugin=PLUGIN)
    use_model(widget, "tiny", tiny_unet())
    widget.mode.value = MODE_WHOLE
    widget.run()
    qtbot.waitUntil(lambda: widget.result_layer is not None and not widget.busy, timeout=20000)
    widget.save_result(str(path))
    assert errors and "would overwrite the input" in errors[-1]  # the output guard's line
    out_path = tmp_path / "frames_denoised.mrc"
    widget.save_result(str(out_path))
    back, info = read_image(out_path)
    np.testing.assert_allclose(back, widget.result_layer.data, rtol=1e-6)
    assert info.pixel_size == pytest.approx(1.7) and back.shape == data.shape
    # an unfinished live layer is finished (whole image, same settings) before saving
    widget.mode.value = MODE_LIVE
    widget.fill.value = False
    widget.run()
    qtbot.waitUntil(
        lambda: widget.live is not None and widget.live.t_first_view is not None, timeout=20000
    )
    widget.stop_live()
    live_path = tmp_path / "live.mrc"
    worker = widget.save_result(str(live_path), widget.result_layer)
    if worker is not None:
        qtbot.waitUntil(lambda: live_path.exists() and not widget.busy, timeout=20000)
    back, _ = read_image(live_path)
    assert back.shape == data.shape


def test_live_volume_with_a_3d_model_does_a_slab_around_z(widget, qtbot, monkeypatch):
    from napari_cryodenoise.engine import preview

    monkeypatch.setattr(
        preview, "PREVIEW_SIZE_3D", 24
    )  # a small coarse preview keeps the test fast
    viewer = widget.viewer
    volume = np.random.default_rng(6).normal(size=(40, 64, 60)).astype(np.float32)
    viewer.add_image(volume, name="tomo")
    torch.manual_seed(1)
    model = build_model("unet-custom", ndim=3, depth=2, first_kernel=3, last_kernel=3, nf=2)
    use_model(widget, "tiny3d", model)
    widget.fill.value = False
    widget.patch_size.value = 64  # one in-plane tile per slab
    widget.neighbours = 0
    viewer.dims.set_current_step(0, 20)
    widget.run()
    live = widget.live
    wait_idle(widget, qtbot, timeout=60000)
    store = live.store
    assert store.volume and store.shape == volume.shape and live.plane == 20
    z0, z1 = store.slab_range(store.plane_job_index(20))
    assert (z0, z1) == (16, 32)
    assert sorted(store.planes_lru()) == list(range(16, 32))  # only the slab around z
    expected = denoise(volume, model)
    np.testing.assert_allclose(store[z0:z1], expected[z0:z1], rtol=1e-4, atol=1e-5)
    assert store[0].shape == (64, 60)  # far slabs show the coarse 3D preview


def test_event_loop_keeps_answering_during_cpu_denoise(widget, qtbot):
    Pinger = _bench_live().Pinger

    viewer = widget.viewer
    viewer.add_image(np.random.default_rng(7).normal(size=(512, 512)).astype(np.float32))
    torch.manual_seed(0)
    use_model(widget, "unet-small", build_model("unet-small"))  # real architecture, random init
    widget.mode.value = MODE_WHOLE
    widget.patch_size.value = 256
    ping = Pinger(10)
    ping.start()
    widget.run()
    qtbot.waitUntil(lambda: widget.result_layer is not None and not widget.busy, timeout=60000)
    stats = ping.stop()
    print(f"event-loop lateness during a CPU denoise: {stats}")
    assert stats["ticks"] > 20
    # loose bounds: the machine running the tests may be shared; see README for numbers
    assert stats["median_ms"] < 100 and stats["max_ms"] < 2000
