"""The Denoise widget along the paths users take mid-run (Xvfb): layers removed while work
runs, files opened meanwhile, results saved; opened from the Plugins menu, files through
the plugin's reader."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from subprocess_runs import assert_script_closes_cleanly
from widget_models import SlowNet, use_model

from napari_cryodenoise._napari._qt.denoise import notify
from napari_cryodenoise._napari.settings import MODE_WHOLE
from napari_cryodenoise._napari.writer import WriterError
from napari_cryodenoise.io import write_mrc

PLUGIN = "napari-cryodenoise"


def _micrograph(tmp_path, name="mic.mrc", shape=(128, 128)):
    data = np.random.default_rng(0).poisson(20, size=shape).astype(np.float32)
    return write_mrc(tmp_path / name, data, voxel_size=1.7)


def test_removing_the_input_while_a_whole_image_job_runs(
    open_widget, qtbot, tmp_path, monkeypatch
):
    infos, errors = [], []
    monkeypatch.setattr(notify, "show_info", infos.append)
    monkeypatch.setattr(notify, "show_error", errors.append)
    viewer, w = open_widget("Denoise")
    (raw,) = viewer.open(str(_micrograph(tmp_path)), plugin=PLUGIN)
    use_model(w, "slow", SlowNet(delay=0.2))
    w.mode.value = MODE_WHOLE
    for patch in (32, 0):  # many tiles (stopped between them), then one (result arrives late)
        w.patch_size.value = patch
        if raw not in viewer.layers:
            (raw,) = viewer.open(str(tmp_path / "mic.mrc"), plugin=PLUGIN)
        w.run()
        qtbot.waitUntil(lambda: w.busy, timeout=5000)
        qtbot.wait(50)
        viewer.layers.remove(raw)
        qtbot.waitUntil(lambda: not w.busy, timeout=20000)
        qtbot.wait(100)
        assert len(viewer.layers) == 0 and w.result_layer is None  # nothing half-made appears
        assert "mic" in w.status.value and "removed" in w.status.value
        assert not errors


def test_file_save_of_an_unfinished_live_result_is_refused(open_widget, qtbot, tmp_path):
    """File > Save Selected Layers on a live result that is still a preview in places would
    write that coarse preview as if it were the result: refused in one line, nothing written."""
    viewer, w = open_widget("Denoise")
    (raw,) = viewer.open(str(_micrograph(tmp_path, shape=(800, 800))), plugin=PLUGIN)
    use_model(w, "slow", SlowNet(delay=0.3))
    w.patch_size.value = 128  # 49 tiles; the 384-px preview is not exact
    w.fill.value = False
    w.run()
    qtbot.waitUntil(lambda: w.live is not None and w.live.t_first_view is not None, timeout=20000)
    w.stop_live()
    out = w.result_layer
    assert not out.data.is_complete()
    viewer.layers.selection.active = out
    target = tmp_path / "saved.mrc"
    with pytest.raises(WriterError) as info:  # napari shows it as one error notification
        viewer.layers.save(str(target), selected=True, plugin=PLUGIN)
    text = str(info.value)
    assert "\n" not in text and "not finished" in text and "Save denoised as MRC" in text
    assert not target.exists() and [p.name for p in tmp_path.iterdir()] == ["mic.mrc"]
    # the widget's own button finishes the whole image first, then writes
    worker = w.save_result(str(target), out)
    if worker is not None:
        qtbot.waitUntil(lambda: target.exists() and not w.busy, timeout=30000)
    assert target.exists()


def test_file_save_of_an_unfinished_live_result_above_2048_px_is_refused(
    open_widget, qtbot, tmp_path
):
    """The same for a micrograph above 2048 px, whose live result is multiscale: napari
    hands the writer its levels, which were written as the smallest one (half size, the
    coarse preview, the full-size pixel size)."""
    viewer, w = open_widget("Denoise")
    viewer.open(str(_micrograph(tmp_path, shape=(2100, 2100))), plugin=PLUGIN)
    use_model(w, "slow", SlowNet(delay=0.3))
    w.patch_size.value = 512
    w.fill.value = False
    w.run()
    qtbot.waitUntil(lambda: w.live is not None and w.live.t_first_view is not None, timeout=30000)
    w.stop_live()
    out = w.result_layer
    assert out.multiscale and not out.data[0].is_complete()
    viewer.layers.selection.active = out
    target = tmp_path / "saved.mrc"
    with pytest.raises(WriterError, match="not finished"):
        viewer.layers.save(str(target), selected=True, plugin=PLUGIN)
    assert not target.exists() and [p.name for p in tmp_path.iterdir()] == ["mic.mrc"]


CLOSE_WHOLE_SCRIPT = textwrap.dedent(
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
            time.sleep(0.5)
            return x * self.w

    def pump(seconds, until=lambda: False):
        t0 = time.time()
        while time.time() - t0 < seconds and not until():
            QApplication.processEvents()
            time.sleep(0.01)

    viewer = napari.Viewer()
    viewer.add_image(np.random.default_rng(0).normal(size=(256, 256)).astype("f4"))
    _, w = viewer.window.add_plugin_dock_widget("napari-cryodenoise", "Denoise")
    w.models.put("slow", Slow())
    w.model.choices = [*w.model.choices, "slow"]
    w.model.value = "slow"
    w.mode.value = "whole image"
    w.patch_size.value = 64
    w.run()
    pump(10, until=lambda: w.busy)
    pump(0.3)
    assert w.busy, "the whole-image job should run when the viewer closes"
    viewer.close()
    pump(3)  # the app goes on (a script, Jupyter, another viewer): late signals arrive
    print("closed", flush=True)
    """
)


def test_closing_napari_during_a_whole_image_job_is_clean(tmp_path):
    assert_script_closes_cleanly(CLOSE_WHOLE_SCRIPT, tmp_path, "close_whole.py")


def test_cancel_in_live_mode_stops_the_progress_line(open_widget, qtbot, tmp_path):
    viewer, w = open_widget("Denoise")
    viewer.open(str(_micrograph(tmp_path, shape=(800, 800))), plugin=PLUGIN)
    use_model(w, "slow", SlowNet(delay=0.3))
    w.patch_size.value = 128
    w.run()
    qtbot.waitUntil(lambda: w.status.value.startswith("live: "), timeout=20000)
    w.cancel_button.native.click()
    assert w.status.value == "live view stopped"
    qtbot.wait(1200)  # the line used to go on counting: "live: 0/49 tiles ..., 3 s so far"
    assert w.status.value == "live view stopped"
    assert not w.cancel_button.enabled and w.run_button.enabled


@pytest.mark.filterwarnings("ignore:Data array contains NaN values")
def test_a_failed_live_view_keeps_its_error_on_the_status_line(
    open_widget, qtbot, tmp_path, monkeypatch
):
    errors = []
    monkeypatch.setattr(notify, "show_error", errors.append)
    viewer, w = open_widget("Denoise")
    data = np.random.default_rng(1).normal(size=(200, 200)).astype(np.float32)
    data[50, 60] = np.nan
    path = write_mrc(tmp_path / "holes.mrc", data, voxel_size=2.0)
    viewer.open(str(path), plugin=PLUGIN)
    use_model(w, "slow", SlowNet(delay=0.05))
    w.run()
    qtbot.waitUntil(lambda: bool(errors), timeout=20000)
    assert len(errors) == 1 and "NaN" in errors[0]
    qtbot.wait(1200)  # the progress line used to overwrite it: "live: 0/1 tiles ..., 3 s so far"
    assert w.status.value.startswith("failed: ") and "NaN" in w.status.value
    assert not w.cancel_button.enabled and w.run_button.enabled


def test_removing_the_input_while_the_live_view_runs_says_so(open_widget, qtbot, tmp_path):
    """The live view stops; the status said its last count ('live: 3/49 tiles ...')."""
    viewer, w = open_widget("Denoise")
    (raw,) = viewer.open(str(_micrograph(tmp_path, shape=(800, 800))), plugin=PLUGIN)
    use_model(w, "slow", SlowNet(delay=0.3))
    w.patch_size.value = 128
    w.run()
    qtbot.waitUntil(lambda: w.live is not None and w.live.t_first_view is not None, timeout=20000)
    viewer.layers.remove(raw)
    qtbot.wait(300)
    assert w.live is None
    assert w.status.value == "stopped: the layer 'mic' was removed from the viewer"


def test_a_micrograph_opened_after_a_tomogram_gets_a_2d_model(open_widget, qtbot, tmp_path):
    """unet-3d, chosen (and remembered) for a tomogram, can never denoise a micrograph:
    opening one switches the model to the 2D default and says so (was: Denoise failed with
    'choose a 2D model' and the status line said 'loading unet-3d...' for ever)."""
    viewer, w = open_widget("Denoise")
    volume = np.random.default_rng(1).normal(size=(8, 32, 32)).astype(np.float32)
    viewer.open(str(write_mrc(tmp_path / "tomo.mrc", volume, voxel_size=10.0)), plugin=PLUGIN)
    w.model.value = "unet-3d"
    viewer.open(str(_micrograph(tmp_path)), plugin=PLUGIN)
    assert w.input.value.name == "mic" and w.model.value == "unet"
    assert w.state.status == "model unet: unet-3d is a 3D (tomogram) model and mic is 2D"
    w.input.value = viewer.layers["tomo"]
    w.model.value = "unet-3d"  # the tomogram again: the user's choice stays
    assert w.model.value == "unet-3d"


def test_a_model_that_does_not_fit_the_image_says_so_on_the_status_line(
    open_widget, qtbot, tmp_path, monkeypatch
):
    """A 3D model picked for a 2D image: the error stays on the status line (it said
    'loading ...' for ever)."""
    from napari_cryodenoise.models import build_model

    errors = []
    monkeypatch.setattr(notify, "show_error", errors.append)
    viewer, w = open_widget("Denoise")
    viewer.open(str(_micrograph(tmp_path)), plugin=PLUGIN)
    tiny3d = build_model("unet-custom", ndim=3, depth=2, first_kernel=3, last_kernel=3, nf=4)
    use_model(w, "tiny3d", tiny3d)
    w.run()
    qtbot.waitUntil(lambda: bool(errors), timeout=10000)
    assert w.state.status.startswith("not started: model ") and "2D" in w.state.status
    assert "loading" not in w.state.status
