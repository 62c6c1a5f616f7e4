"""Real-viewer tests (Qt + OpenGL under Xvfb)."""

import numpy as np
import pytest

from napari_cryodenoise.io import write_mrc


def test_open_mrc_through_the_plugin(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    data = np.random.default_rng(0).normal(size=(40, 50)).astype(np.float32)
    path = write_mrc(tmp_path / "mic.mrc", data, voxel_size=0.85)
    layers = viewer.open(str(path), plugin="napari-cryodenoise")
    (layer,) = layers
    assert layer.name == "mic"
    np.testing.assert_allclose(layer.scale, (0.85, 0.85))
    np.testing.assert_array_equal(np.asarray(layer.data), data)


def test_open_sample_in_viewer(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryodenoise", "even_odd")
    names = [layer.name for layer in viewer.layers]
    assert names == ["synthetic even", "synthetic odd"]
    shot = viewer.screenshot(canvas_only=True)
    assert shot.ndim == 3 and shot[..., :3].std() > 0  # something was drawn


def test_save_layer_through_the_plugin(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    layer = viewer.add_image(np.ones((8, 9), np.float32), scale=(1.5, 1.5))
    out = tmp_path / "saved.mrc"
    viewer.layers.save(str(out), selected=False, plugin="napari-cryodenoise")
    from napari_cryodenoise.io import read_image

    back, info = read_image(out)
    assert back.shape == (8, 9) and info.pixel_size == pytest.approx(1.5)
    np.testing.assert_array_equal(back, np.asarray(layer.data))  # the layer's pixels
    assert list(viewer.layers) == [layer] and layer.data.shape == (8, 9)  # layer untouched
