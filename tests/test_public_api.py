"""The package's top-level names: importable lazily, and a script round trip through them."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import numpy as np

import napari_cryodenoise as cd

#: What the module docstring and README promise each public name is.
CLASSES = {"TrainConfig"}


def test_import_is_light_and_names_resolve():
    code = "import sys, napari_cryodenoise; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert isinstance(cd.__version__, str) and cd.__version__
    for name, module in cd._PUBLIC.items():
        obj = getattr(cd, name)
        # the very object of its home module, not a stand-in
        assert obj is getattr(importlib.import_module(module), name), name
        if name in CLASSES:
            assert inspect.isclass(obj), name
        else:
            assert inspect.isfunction(obj), name
            assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"
    assert set(cd.__all__) == {"__version__", *cd._PUBLIC}
    assert "denoise" in dir(cd)


def test_script_round_trip(tmp_path):
    from napari_cryodenoise.models import build_model

    image = np.random.default_rng(0).normal(10, 2, (70, 90)).astype(np.float32)
    cd.write_mrc(tmp_path / "in.mrc", image, voxel_size=1.5)
    data, info = cd.read_image(tmp_path / "in.mrc")
    out = cd.denoise(data, build_model("affine"), device="cpu")
    path = cd.write_mrc(tmp_path / "out.mrc", out, voxel_size=info.voxel_size)
    back, info2 = cd.read_image(path)
    assert back.shape == image.shape and np.allclose(info2.voxel_size, 1.5)
