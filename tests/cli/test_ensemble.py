"""``cryodenoise denoise --ensemble`` as a user runs it: the pixels and the header say so."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch
from subprocess_runs import cryodenoise

from napari_cryodenoise.cli import main
from napari_cryodenoise.engine import denoise
from napari_cryodenoise.io import write_mrc

models = pytest.importorskip("napari_cryodenoise.models")


def _labels(path) -> list[str]:
    with mrcfile.open(path, permissive=True) as mrc:
        n = int(mrc.header.nlabl)
        return [bytes(mrc.header.label[i]).decode().strip() for i in range(n)]


def test_cli_ensemble_subprocess(tmp_path):
    torch.manual_seed(0)
    model_path = models.save_model(models.build_model("unet-small"), tmp_path / "small.pt")
    img = np.random.default_rng(0).normal(100, 5, (70, 45)).astype(np.float32)
    src = write_mrc(tmp_path / "mic.mrc", img, voxel_size=2.0)
    outs = {}
    for flag in ([], ["--ensemble"]):
        out = tmp_path / ("ens" if flag else "plain")
        done = cryodenoise(
            "denoise", str(src), "-o", str(out), "-m", str(model_path), "--device", "cpu", *flag
        )
        assert done.returncode == 0, done.stderr
        outs[bool(flag)] = out / "mic.mrc"
    model = models.load_model(model_path)
    with mrcfile.open(outs[True]) as mrc:
        got = np.asarray(mrc.data)
    want = denoise(img, model, device="cpu", ensemble=True)
    np.testing.assert_allclose(got, want, atol=1e-4 * want.std())
    assert any(label.startswith("ensemble=8") for label in _labels(outs[True]))
    assert not any("ensemble" in label for label in _labels(outs[False]))


def test_cli_ensemble_volume_3d_model(tmp_path):
    torch.manual_seed(1)
    model_path = models.save_model(models.build_model("unet-3d"), tmp_path / "u3.pt")
    vol = np.random.default_rng(1).normal(0, 1, (12, 37, 30)).astype(np.float32)
    src = write_mrc(tmp_path / "vol.mrc", vol, voxel_size=4.0)
    code = main(
        ["denoise", str(src), "-o", str(tmp_path / "o"), "-m", str(model_path)]
        + ["--device", "cpu", "--volume", "--ensemble"]
    )
    assert code == 0
    with mrcfile.open(tmp_path / "o" / "vol.mrc") as mrc:
        got = np.asarray(mrc.data)
    want = denoise(vol, models.load_model(model_path), device="cpu", ensemble=True)
    assert got.shape == vol.shape
    np.testing.assert_allclose(got, want, atol=1e-4 * want.std())
    assert any(label.startswith("ensemble=8") for label in _labels(tmp_path / "o" / "vol.mrc"))
