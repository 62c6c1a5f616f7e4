"""The package's top-level names: importable lazily, and a script round trip through them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import napari_cryodenoise as cd


def test_import_is_light_and_names_resolve():
    code = "import sys, napari_cryodenoise; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    for name in cd.__all__:
        assert getattr(cd, name) is not None


def test_script_round_trip(tmp_path):
    from napari_cryodenoise.models import build_model

    image = np.random.default_rng(0).normal(10, 2, (70, 90)).astype(np.float32)
    cd.write_mrc(tmp_path / "in.mrc", image, voxel_size=1.5)
    data, info = cd.read_image(tmp_path / "in.mrc")
    out = cd.denoise(data, build_model("affine"), device="cpu")
    path = cd.write_mrc(tmp_path / "out.mrc", out, voxel_size=info.voxel_size)
    back, info2 = cd.read_image(path)
    assert back.shape == image.shape and np.allclose(info2.voxel_size, 1.5)
