"""The one pixel-size -> bin rule, and ``cryodenoise denoise --bin auto`` as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from napari_cryodenoise.binning import (
    AUTO,
    auto_bin,
    auto_bin_text,
    bin_to_pixel_size,
    resolve_bin,
)
from napari_cryodenoise.errors import InputError

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.mark.parametrize(
    ("pixel", "factor"),
    [
        (0.67, 4),  # 2.68 A/px: the EPU micrograph
        (0.5, 5),
        (0.73, 3),
        (0.854, 3),  # fei-extended.mrc -> 2.56 A/px
        (1.0, 2),
        (1.2, 2),
        (1.5, 2),
        (1.7, 1),
        (2.0, 1),
        (3.5, 1),
        (10.52, 1),
        (None, 1),
        (0.0, 1),
        (float("nan"), 1),
    ],
)
def test_auto_bin(pixel, factor):
    assert auto_bin(pixel) == factor
    if pixel and pixel < 1.7:
        assert 2.0 <= pixel * factor <= 3.0  # in the general models' trained range


def test_auto_bin_text_and_resolve():
    assert auto_bin_text(0.67) == "auto (x4 -> 2.68 A/px)"
    assert auto_bin_text(None) == "auto (x1: no pixel size)"
    assert resolve_bin(AUTO, 0.67) == 4.0
    assert resolve_bin("AUTO", None) == 1.0
    assert resolve_bin(3, 0.67) == 3.0
    assert resolve_bin(None) == 1.0
    assert resolve_bin(1, 1.25, 5.0) == pytest.approx(4.0)  # a target pixel size wins
    assert bin_to_pixel_size(2.0, 2.0) == 1.0
    with pytest.raises(InputError, match="finer than"):
        bin_to_pixel_size(2.0, 1.0)
    with pytest.raises(InputError, match="needs the input's pixel size"):
        bin_to_pixel_size(None, 4.0)
    with pytest.raises(InputError, match="number or 'auto'"):
        resolve_bin("fast", 1.0)


def _mrc(path, voxel):
    img = np.random.default_rng(0).normal(0, 1, (96, 80)).astype(np.float32)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(img)
        mrc.voxel_size = voxel
    return path


@pytest.fixture(scope="module")
def affine(tmp_path_factory):
    from napari_cryodenoise import models

    return models.save_model(
        models.build_model("affine"), tmp_path_factory.mktemp("m") / "affine.pt"
    )


def _cli(*args):
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    return subprocess.run(
        [sys.executable, "-m", "napari_cryodenoise", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_bin_auto(tmp_path, affine):
    fine = _mrc(tmp_path / "fine.mrc", 0.67)
    coarse = _mrc(tmp_path / "coarse.mrc", 2.5)
    unknown = _mrc(tmp_path / "unknown.mrc", 1.0)  # 1.0 is a header placeholder
    out = tmp_path / "out"
    res = _cli(
        "denoise", fine, coarse, unknown, "-o", out, "-m", affine, "-d", "cpu", "--bin", "auto"
    )
    assert res.returncode == 0, res.stderr
    assert "fine.mrc -> " in res.stderr and "bin auto (x4 -> 2.68 A/px)" in res.stderr
    assert "bin auto (x1 -> 2.50 A/px)" in res.stderr
    assert "bin auto (x1: no pixel size)" in res.stderr
    with mrcfile.open(out / "fine.mrc") as mrc:
        assert mrc.data.shape == (24, 20)
        assert float(mrc.voxel_size.x) == pytest.approx(2.68, abs=1e-3)
        # a 2D header's z spacing follows x (it stayed 0.67)
        assert float(mrc.voxel_size.z) == pytest.approx(2.68, abs=1e-3)
    with mrcfile.open(out / "coarse.mrc") as mrc:
        assert mrc.data.shape == (96, 80)
    with mrcfile.open(out / "unknown.mrc") as mrc:
        assert mrc.data.shape == (96, 80)
    # the default stays "no binning"; a bad value is one argparse line
    res = _cli("denoise", fine, "-o", tmp_path / "o2", "-m", affine, "-d", "cpu")
    assert res.returncode == 0, res.stderr
    with mrcfile.open(tmp_path / "o2" / "fine.mrc") as mrc:
        assert mrc.data.shape == (96, 80)
    res = _cli("denoise", fine, "-o", tmp_path / "o3", "--bin", "fast")
    assert res.returncode == 2 and "must be a number from 1 to 1000 or 'auto'" in res.stderr
    assert "Traceback" not in res.stderr


def test_binned_micrograph_z_spacing_is_its_x_spacing(tmp_path, affine):
    """A 2D header's z spacing can be anything (here 1.0 beside 0.67 A/px x and y)."""
    mic = _mrc(tmp_path / "odd_z.mrc", (0.67, 0.67, 1.0))
    res = _cli("denoise", mic, "-o", tmp_path / "out", "-m", affine, "-d", "cpu", "--bin", "4")
    assert res.returncode == 0, res.stderr
    with mrcfile.open(tmp_path / "out" / "odd_z.mrc") as mrc:
        size = mrc.voxel_size
        assert (float(size.x), float(size.y), float(size.z)) == pytest.approx((2.68,) * 3)
