"""``cryodenoise denoise`` end to end on small synthetic MRC files."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch
from subprocess_runs import cryodenoise

from napari_cryodenoise.cli import main
from napari_cryodenoise.options import FileOptions
from napari_cryodenoise.pipeline import denoise_file, expand_inputs
from napari_cryodenoise.pipeline import plan as pipeline_plan

models = pytest.importorskip("napari_cryodenoise.models")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """A tiny 2D model (affine, random weights) and a small 3D U-Net, in the native format."""
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    m2 = models.build_model("affine")
    p2 = models.save_model(m2, d / "affine.pt")
    m3 = models.build_model("unet-3d")
    p3 = models.save_model(m3, d / "unet3d.pt")
    return p2, p3


def _write(path, data, voxel=1.5, stack=False):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data))
        if data.ndim == 3:
            mrc.set_image_stack() if stack else mrc.set_volume()
        mrc.voxel_size = voxel
    return path


def _rng():
    return np.random.default_rng(0)


def test_micrographs_directory_star_and_summary(tmp_path, model_files, capsys):
    src = tmp_path / "in"
    src.mkdir()
    imgs = {}
    for name, shape in [("a", (64, 48)), ("b", (33, 70))]:
        imgs[name] = _rng().normal(100, 5, shape).astype(np.float32)
        _write(src / f"{name}.mrc", imgs[name], voxel=1.5)
    out = tmp_path / "out"
    code = main(
        ["denoise", str(src), "-o", str(out), "--model", str(model_files[0]), "--device", "cpu"]
    )
    assert code == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("denoised 2, skipped 0, failed 0")
    from napari_cryodenoise.engine import denoise

    model = models.load_model(model_files[0])
    for name, img in imgs.items():
        with mrcfile.open(out / f"{name}.mrc", permissive=True) as mrc:
            data = mrc.data.copy()
            assert mrc.header.mode == 2
            assert float(mrc.voxel_size.x) == pytest.approx(1.5)
            assert float(mrc.header.dmean) == pytest.approx(float(data.mean()), rel=1e-4)
            assert float(mrc.header.dmax) == pytest.approx(float(data.max()), rel=1e-5)
        np.testing.assert_allclose(data, denoise(img, model, device="cpu"), atol=1e-4)
    # skip existing / refuse to overwrite / overwrite
    assert (
        main(
            [
                "denoise",
                str(src / "a.mrc"),
                "-o",
                str(out),
                "--model",
                str(model_files[0]),
                "--skip-existing",
            ]
        )
        == 0
    )
    assert "skipped 1" in capsys.readouterr().out
    assert (
        main(["denoise", str(src / "a.mrc"), "-o", str(out), "--model", str(model_files[0])]) == 2
    )
    assert "already exist" in capsys.readouterr().err  # before any work, nothing written
    assert (
        main(
            [
                "denoise",
                str(src / "a.mrc"),
                "-o",
                str(out),
                "--model",
                str(model_files[0]),
                "--overwrite",
            ]
        )
        == 0
    )
    # a RELION star list and a glob pick the same files
    star = tmp_path / "mics.star"
    star.write_text("data_micrographs\nloop_\n_rlnMicrographName #1\nin/a.mrc\nin/b.mrc\n")
    assert expand_inputs([str(star)]) == expand_inputs([str(src / "*.mrc")])
    assert [p.name for p in expand_inputs([str(star)])] == ["a.mrc", "b.mrc"]


def test_binning_and_pixel_size(tmp_path, model_files):
    img = _rng().normal(0, 1, (64, 80)).astype(np.float32)
    path = _write(tmp_path / "m.mrc", img, voxel=1.0 + 0.25)
    out = tmp_path / "o"
    assert (
        main(
            [
                "denoise",
                str(path),
                "-o",
                str(out),
                "-m",
                str(model_files[0]),
                "--bin",
                "2",
                "-d",
                "-1",
            ]
        )
        == 0
    )
    with mrcfile.open(out / "m.mrc") as mrc:
        assert mrc.data.shape == (32, 40)
        assert float(mrc.voxel_size.x) == pytest.approx(2.5)
    assert (
        main(
            [
                "denoise",
                str(path),
                "-o",
                str(out),
                "-m",
                str(model_files[0]),
                "--pixel-size",
                "5",
                "--overwrite",
            ]
        )
        == 0
    )
    with mrcfile.open(out / "m.mrc") as mrc:
        assert mrc.data.shape == (16, 20)
        assert float(mrc.voxel_size.x) == pytest.approx(5.0)
    assert (
        main(
            [
                "denoise",
                str(path),
                "-o",
                str(out),
                "-m",
                str(model_files[0]),
                "--bin",
                "2",
                "--restore-size",
                "--overwrite",
                "--format",
                "tiff",
            ]
        )
        == 0
    )
    import tifffile

    assert tifffile.imread(out / "m.tif").shape == (64, 80)


def test_stack_and_volume(tmp_path, model_files, monkeypatch):
    rng = _rng()
    stack = rng.normal(5, 1, (3, 40, 36)).astype(np.float32)
    s_path = _write(tmp_path / "s.mrcs", stack, stack=True)
    vol = rng.normal(0, 1, (20, 24, 28)).astype(np.float32)
    v_path = _write(tmp_path / "v.rec", vol)
    out = tmp_path / "o"
    monkeypatch.setattr(pipeline_plan, "DEFAULT_3D", str(model_files[1]))
    # an explicit 2D model is never swapped for the default 3D one on a volume
    args = ["denoise", str(s_path), str(v_path), "-o", str(out), "--device", "cpu"]
    assert main([*args, "-m", str(model_files[0])]) == 1
    assert not (out / "v.mrc").exists()
    # 2D models for the stack, 3D models for the volume
    code = main([*args, "-m", str(model_files[0]), "-m", str(model_files[1]), "--overwrite"])
    assert code == 0
    from napari_cryodenoise.engine import denoise, denoise_stack

    with mrcfile.open(out / "s.mrcs") as mrc:
        np.testing.assert_allclose(
            mrc.data,
            denoise_stack(stack, models.load_model(model_files[0]), device="cpu"),
            atol=1e-4,
        )
    with mrcfile.open(out / "v.mrc") as mrc:
        assert mrc.data.shape == vol.shape
        want = denoise(vol, models.load_model(model_files[1]), device="cpu")
        np.testing.assert_allclose(mrc.data, want, atol=1e-4 * want.std())


def test_bad_inputs_exit_nonzero_with_one_line(tmp_path, model_files, capsys):
    good = _write(tmp_path / "good.mrc", _rng().normal(size=(32, 32)).astype(np.float32))
    nan = np.ones((32, 32), np.float32)
    nan[1, 1] = np.nan
    bad = _write(tmp_path / "nan.mrc", nan)
    trunc = tmp_path / "trunc.mrc"
    trunc.write_bytes(good.read_bytes()[:1500])
    out = tmp_path / "o"
    code = main(
        [
            "denoise",
            str(good),
            str(bad),
            str(trunc),
            str(tmp_path / "missing.mrc"),
            "-o",
            str(out),
            "-m",
            str(model_files[0]),
        ]
    )
    assert code == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(err) == 3
    assert any("NaN" in ln for ln in err) and any("truncated" in ln for ln in err)
    assert any("no such file" in ln for ln in err)
    assert (out / "good.mrc").exists() and not (out / "nan.mrc").exists()
    # writing onto the input is refused
    res = denoise_file(good, good, str(model_files[0]), FileOptions(overwrite=True))
    assert res.status == "failed" and "input" in res.message
    # usage errors: exit 2
    assert (
        main(
            [
                "denoise",
                str(tmp_path / "nothing*.mrc"),
                "-o",
                str(out),
                "-m",
                str(model_files[0]),
                "--device",
                "tpu",
            ]
        )
        == 2
    )


def _with_start(path, data, start=(3, -20, 10), origin=(7.5, -12.0, 30.0), stack=False):
    """An MRC (mrcfile) with nonzero (nzstart, nystart, nxstart) and origin (z, y, x)."""
    _write(path, data, voxel=1.25, stack=stack)
    with mrcfile.open(path, mode="r+") as mrc:
        mrc.header.nzstart, mrc.header.nystart, mrc.header.nxstart = start
        mrc.header.origin.z, mrc.header.origin.y, mrc.header.origin.x = origin
    return path


def _start_and_origin(path):
    with mrcfile.open(path, permissive=True, header_only=True) as mrc:
        h = mrc.header
        start = (int(h.nzstart), int(h.nystart), int(h.nxstart))
        return start, (float(h.origin.z), float(h.origin.y), float(h.origin.x))


def test_cli_output_keeps_the_input_start_and_origin(tmp_path, model_files):
    """nxstart/nystart/nzstart and the origin of an input reach the denoised MRC (run as a
    user does, in a subprocess); binning scales the start when it stays on the grid, and
    drops it with a note on the file's line when it would fall between output pixels."""
    rng = _rng()
    mic = _with_start(tmp_path / "mic.mrc", rng.normal(0, 1, (64, 80)).astype(np.float32))
    stack = rng.normal(0, 1, (3, 40, 36)).astype(np.float32)
    stk = _with_start(tmp_path / "stk.mrcs", stack, stack=True)
    model = ["-m", str(model_files[0]), "-d", "cpu"]
    run = cryodenoise("denoise", str(mic), str(stk), "-o", str(tmp_path / "same"), *model)
    assert run.returncode == 0, run.stderr
    for name in ("mic.mrc", "stk.mrcs"):
        assert _start_and_origin(tmp_path / "same" / name) == ((3, -20, 10), (7.5, -12.0, 30.0))
    run = cryodenoise("denoise", str(mic), "-o", str(tmp_path / "bin2"), "--bin", "2", *model)
    assert run.returncode == 0, run.stderr
    assert _start_and_origin(tmp_path / "bin2/mic.mrc") == ((3, -10, 5), (7.5, -12.0, 30.0))
    run = cryodenoise("denoise", str(mic), "-o", str(tmp_path / "bin4"), "--bin", "4", *model)
    assert run.returncode == 0, run.stderr
    assert _start_and_origin(tmp_path / "bin4/mic.mrc") == ((0, 0, 0), (7.5, -12.0, 30.0))
    note = "header start (nxstart, nystart, nzstart) = (10, -20, 3) not carried: on the 16x20"
    assert note in run.stderr
    args = ["--bin", "4", "--restore-size"]
    run = cryodenoise("denoise", str(mic), "-o", str(tmp_path / "restored"), *args, *model)
    assert run.returncode == 0, run.stderr
    assert _start_and_origin(tmp_path / "restored/mic.mrc") == ((3, -20, 10), (7.5, -12.0, 30.0))
