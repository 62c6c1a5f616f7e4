"""Saving from the viewer never overwrites an input (issue 17, item 3).

Each save action of the plugin is pointed at a file a layer came from: directly,
through a symlink and through a hard link. It must refuse with one line, write
nothing, and leave the input byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from napari.utils.notifications import notification_manager

from napari_cryodenoise._napari.save_guard import check_training_outputs, layer_inputs
from napari_cryodenoise._napari.settings import MODE_WHOLE
from napari_cryodenoise._napari.train_jobs import SOURCE_HALF_FILES, SOURCE_MOVIE, TrainData
from napari_cryodenoise._napari.writer import WriterError
from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.io.output_guard import OutputPathError
from napari_cryodenoise.models import build_model
from napari_cryodenoise.training import TrainConfig

PLUGIN = "napari-cryodenoise"
HOW = ["direct", "symlink", "hardlink"]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def aimed_at(src: Path, how: str, suffix: str | None = None) -> Path:
    """``src`` itself, or a new symlink / hard link to it (named with ``suffix``)."""
    if how == "direct":
        return src
    link = src.with_name(f"{how}-to-{src.stem}{suffix or src.suffix}")
    if how == "symlink":
        link.symlink_to(src)
    else:
        os.link(src, link)
    return link


def one_line_refusal(text: str, target: Path) -> None:
    assert "\n" not in text and str(target) in text
    assert "would overwrite the input" in text


def error_messages() -> list[str]:
    return [str(n.message) for n in notification_manager.records]


@pytest.fixture
def micrograph(tmp_path) -> Path:
    data = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    return write_mrc(tmp_path / "in.mrc", data, voxel_size=1.3)


# ----------------------------------------------------------------------------- File > Save


@pytest.mark.parametrize("how", HOW)
def test_writer_refuses_the_layers_own_file(make_napari_viewer, micrograph, how):
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(micrograph), plugin=PLUGIN)
    before, files = sha256(micrograph), set(micrograph.parent.iterdir())
    target = aimed_at(micrograph, how)
    files.add(target)
    with pytest.raises(WriterError) as info:  # napari shows it as an error notification
        viewer.layers.save(str(target), selected=False, plugin=PLUGIN)
    one_line_refusal(str(info.value), target)
    assert sha256(micrograph) == before and set(micrograph.parent.iterdir()) == files
    assert layer_inputs(layer) == [("layer 'in'", str(micrograph))]


# ----------------------------------------------------------------------------- Denoise


@pytest.fixture
def denoised(open_widget, micrograph, qtbot):
    """The Denoise widget with a whole-image result of ``micrograph`` (tiny random U-Net)."""
    notification_manager.records.clear()
    viewer, w = open_widget("Denoise")
    viewer.open(str(micrograph), plugin=PLUGIN)
    torch.manual_seed(0)
    model = build_model("unet-custom", ndim=2, depth=2, first_kernel=3, last_kernel=3, nf=4)
    w.models.put("tiny", model)
    w.model.choices = [*w.model.choices, "tiny"]
    w.model.value = "tiny"
    w.mode.value = MODE_WHOLE
    w.run()
    qtbot.waitUntil(lambda: w.result_layer is not None and not w.busy, timeout=30000)
    return viewer, w


@pytest.mark.parametrize("how", HOW)
def test_denoise_save_refuses_the_input(denoised, micrograph, tmp_path, how):
    viewer, w = denoised
    before = sha256(micrograph)
    target = aimed_at(micrograph, how)
    files = set(tmp_path.iterdir())
    assert w.save_result(target) is None
    one_line_refusal(w.status.value, target)
    assert w.status.value.startswith("not saved: ")
    assert any(m.startswith("Save refused: ") and str(target) in m for m in error_messages())
    # File > Save of the selected result layer is refused the same way
    viewer.layers.selection.active = w.result_layer
    with pytest.raises(WriterError, match="would overwrite the input"):
        viewer.layers.save(str(target), selected=True, plugin=PLUGIN)
    assert sha256(micrograph) == before and set(tmp_path.iterdir()) == files


def test_denoise_save_to_a_new_file_still_works(denoised, tmp_path):
    _viewer, w = denoised
    out = tmp_path / "out.mrc"
    assert w.save_result(out) is None
    assert out.is_file() and w.status.value == f"saved {out}"


# ----------------------------------------------------------------------------- Train


@pytest.fixture
def train_pair(open_widget, tmp_path):
    rng = np.random.default_rng(1)
    even = write_mrc(tmp_path / "even.mrc", rng.normal(size=(64, 64)).astype(np.float32))
    odd = write_mrc(tmp_path / "odd.mrc", rng.normal(size=(64, 64)).astype(np.float32))
    viewer, w = open_widget("Train (Noise2Noise)")
    viewer.open([str(even), str(odd)], plugin=PLUGIN, stack=False)
    w.even.value, w.odd.value = viewer.layers["even"], viewer.layers["odd"]
    w.network.value = "arch:unet-fast"
    w.device.value = "cpu"
    return w, even


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_train_model_file_refuses_an_input(train_pair, tmp_path, how):
    w, even = train_pair
    before = sha256(even)
    target = aimed_at(even, how, suffix=".pt")
    w.output.value = target
    assert w.start() is None and not w.busy
    one_line_refusal(w.status.value, target)
    assert "save model as" in w.status.value
    assert sha256(even) == before and not list(tmp_path.glob("*.ckpt.pt"))


def test_train_model_file_named_as_an_input_gets_its_own_name(train_pair):
    w, even = train_pair
    w.output.value = even  # "save model as" even.mrc: the model goes to even.mrc.pt
    config = w.config(w.data())
    assert Path(config.output) == even.with_name("even.mrc.pt")
    check_training_outputs(config, w.data(), w.source_layers())  # nothing to refuse


@pytest.mark.parametrize("how", HOW)
def test_train_checkpoint_refuses_an_input(train_pair, tmp_path, how):
    w, even = train_pair
    if how == "direct":
        w.output.value = tmp_path / "model.pt"
        config = TrainConfig(output=str(tmp_path / "model.pt"), checkpoint=str(even))
        with pytest.raises(OutputPathError, match="checkpoint"):
            check_training_outputs(config, w.data(), w.source_layers())
        return
    aimed_at(even, how, suffix=".ckpt.pt").rename(tmp_path / "model.ckpt.pt")
    w.output.value = tmp_path / "model.pt"
    assert w.start() is None
    assert "checkpoint" in w.status.value and "would overwrite the input" in w.status.value
    assert not (tmp_path / "model.pt").exists()


def test_training_files_init_and_gain_are_inputs(tmp_path):
    files = tmp_path / "evens"
    files.mkdir()
    half = write_mrc(files / "a.mrc", np.zeros((8, 8), np.float32))
    init = tmp_path / "init.sav"
    init.write_bytes(b"weights")
    data = TrainData(SOURCE_HALF_FILES, paths=(files,), odd_paths=(files,))
    for config, hit in [
        (TrainConfig(output=str(tmp_path / "m.pt"), export_topaz=str(half)), half),
        (TrainConfig(output=str(init), init=str(init)), init),
        (TrainConfig(output=str(tmp_path / "m.pt"), checkpoint=str(init), resume=str(init)), init),
    ]:
        with pytest.raises(OutputPathError, match="would overwrite the input") as info:
            check_training_outputs(config, data)
        assert str(hit) in str(info.value)
    gain = write_mrc(tmp_path / "gain.mrc", np.ones((8, 8), np.float32))
    with pytest.raises(OutputPathError):
        check_training_outputs(
            TrainConfig(output=str(tmp_path / "m.pt"), export_topaz=str(gain)),
            TrainData(SOURCE_MOVIE, gain=gain),
        )
