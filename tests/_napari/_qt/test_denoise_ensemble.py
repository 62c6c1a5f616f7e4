"""The Denoise widget's self-ensemble checkbox, opened from the Plugins menu (Xvfb)."""

from __future__ import annotations

import numpy as np
import torch
from widget_models import use_model

from napari_cryodenoise._napari.settings import MODE_LIVE, MODE_WHOLE
from napari_cryodenoise._napari.tiles import TileStore
from napari_cryodenoise.engine import denoise
from napari_cryodenoise.models import build_model
from napari_cryodenoise.provenance import mrc_labels


def _tiny_unet():
    torch.manual_seed(0)
    return build_model("unet-custom", ndim=2, depth=2, first_kernel=3, last_kernel=3, nf=4)


def test_checkbox_settings_command_and_whole_run(open_widget, qtbot):
    viewer, w = open_widget("Denoise")
    assert w.ensemble.value is False and "8x" in w.ensemble.label
    assert "rotations" in w.ensemble.tooltip
    image = np.random.default_rng(0).normal(size=(90, 70)).astype(np.float32)
    viewer.add_image(image, name="mic")
    model = _tiny_unet()
    use_model(w, "tiny", model)
    w.mode.value = MODE_WHOLE
    plain_key = w.state.settings.result_key()
    w.ensemble.value = True
    settings = w.state.settings
    assert settings.ensemble is True and settings.result_key() != plain_key
    assert "--ensemble" in w.command.value
    w.run()
    qtbot.waitUntil(lambda: w.result_layer is not None and not w.busy, timeout=30000)
    out = w.result_layer
    np.testing.assert_allclose(
        out.data, denoise(image, model, ensemble=True), rtol=1e-5, atol=1e-4
    )
    facts = out.metadata["cryodenoise"]
    assert facts["settings"]["ensemble"] is True
    assert any("ensemble=8" in line for line in mrc_labels(facts))
    w.shutdown()
    # remembered like the other settings
    _viewer2, w2 = open_widget("Denoise")
    assert w2.ensemble.value is True
    w2.shutdown()


def test_live_tiles_use_the_ensemble(open_widget, qtbot):
    viewer, w = open_widget("Denoise")
    image = np.random.default_rng(1).normal(size=(150, 130)).astype(np.float32)
    viewer.add_image(image, name="mic")
    model = _tiny_unet()
    use_model(w, "tiny", model)
    w.mode.value = MODE_LIVE
    w.ensemble.value = True
    w.patch_size.value = 64
    w.run()
    qtbot.waitUntil(
        lambda: not w.busy and w.live is not None and not w.live.busy and w.live.active,
        timeout=30000,
    )
    store = w.result_layer.data
    assert isinstance(store, TileStore)
    want = denoise(image, model, ensemble=True)
    assert np.abs(want - denoise(image, model)).max() > 1e-3 * want.std()  # it differs
    ny, nx = store.grid.counts
    done = [(iy, ix) for iy in range(ny) for ix in range(nx) if store._tile_done(0, iy, ix)]
    assert done
    for iy, ix in done:
        ys, xs = store.grid.slices(iy, ix)
        np.testing.assert_allclose(store[ys, xs], want[ys, xs], rtol=1e-5, atol=1e-4)
    w.shutdown()
