"""The per-file pipeline called directly: denoise_file, plans, splitting, output names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_cryodenoise import models  # noqa: E402
from napari_cryodenoise.errors import InputError  # noqa: E402
from napari_cryodenoise.io import read_image, write_mrc  # noqa: E402
from napari_cryodenoise.options import FileOptions  # noqa: E402
from napari_cryodenoise.pipeline import (  # noqa: E402
    denoise_file,
    denoise_planes,
    output_path,
    plan_file,
    splittable_planes,
)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """A tiny 2D model (affine) and a small 3D network, in the native format."""
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    p2 = models.save_model(models.build_model("affine"), d / "affine.pt")
    p3 = models.save_model(models.build_model("unet-fast-3d"), d / "u3.pt")
    return p2, p3


def _rng():
    return np.random.default_rng(0)


def _write(path: Path, data: np.ndarray, **kw) -> Path:
    return write_mrc(path, np.asarray(data, np.float32), voxel_size=1.5, **kw)


def test_denoise_file_png(tmp_path, model_files):
    path = _write(tmp_path / "p.mrc", _rng().normal(size=(40, 30)).astype(np.float32))
    res = denoise_file(path, tmp_path / "p.png", str(model_files[0]), FileOptions(fmt="png"))
    assert res.status == "done", res.message
    from PIL import Image

    assert Image.open(tmp_path / "p.png").size == (30, 40)


def test_denoise_file_skips_a_complete_output_and_redoes_a_truncated_one(tmp_path, model_files):
    src = _write(tmp_path / "a.mrc", _rng().normal(size=(40, 30)))
    out = tmp_path / "o" / "a.mrc"
    first = denoise_file(src, out, str(model_files[0]), FileOptions(device="cpu"))
    assert first.status == "done" and first.shape == (40, 30)
    again = denoise_file(src, out, str(model_files[0]), FileOptions(skip_existing=True))
    assert again.status == "skipped"
    refused = denoise_file(src, out, str(model_files[0]), FileOptions())
    assert refused.status == "failed" and "--overwrite" in refused.message
    out.write_bytes(out.read_bytes()[:-64])  # truncated: not trusted
    redone = denoise_file(src, out, str(model_files[0]), FileOptions(skip_existing=True))
    assert redone.status == "done"


def test_plan_resolves_bin_and_refuses_2d_models_chosen_for_a_volume(tmp_path, model_files):
    src = write_mrc(tmp_path / "m.mrc", _rng().normal(size=(64, 64)).astype("f4"), voxel_size=0.6)
    plan = plan_file(src, str(model_files[0]), FileOptions(bin_factor="auto"))
    assert plan.engine_kw["bin_factor"] == 4.0 and "x4" in plan.note
    assert plan.output_voxel_size((16, 16))[1:] == pytest.approx((2.4, 2.4))
    with pytest.raises(InputError, match="at least 16 px"):
        plan_file(src, str(model_files[0]), FileOptions(bin_factor=8))
    vol = write_mrc(tmp_path / "v.rec", _rng().normal(size=(8, 24, 24)).astype("f4"))
    with pytest.raises(InputError, match="chosen model .* is 2D"):
        plan_file(vol, str(model_files[0]), FileOptions(explicit_model=True))
    stacked = plan_file(vol, str(model_files[0]), FileOptions(stack=True))
    assert stacked.per_slice


def test_planes_of_a_stack_equal_the_whole_file(tmp_path, model_files):
    stack = _rng().normal(size=(4, 32, 32)).astype(np.float32)
    src = write_mrc(tmp_path / "s.mrcs", stack, kind="stack")
    opts = FileOptions(device="cpu")
    assert splittable_planes(src, opts, str(model_files[0]))
    assert not splittable_planes(src, FileOptions(fmt="tiff"), str(model_files[0]))
    whole = tmp_path / "whole.mrcs"
    assert denoise_file(src, whole, str(model_files[0]), opts).status == "done"
    part = denoise_planes(src, tmp_path / "part.mrc", str(model_files[0]), opts, (1, 3))
    np.testing.assert_array_equal(read_image(part)[0], read_image(whole)[0][1:3])


def test_output_names():
    assert output_path(Path("x/a.mrc"), Path("o"), "tiff") == Path("o/a.tif")
    assert output_path(Path("x/a.mrcs"), Path("o"), "mrc") == Path("o/a.mrcs")
    assert output_path(Path("x/a.mrcs"), Path("o"), "png") == Path("o/a.png")
    assert output_path(Path("emd_1.map.gz"), Path("o"), "mrc") == Path("o/emd_1.mrc")
