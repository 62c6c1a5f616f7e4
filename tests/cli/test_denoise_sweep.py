"""``cryodenoise denoise`` / ``evaluate`` as users run them: subprocesses, real arguments."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from subprocess_runs import cryodenoise

from napari_cryodenoise.io import read_image

models = pytest.importorskip("napari_cryodenoise.models")


@pytest.fixture(scope="module")
def affine(tmp_path_factory):
    """A saved affine model: a run takes seconds."""
    path = tmp_path_factory.mktemp("model") / "affine.pt"
    return str(models.save_model(models.build_model("affine"), path))


def test_float64_tiff_is_denoised_and_float64_arrays_are_not_changed(tmp_path, affine):
    image = np.random.default_rng(0).normal(100, 5, (64, 64))
    tifffile.imwrite(tmp_path / "f64.tif", image)
    proc = cryodenoise("denoise", "f64.tif", "-o", "out", "-m", affine, "-d", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out, _ = read_image(tmp_path / "out" / "f64.mrc")
    assert out.shape == (64, 64) and np.isfinite(out).all()
    # the Python API: the caller's float64 array is left as it was
    from napari_cryodenoise.engine import denoise

    before = image.copy()
    denoise(image, models.load_model(affine), device="cpu")
    np.testing.assert_array_equal(image, before)
