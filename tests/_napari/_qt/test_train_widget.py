"""The Train (Noise2Noise) dock widget on a real viewer (Qt + OpenGL; run under Xvfb).

Tiny synthetic data, the small ``unet-fast`` from scratch, 32 px crops, a few
steps on the CPU: the whole file takes a few seconds.
"""

import textwrap
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from napari.utils.notifications import notification_manager
from subprocess_runs import assert_script_closes_cleanly

from napari_cryodenoise._napari import train_jobs as jobs
from napari_cryodenoise._napari._qt.denoise import widget as dw
from napari_cryodenoise._napari._qt.train import TrainWidget
from napari_cryodenoise._napari._qt.train.widget import REDRAW_MS
from napari_cryodenoise.errors import InputError
from napari_cryodenoise.models import load_model
from napari_cryodenoise.simulate import simulate_movie

PLUGIN = "napari-cryodenoise"
SCALE = (1.5, 1.5)
TRANSLATE = (30.0, 60.0)


@pytest.fixture(scope="module")
def movie():
    return simulate_movie((96, 96), n_frames=4, seed=3)


@pytest.fixture
def widget(open_widget):
    """The Train widget as the Plugins menu opens it."""
    notification_manager.records.clear()
    _viewer, w = open_widget("Train (Noise2Noise)")
    assert isinstance(w, TrainWidget)
    return w


def messages():
    return [str(n.message) for n in notification_manager.records]


def add_pair(viewer, movie):
    kw = {"scale": SCALE, "translate": TRANSLATE}
    return (
        viewer.add_image(movie.even, name="sim even", **kw),
        viewer.add_image(movie.odd, name="sim odd", **kw),
    )


def quick(w, tmp_path, steps=4, name="model.pt"):
    """Small, fast settings; returns the output path."""
    w.network.value = "arch:unet-fast"
    w.budget_unit.value = "steps"
    w.budget.value = steps
    w.crop.value = 32
    w.batch.value = 2
    w.device.value = "cpu"
    w.val_every.value = 2
    w.preview_every.value = 2
    w.checkpoint_every.value = 0
    w.output.value = tmp_path / name
    return tmp_path / name


def run(w, qtbot, timeout=30000):
    assert w.start() is not None, messages()
    qtbot.waitUntil(lambda: not w.busy, timeout=timeout)
    qtbot.waitUntil(lambda: w.running_workers == 0, timeout=timeout)
    return w.result


def test_widget_is_a_plugin_contribution_with_defaults(make_napari_viewer, movie):
    viewer = make_napari_viewer()
    even, odd = add_pair(viewer, movie)
    viewer.add_image(movie.total, name="sum")
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Train (Noise2Noise)")
    assert isinstance(w, TrainWidget) and w.viewer is viewer
    assert w.source.value == jobs.SOURCE_LAYERS
    assert (w.even.value, w.odd.value, w.preview.value) == (even, odd, even)
    assert w.network.value == "init:" and w.device.value == "auto"
    assert w.precision.value == "auto"  # the same default as cryodenoise train
    assert w.output.value.name == "sim_n2n.pt"
    assert w.output.value.parent == jobs.MODELS_DIR
    assert not w.even.native.isHidden() and w.movie.native.isHidden()
    w.source.value = jobs.SOURCE_MOVIE_FILES
    assert w.even.native.isHidden() and not w.movie_files.native.isHidden()
    assert not w.frames.native.isHidden()
    w.shutdown()


def test_train_two_layers_preview_and_use_in_denoise(widget, qtbot, tmp_path, movie):
    w = widget
    even, _odd = add_pair(w.viewer, movie)
    out = quick(w, tmp_path, steps=6)
    assert w.preview.value is even
    result = run(w, qtbot)
    assert result is not None and not result.cancelled and result.steps == 6
    assert out.is_file() and w.model_path == out
    model = load_model(out)
    assert model.arch == "unet-fast"
    assert (tmp_path / "model.ckpt.pt").is_file()
    lines = w.plot.line_data()
    assert len(lines[0][0]) == 6  # smoothed train loss, one point per step
    assert len(lines[-1][0]) == 3  # validation at steps 2, 4, 6
    assert "done: 6 steps" in w.status.value
    # the preview layer: the visible part of "sim even", placed over it
    prev = w.preview_layer
    assert prev is not None and prev.name == "sim even [training preview]"
    np.testing.assert_allclose(prev.scale, SCALE)
    region = prev.metadata["cryodenoise"]["training_preview"]["region"]
    np.testing.assert_allclose(prev.translate, np.add(TRANSLATE, np.multiply(SCALE, region)[:, 0]))
    assert prev.data.shape == (region[0][1] - region[0][0], region[1][1] - region[1][0])
    assert np.isfinite(prev.data).all() and prev.data.std() > 0
    assert prev not in [v for _, v in w._image_choices()]  # not offered as training data
    # the next run would not overwrite this model: the default name moves on
    assert w.use_button.enabled
    denoise = w.use_in_denoise()
    assert isinstance(denoise, dw.DenoiseWidget)
    assert denoise.model.value == dw.FROM_FILE and denoise.model_file.value == out
    assert not denoise.model_file.native.isHidden()
    assert denoise.settings().model == str(out)
    assert w.use_in_denoise() is denoise  # the same dock, not a second one
    denoise.shutdown()


def test_cancel_keeps_checkpoint_and_best_model(widget, qtbot, tmp_path, movie, monkeypatch):
    from napari_cryodenoise.training.trainer import Trainer

    real_step, slow = Trainer.step, threading.Event()

    def step(self, *args, **kw):  # the step under way when Cancel is pressed takes a while
        out = real_step(self, *args, **kw)
        if slow.is_set():
            time.sleep(1.0)
        return out

    monkeypatch.setattr(Trainer, "step", step)
    w = widget
    add_pair(w.viewer, movie)
    out = quick(w, tmp_path, steps=10000)
    w.preview.value = None
    w.start()
    qtbot.waitUntil(lambda: w._status is not None and w._status.step >= 2, timeout=30000)
    slow.set()
    w.cancel()
    assert "kept" in w.status.value and not w.cancel_button.enabled
    # the step line (with its ETA of the whole budget) does not come back over it
    qtbot.wait(3 * REDRAW_MS)
    assert w.busy and w.status.value.startswith("cancelling after the current step")
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    result = w.result
    assert result.cancelled and 2 <= result.steps < 10000
    assert (
        result.checkpoint_path == tmp_path / "model.ckpt.pt" and result.checkpoint_path.is_file()
    )
    assert out.is_file() and load_model(out) is not None
    assert "cancelled at step" in w.status.value and "best model kept" in w.status.value
    assert w.use_button.enabled and w.start_button.enabled
    # the GUI is usable: a second short run works
    quick(w, tmp_path, steps=2, name="again.pt")
    assert run(w, qtbot).steps == 2 and (tmp_path / "again.pt").is_file()


def test_bad_inputs_give_notifications(widget, qtbot, tmp_path, movie):
    w = widget
    movie_layer = w.viewer.add_image(movie.frames, name="sim movie")
    quick(w, tmp_path, steps=2)
    w.source.value = jobs.SOURCE_MOVIE
    assert w.movie.value is movie_layer
    for frames, text in (("3:9", "selects 1 of 4 frames"), ("a:b", "use A:B")):
        w.frames.value = frames
        assert w.start() is None and not w.busy
        assert any(text in m for m in messages()), messages()
        assert w.status.value.startswith("failed:")
    w.source.value = jobs.SOURCE_LAYERS
    w.even.value = movie_layer
    w.odd.value = w.viewer.add_image(movie.odd, name="odd")
    assert w.start() is None and any("same shape" in m for m in messages())
    w.lr.value = "fast"
    w.source.value = jobs.SOURCE_MOVIE
    w.frames.value = "0:4"
    assert w.start() is None and any("learning rate 'fast'" in m for m in messages())
    # errors found in the worker (image smaller than the network needs) are notified too
    w.lr.value = ""
    w.viewer.add_image(np.random.default_rng(0).normal(size=(6, 6)), name="tiny")
    w.source.value = jobs.SOURCE_SINGLE
    w.single.value = w.viewer.layers["tiny"]
    run(w, qtbot)
    assert w.result is None and w.status.value.startswith("failed:")
    assert any(m.startswith("Training failed:") for m in messages())


def test_movie_layer_and_masked_single_layer(widget, qtbot, tmp_path, movie):
    w = widget
    w.viewer.add_image(movie.frames, name="sim movie")
    quick(w, tmp_path, steps=2, name="movie.pt")
    w.source.value = jobs.SOURCE_MOVIE
    w.frames.value = "0:4"
    w.precision.value = "fp32"
    result = run(w, qtbot)
    assert result.steps == 2 and result.config["mode"] == "noise2noise"
    # a movie keeps its frames in groups: random partitions by default; the precision asked
    assert result.config["pairing"] == "random" and result.config["precision"] == "fp32"
    assert w.preview_layer is not None and w.preview_layer.ndim == 2  # frame of the movie
    w.viewer.add_image(movie.total, name="sum")
    w.source.value = jobs.SOURCE_SINGLE
    w.single.value = w.viewer.layers["sum"]
    quick(w, tmp_path, steps=3, name="masked.pt")
    result = run(w, qtbot)
    assert result.config["mode"] == "masked" and result.steps == 3
    assert (tmp_path / "masked.pt").is_file()


def test_train_from_eer_movie_file(widget, qtbot, tmp_path):
    pytest.importorskip("imagecodecs")
    from eer_writer import write_eer

    rng = np.random.default_rng(0)
    eer = write_eer(tmp_path / "m.eer", (rng.random((12, 64, 64)) < 0.05).astype(np.uint8))
    w = widget
    w.source.value = jobs.SOURCE_MOVIE_FILES
    assert w.eer_grouping.native.isHidden()
    w.movie_files.value = [eer]
    assert not w.eer_grouping.native.isHidden()
    w.eer_grouping.value = 3
    quick(w, tmp_path, steps=2, name="eer.pt")
    assert w.data().eer_grouping == 3
    result = run(w, qtbot)
    assert result.steps == 2 and (tmp_path / "eer.pt").is_file()


def test_use_model_file_on_denoise_widget(open_widget, tmp_path):
    _viewer, w = open_widget("Denoise")
    assert isinstance(w, dw.DenoiseWidget)
    with pytest.raises(InputError, match="no such model file"):
        w.use_model_file(tmp_path / "missing.pt")


def test_jobs_helpers():
    ys, xs = jobs.preview_region((2000, 1000), ((-50.0, 2500.0), (100.0, 300.0)))
    assert (ys.stop - ys.start, xs.stop - xs.start) == (512, 200)
    assert ys.start == 1000 - 256  # the view centre (clipped box 0..2000)
    ys, xs = jobs.preview_region((100, 80), None)
    assert (ys, xs) == (slice(0, 100), slice(0, 80))
    assert jobs.parse_lr(" ") is None and jobs.parse_lr("3e-4") == 3e-4
    with pytest.raises(InputError):
        jobs.parse_lr("2")
    assert jobs.network_fields("init:") == {"init": None, "arch": None}
    assert jobs.network_fields("arch:unet-fast") == {"arch": "unet-fast", "init": None}
    assert jobs.format_duration(200) == "3 min 20 s"
    assert jobs.safe_name("my even/odd: set") == "my_even_odd_set"


def test_loss_plot_text_fallback(qtbot, monkeypatch):
    from napari_cryodenoise._napari._qt import plot

    monkeypatch.setattr(plot, "FigureCanvasQTAgg", None)
    p = plot.make_loss_plot()
    qtbot.addWidget(p)
    assert isinstance(p, plot.TextLossPlot)
    p.set_history([(1, 1.0), (2, 0.9)], [(2, 0.95)])
    assert "best 0.95 at 2" in p.text() and len(p.line_data()) == 2


@pytest.fixture
def timed_line(monkeypatch):
    """Switch the expected-time line on, timing the form's settings on a tiny network."""
    from napari_cryodenoise._napari._qt.train import step_time as line
    from napari_cryodenoise.training import step_time as core

    monkeypatch.setattr(line.StepTimeLine, "ENABLED", True)
    timed = []
    real = core.estimate_step_seconds

    def tiny(config, ndim=2, **kw):
        net = config.arch or config.init
        timed.append((config.crop, config.batch_size, config.device, ndim, net))
        return real(replace(config, arch="unet-fast", init=None), ndim, warmup=0, steps=1, **kw)

    monkeypatch.setattr(core, "estimate_step_seconds", tiny)
    return timed


def test_expected_time_per_step_before_training(open_widget, qtbot, timed_line, movie):
    """The line appears when the widget opens, follows the crop, and is debounced."""
    timed = timed_line
    _viewer, w = open_widget("Train (Noise2Noise)")
    add_pair(w.viewer, movie)
    w.crop.value, w.batch.value, w.device.value = 32, 1, "cpu"
    qtbot.waitUntil(lambda: "1 x 32 px" in w.expected.value, timeout=30000)
    assert w.expected.value.startswith("expected: ~")
    assert "(cpu, 1 x 32 px) -> ~" in w.expected.value and "in 10 min" in w.expected.value
    assert timed[-1][:4] == (32, 1, "cpu", 2)
    n = len(timed)
    w.budget_unit.value = "steps"  # the budget only redraws the line
    assert "steps in ~" in w.expected.value and len(timed) == n
    w.crop.value = 48
    assert "estimating" not in w.expected.value  # debounced: nothing starts at once
    qtbot.waitUntil(lambda: "1 x 48 px" in w.expected.value, timeout=30000)
    assert len(timed) == n + 1 and timed[-1][0] == 48
    w.network.value = "arch:unet-small"
    w.crop.value = 64  # two quick changes: one measurement
    qtbot.waitUntil(lambda: "1 x 64 px" in w.expected.value, timeout=30000)
    qtbot.waitUntil(lambda: w.running_workers == 0, timeout=30000)
    assert len(timed) == n + 2 and timed[-1][4] == "unet-small"


def test_expected_time_errors_are_one_line(open_widget, qtbot, monkeypatch, timed_line):
    from napari_cryodenoise.errors import InputError as Err
    from napari_cryodenoise.training import step_time as core

    def fail(config, ndim=2, **kw):
        raise Err("network unet-small is 2D but the training data are volumes\nmore")

    monkeypatch.setattr(core, "estimate_step_seconds", fail)
    _viewer, w = open_widget("Train (Noise2Noise)")
    qtbot.waitUntil(lambda: "2D but" in w.expected.value, timeout=30000)
    assert w.expected.value.startswith("expected: ? (network unet-small")
    assert "more" not in w.expected.value

    def crash(config, ndim=2, **kw):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nTraceback...")

    monkeypatch.setattr(core, "estimate_step_seconds", crash)
    w.crop.value = 64
    qtbot.waitUntil(lambda: "RuntimeError" in w.expected.value, timeout=30000)
    assert "Traceback" not in w.expected.value


CLOSE_SCRIPT = textwrap.dedent(
    """
    import time
    import napari
    from qtpy.QtWidgets import QApplication
    from napari_cryodenoise.training import step_time

    real = step_time.estimate_step_seconds

    def slow(config, ndim=2, **kw):  # still running when the viewer closes
        time.sleep(1.0)
        return real(config, ndim, steps=20, **kw)

    step_time.estimate_step_seconds = slow
    viewer = napari.Viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-cryodenoise", "Train (Noise2Noise)")
    w.device.value = "cpu"
    t0 = time.time()
    while time.time() - t0 < 30 and not w.step_time.running:
        QApplication.processEvents()
        time.sleep(0.01)
    assert w.step_time.running, "an estimate should run when the viewer closes"
    assert "estimating" in w.expected.value
    viewer.close()
    print("closed", flush=True)
    """
)


def test_closing_napari_while_estimating_is_clean(tmp_path):
    assert_script_closes_cleanly(CLOSE_SCRIPT, tmp_path, "close_train.py")


def test_a_step_budget_shows_whole_steps(widget):
    """The budget read '40.0 steps'; minutes keep their tenth."""
    widget.budget_unit.value = "steps"
    widget.budget.value = 40
    assert widget.budget.native.text() == "40"
    widget.budget_unit.value = "minutes"
    widget.budget.value = 2.5
    assert widget.budget.native.text() == "2.5"


def test_an_existing_model_or_checkpoint_is_never_replaced(widget, qtbot, tmp_path, movie):
    """Like ``cryodenoise train``: an earlier run's model is not overwritten unasked."""
    w = widget
    add_pair(w.viewer, movie)
    out = quick(w, tmp_path, steps=2, name="mine.pt")
    out.write_bytes(b"a week of training")
    assert w.start() is None and not w.busy
    assert (
        w.status.value.startswith("failed: save model as") and "already exists" in w.status.value
    )
    assert any("already exists" in m and "\n" not in m for m in messages()), messages()
    # the same line as cryodenoise train's (one rule in the training core), with its own ways
    line = (
        f"save model as {out}: already exists (an earlier run's?); nothing was written: "
        "choose another file name in 'save model as' or delete that file to replace it"
    )
    assert any(m.endswith(line) for m in messages()), messages()
    assert w.status.value == "failed: " + line  # all of it: the end says what to do
    assert out.read_bytes() == b"a week of training"
    assert not (tmp_path / "mine.ckpt.pt").exists()
    # a checkpoint left next to the chosen name (its model deleted) is kept too
    out.unlink()
    (tmp_path / "mine.ckpt.pt").write_bytes(b"resumable")
    assert w.start() is None and "checkpoint" in w.status.value
    assert (tmp_path / "mine.ckpt.pt").read_bytes() == b"resumable" and not out.exists()
    # Start again after a run, with the same typed name: refused, the model is kept
    quick(w, tmp_path, steps=2, name="new.pt")
    assert run(w, qtbot).steps == 2
    before = (tmp_path / "new.pt").read_bytes()
    assert w.start() is None and "already exists" in w.status.value
    assert (tmp_path / "new.pt").read_bytes() == before


def test_motioncor_evn_odd_files_are_the_default_pair(make_napari_viewer, tmp_path, movie):
    """MotionCor2 -SplitSum 1 halves (X_EVN / X_ODD) opened from files: the form chose
    'movie files' and the model was named 'mic01_EVN'; now they are the even/odd pair, each
    micrograph's halves together however the files were opened."""
    from napari_cryodenoise.io.mrc import write_mrc

    other = simulate_movie((96, 96), n_frames=4, seed=4)
    files = {
        "mic02_ODD": other.odd,
        "mic01_EVN": movie.even,
        "mic01_ODD": movie.odd,
        "mic02_EVN": other.even,
    }
    viewer = make_napari_viewer()
    for name, data in files.items():
        path = write_mrc(tmp_path / f"{name}.mrc", data, voxel_size=1.5)
        viewer.open(str(path), plugin=PLUGIN)
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Train (Noise2Noise)")
    assert w.source.value == jobs.SOURCE_LAYERS
    assert (w.even.value.name, w.odd.value.name) == ("mic01_EVN", "mic01_ODD")
    assert w.preview.value is w.even.value
    assert w.output.value.name == "mic01_n2n.pt"
    w.shutdown()


def test_halves_of_other_pixel_sizes_are_refused(widget, tmp_path, movie):
    """An odd half of another exposure (same shape, other pixel size) trained silently."""
    from napari_cryodenoise.io.mrc import write_mrc

    w = widget
    for name, data, apix in (("a_EVN", movie.even, 1.5), ("b_ODD", movie.odd, 3.0)):
        w.viewer.open(
            str(write_mrc(tmp_path / f"{name}.mrc", data, voxel_size=apix)), plugin=PLUGIN
        )
    quick(w, tmp_path, steps=2)
    w.source.value = jobs.SOURCE_LAYERS
    w.even.value, w.odd.value = w.viewer.layers["a_EVN"], w.viewer.layers["b_ODD"]
    assert w.start() is None and not w.busy
    line = (
        "the even layer 'a_EVN' has 1.5 A pixels but the odd layer 'b_ODD' 3 A; the two halves "
        "of one exposure have the same pixel size: choose its odd half"
    )
    assert w.status.value == "failed: " + line
    assert messages()[-1] == "Training failed: " + line
    assert not (tmp_path / "model.pt").exists()
    # a layer without a known pixel size (added from Python, 1 A/pixel shown) is not refused
    w.odd.value = w.viewer.add_image(movie.odd, name="odd from a script")
    w.data()


CLOSE_TRAINING_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import napari
    from qtpy.QtWidgets import QApplication
    from napari_cryodenoise.io.mrc import write_mrc
    from napari_cryodenoise.simulate import simulate_movie

    folder = sys.argv[1]
    movie = simulate_movie((96, 96), n_frames=4, seed=3)
    viewer = napari.Viewer()
    for name, data in (("a_EVN", movie.even), ("a_ODD", movie.odd)):
        viewer.open(write_mrc(f"{folder}/{name}.mrc", data, voxel_size=1.5),
                    plugin="napari-cryodenoise")
    _, w = viewer.window.add_plugin_dock_widget("napari-cryodenoise", "Train (Noise2Noise)")
    w.network.value, w.device.value = "arch:unet-fast", "cpu"
    w.budget_unit.value, w.budget.value = "steps", 100000
    w.crop.value, w.batch.value, w.val_every.value = 32, 2, 2
    w.preview_every.value, w.checkpoint_every.value = 2, 0
    w.output.value = f"{folder}/m.pt"
    w.start()
    t0 = time.time()
    while time.time() - t0 < 60 and (w._status is None or w._status.step < 3):
        QApplication.processEvents()
        time.sleep(0.01)
    assert w.busy, "training should run when the viewer closes"
    viewer.close()
    for _ in range(50):  # the main loop goes on a little (late signals are delivered)
        QApplication.processEvents()
        time.sleep(0.01)
    print("closed", flush=True)
    """
)


def test_closing_napari_while_training_keeps_checkpoint(tmp_path):
    """Closing the viewer mid-run raised 'wrapped C/C++ object of type QPushButton has been
    deleted' from the finished training and aborted napari; the run stops after its step,
    with its checkpoint and best model written, as on Cancel."""
    script = CLOSE_TRAINING_SCRIPT.replace("sys.argv[1]", repr(str(tmp_path)))
    assert_script_closes_cleanly(script, tmp_path, "close_training.py")
    assert (tmp_path / "m.ckpt.pt").is_file()
    assert load_model(tmp_path / "m.pt") is not None


def test_use_in_denoise_selects_the_full_sum_beside_its_halves(widget, qtbot, tmp_path, movie):
    """Trained on mic01_EVN / mic01_ODD with mic01 (the full sum) open: Denoise is handed
    mic01, the image the user denoises (was: the even half); without it, the even half."""
    from napari_cryodenoise.io.mrc import write_mrc

    w = widget
    full = movie.even + movie.odd
    for name, data in (("mic01", full), ("mic01_EVN", movie.even), ("mic01_ODD", movie.odd)):
        path = write_mrc(tmp_path / f"{name}.mrc", data, voxel_size=1.5)
        w.viewer.open(str(path), plugin=PLUGIN)
    quick(w, tmp_path, steps=2)
    assert (w.even.value.name, w.odd.value.name) == ("mic01_EVN", "mic01_ODD")
    assert run(w, qtbot) is not None
    denoise = w.use_in_denoise()
    assert denoise.input.value is w.viewer.layers["mic01"]
    w.viewer.layers.remove("mic01")
    assert w.use_in_denoise().input.value is w.viewer.layers["mic01_EVN"]
    denoise.shutdown()
