"""Issue 16 (3, 7, 8, 10, 11): automatic bin, one Denoise dock, movie-sum training preview,
provenance of saved results, remembered settings. Widgets opened as the menus do; run under Xvfb.
"""

import json

import mrcfile
import numpy as np
import pytest
import torch
from napari._app_model import get_app_model

from napari_cryodenoise import __version__
from napari_cryodenoise._napari import train_jobs as jobs
from napari_cryodenoise._napari._qt.denoise import DenoiseWidget
from napari_cryodenoise._napari._qt.form_memory import settings_dir
from napari_cryodenoise._napari._qt.handover import docked_widgets
from napari_cryodenoise._napari._qt.train import TrainWidget, form
from napari_cryodenoise._napari.settings import MODE_LIVE, MODE_WHOLE
from napari_cryodenoise.engine import denoise
from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.models import build_model
from napari_cryodenoise.simulate import simulate_movie

PLUGIN = "napari-cryodenoise"


def tiny_unet():
    torch.manual_seed(0)
    return build_model("unet-custom", ndim=2, depth=2, first_kernel=3, last_kernel=3, nf=4)


def open_mrc(viewer, path, data, voxel):
    write_mrc(path, data, voxel_size=voxel)
    (layer,) = viewer.open(str(path), plugin=PLUGIN)
    return layer


def denoise_docks(viewer):
    return [w for w in docked_widgets(viewer) if isinstance(w, DenoiseWidget)]


def close_all(viewer, qtbot):
    for w in docked_widgets(viewer):
        if hasattr(w, "shutdown"):
            w.shutdown()
    for w in docked_widgets(viewer):
        if hasattr(w, "running_workers"):
            qtbot.waitUntil(lambda w=w: w.running_workers == 0, timeout=30000)


def test_auto_bin_follows_the_input_pixel_size(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    fine = open_mrc(viewer, tmp_path / "fine.mrc", rng.normal(size=(96, 88)).astype("f4"), 0.67)
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
    assert w.input.value is fine
    assert w.bin_factor.value == "auto"
    assert w.bin_factor.native.currentText() == "auto (x4 -> 2.68 A/px)"
    assert w.settings().bin_factor == 4 and "--bin 4" in w.command.value
    coarse = open_mrc(viewer, tmp_path / "c.mrc", rng.normal(size=(40, 40)).astype("f4"), 2.5)
    assert w.input.value is coarse  # a newly opened image becomes the input
    assert w.bin_factor.native.currentText() == "auto (x1 -> 2.50 A/px)"
    assert w.settings().bin_factor == 1 and "--bin" not in w.command.value
    plain = viewer.add_image(rng.normal(size=(40, 40)), name="no pixel size")
    w.input.value = plain
    assert w.bin_factor.native.currentText() == "auto (x1: no pixel size)"
    # an explicit choice stays what it is
    w.bin_factor.value = 2
    w.input.value = fine
    assert w.bin_factor.value == 2 and w.settings().bin_factor == 2
    close_all(viewer, qtbot)


def quick_training(w, tmp_path):
    w.network.value = "arch:unet-fast"
    w.budget_unit.value = "steps"
    w.budget.value = 2
    w.crop.value = 32
    w.batch.value = 2
    w.device.value = "cpu"
    w.val_every.value = 2
    w.preview_every.value = 1
    w.checkpoint_every.value = 0
    w.output.value = tmp_path / "model.pt"


def train(w, qtbot):
    assert w.start() is not None
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    qtbot.waitUntil(lambda: w.running_workers == 0, timeout=60000)
    qtbot.waitUntil(lambda: w.preview_layer is not None, timeout=30000)


def test_use_in_denoise_reuses_the_menu_dock_and_picks_the_trained_layer(
    make_napari_viewer, qtbot, tmp_path
):
    viewer = make_napari_viewer()
    movie = simulate_movie((96, 96), n_frames=4, seed=3)
    even = viewer.add_image(movie.even, name="sim even")
    viewer.add_image(movie.odd, name="sim odd")
    # Denoise opened from Layers > Filter: napari titles that dock differently
    get_app_model().commands.execute_command("napari-cryodenoise.denoise_widget").result()
    (first,) = denoise_docks(viewer)
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Train (Noise2Noise)")
    assert isinstance(w, TrainWidget)
    quick_training(w, tmp_path)
    train(w, qtbot)
    preview = w.preview_layer
    viewer.layers.selection.active = preview  # the newest layer, selected
    first.input.value = preview  # even if Denoise was pointed at the preview
    denoise = w.use_in_denoise()
    assert denoise is first and denoise_docks(viewer) == [first]
    assert denoise.input.value is even
    assert str(denoise.model_file.value) == str(tmp_path / "model.pt")
    close_all(viewer, qtbot)


def test_training_preview_of_a_movie_is_on_the_frame_sum(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    movie = simulate_movie((96, 96), n_frames=4, seed=3)
    frames = viewer.add_image(movie.frames, name="movie")
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Train (Noise2Noise)")
    assert w.source.value == jobs.SOURCE_MOVIE and w.preview.value is frames
    assert w.preview_frames.value == form.PREVIEW_SUM and w.preview_sum()
    quick_training(w, tmp_path)
    train(w, qtbot)
    prev = w.preview_layer
    facts = prev.metadata["cryodenoise"]["training_preview"]
    assert facts["frames"] == "sum"
    (y0, y1), (x0, x1) = facts["region"]
    model = w.live_preview.model
    total = np.asarray(movie.frames, np.float32).sum(axis=0)
    expected = denoise(total, model, device="cpu")[y0:y1, x0:x1]
    np.testing.assert_allclose(prev.data, expected, rtol=1e-4, atol=1e-4)
    # the current frame stays a choice; even/odd layers (2D) have no frames to sum
    w.preview_frames.value = form.PREVIEW_FRAME
    assert not w.preview_sum()
    w.source.value = jobs.SOURCE_SINGLE
    w.preview.value = viewer.add_image(movie.even, name="even")
    assert not w.preview_sum() and w.preview_frames.native.isHidden()
    close_all(viewer, qtbot)


def test_saved_result_records_its_provenance(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    data = np.random.default_rng(4).normal(size=(128, 112)).astype(np.float32)
    raw = open_mrc(viewer, tmp_path / "mic.mrc", data, 0.67)
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
    w.models.put("tiny", tiny_unet())
    w.model.choices = [*w.model.choices, "tiny"]
    w.model.value = "tiny"
    w.mode.value = MODE_WHOLE
    w.lowpass.value = 2.0
    w.patch_size.value = 64
    w.device.value = "cpu"
    w.run()
    qtbot.waitUntil(lambda: w.result_layer is not None and not w.busy, timeout=30000)
    out = w.result_layer
    assert out.data.shape == (32, 28)  # auto bin 4 at 0.67 A/px
    facts = out.metadata["cryodenoise"]
    assert facts["source_path"] == str(raw.metadata["cryodenoise"]["path"])
    assert facts["settings"]["bin_factor"] == 4 and facts["settings"]["lowpass"] == 2.0
    assert facts["denoise"]["version"] == __version__
    assert facts["denoise"]["device_used"] == "cpu" and facts["denoise"]["created"]
    viewer.layers.selection.active = out
    assert w.info.value.startswith("mic.mrc -> tiny, bin 4, low-pass 2")
    assert str(tmp_path / "mic.mrc") in w.info.tooltip
    path = tmp_path / "mic_denoised.mrc"
    w.save_result(str(path), out)
    with mrcfile.open(path) as mrc:
        labels = [bytes(lbl).decode().strip() for lbl in mrc.header.label[: mrc.header.nlabl]]
    assert all(len(lbl) <= 80 for lbl in labels) and len(labels) <= 10
    text = " ".join(labels)
    assert labels[1].startswith(f"napari-cryodenoise {__version__} denoise")  # after mrcfile's
    for item in (
        "model=tiny",
        "bin=4",
        "lowpass=2",
        "gaussian=0",
        "patch=64",
        "device=cpu",
        "precision=fp32",
        "mode=whole",
        f"input={tmp_path / 'mic.mrc'}",
    ):
        assert item in text, (item, labels)
    # the save is shown on the info line, which live status updates do not touch
    assert w.info.value.startswith("saved mic_denoised.mrc")
    w.status.value = "live: 3/4 tiles on this plane (idle)"
    assert w.info.value.startswith("saved mic_denoised.mrc")
    close_all(viewer, qtbot)


def test_settings_are_remembered_and_reset(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
    assert (w.bin_factor.value, w.mode.value, w.precision.value) == ("auto", MODE_LIVE, "fp32")
    w.bin_factor.value = 2
    w.mode.value = MODE_WHOLE
    w.precision.value = "bf16"
    w.lowpass.value = 3.0
    w.model.value = "unet-small" if "unet-small" in w.model.choices else w.model.value
    model = w.model.value
    saved = json.loads((settings_dir() / "denoise.json").read_text())
    assert saved["bin"] == 2 and saved["precision"] == "bf16"
    w.shutdown()
    viewer.window.remove_dock_widget(dock)
    dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
    assert (w.bin_factor.value, w.mode.value, w.precision.value) == (2, MODE_WHOLE, "bf16")
    assert w.lowpass.value == 3.0 and w.model.value == model
    w.reset_button.changed.emit(True)
    assert (w.bin_factor.value, w.mode.value, w.precision.value) == ("auto", MODE_LIVE, "fp32")
    assert w.lowpass.value == 1.0 and w.model.value == "unet"
    assert not (settings_dir() / "denoise.json").exists()
    w.shutdown()
    viewer.window.remove_dock_widget(dock)
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
    assert (w.bin_factor.value, w.precision.value) == ("auto", "fp32")
    close_all(viewer, qtbot)


def test_remembered_values_that_no_longer_fit_are_skipped(make_napari_viewer, qtbot):
    folder = settings_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "denoise.json").write_text(
        json.dumps({"model": "gone-model", "device": "cuda:7", "bin": 3, "model_file": "/nope"})
    )
    viewer = make_napari_viewer()
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
    assert w.model.value == "unet" and w.device.value == "auto" and w.bin_factor.value == 3
    (folder / "denoise.json").write_text("{not json")
    _dock2, w2 = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")  # same dock
    assert w2 is w
    close_all(viewer, qtbot)


@pytest.fixture(autouse=True)
def _quiet_preload(monkeypatch):
    monkeypatch.setattr(DenoiseWidget, "PRELOAD", False)
