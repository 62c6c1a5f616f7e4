"""Shared fixtures: the optional real-data folder next to the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` next to the checkout; skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available (real cryo-EM data for manual checks)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _private_settings_dir(tmp_path_factory, monkeypatch):
    """Remembered widget settings go to a fresh folder per test, never the user's."""
    monkeypatch.setenv("CRYODENOISE_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
