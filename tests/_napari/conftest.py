"""Fixtures for the napari tests."""

import pytest


@pytest.fixture(autouse=True)
def _no_model_preload(monkeypatch):
    """Widgets do not load pretrained weights in the background during tests."""
    from napari_cryodenoise._napari.denoise_widget import DenoiseWidget

    monkeypatch.setattr(DenoiseWidget, "PRELOAD", False)
