"""``cryodenoise denoise`` / ``evaluate`` as users run them: subprocesses, real arguments."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from subprocess_runs import cryodenoise, error_line

from napari_cryodenoise.io import read_image, write_mrc

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


def _mics(folder, n=3):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        write_mrc(
            folder / f"mic{i}.mrc",
            rng.normal(size=(64, 80)).astype(np.float32),
            voxel_size=(1.5, 1.5, 1.5),
        )


def test_cluster_with_bad_files_finishes_the_others_and_does_not_retry_input_errors(
    tmp_path, affine
):
    _mics(tmp_path / "in")
    nan = np.random.default_rng(2).normal(size=(64, 64)).astype(np.float32)
    nan[5, 5] = np.nan
    write_mrc(tmp_path / "in" / "nan.mrc", nan)
    (tmp_path / "in" / "bad.mrc").write_bytes(b"not an mrc")
    proc = cryodenoise(
        "denoise",
        "in",
        "-o",
        "out",
        "-m",
        affine,
        "-d",
        "cpu",
        "--cluster",
        "local:2",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    # a NaN pixel stays a NaN pixel: reported once, not retried
    assert "retrying" not in proc.stderr, proc.stderr
    # the same line as without --cluster, no Python class name
    assert "InputError" not in proc.stdout + proc.stderr
    assert "FAILED in/bad.mrc: in/bad.mrc: file is only" in proc.stdout
    assert "3 done" in proc.stdout and "2 failed" in proc.stdout
    star = (tmp_path / "out" / "denoised_micrographs.star").read_text()
    assert all(f"out/mic{i}.mrc" in star for i in range(3))
    assert "nan" not in star and "bad" not in star
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "denoised_micrographs.star",
        "mic0.mrc",
        "mic1.mrc",
        "mic2.mrc",
    ]


def _interrupt_when(proc, ready, timeout=120):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) once ``ready()``."""
    import os
    import signal
    import time

    end = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    os.killpg(proc.pid, signal.SIGINT)
    return proc.communicate(timeout=120)


def test_ctrl_c_with_local_cluster_is_one_line_and_leaves_no_partial_file(tmp_path, affine):
    import os
    import subprocess
    import sys

    from subprocess_runs import SRC

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(40):
        write_mrc(folder / f"m{i:02d}.mrc", rng.normal(size=(768, 768)).astype(np.float32))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": SRC}
    args = ["denoise", "in", "-o", "out", "-m", affine, "-d", "cpu", "--cluster", "local:2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_cryodenoise", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _, err = _interrupt_when(proc, lambda: out.is_dir() and len(list(out.glob("m*.mrc"))) >= 2)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("denoise [")]
    assert lines == ["cryodenoise denoise: interrupted"], err
    assert not [p.name for p in out.iterdir() if "partial" in p.name]


@pytest.mark.parametrize(
    ("noisy", "truth", "args", "words"),
    [
        ((6, 6), (6, 6), ("noisy.mrc", "--clean", "truth.mrc"), ("noisy.mrc", "too small")),
        ((64, 64), None, ("noisy.mrc", "--clean", "truth.mrc"), ("truth.mrc", "constant")),
        ((64, 64), None, ("--even", "noisy.mrc", "--odd", "truth.mrc"), ("truth.mrc", "constant")),
    ],
)
def test_evaluate_unscorable_images_name_the_file_before_any_method_runs(
    tmp_path, affine, noisy, truth, args, words
):
    rng = np.random.default_rng(4)
    write_mrc(tmp_path / "noisy.mrc", rng.normal(size=noisy).astype(np.float32))
    constant = np.ones(noisy, np.float32)
    write_mrc(tmp_path / "truth.mrc", constant if truth is None else rng.normal(size=truth))
    proc = cryodenoise("evaluate", *args, "-m", f"raw,{affine}", "-d", "cpu", cwd=tmp_path)
    error_line(proc, *words, code=2)
    assert "..." not in proc.stdout + proc.stderr  # no method was run


def test_a_colour_tiff_is_warned_about_once(tmp_path, affine):
    rgb = np.random.default_rng(5).integers(0, 255, size=(64, 64, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    write_mrc(tmp_path / "mic.mrc", rgb[..., 0].astype(np.float32), voxel_size=(1.5, 1.5, 1.5))
    args = ("rgb.tif", "mic.mrc", "-o", "out", "-m", affine, "-d", "cpu")
    proc = cryodenoise("denoise", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("colour (RGB) TIFF") == 1, proc.stderr
    assert (tmp_path / "out" / "denoised_micrographs.star").is_file()


def test_cluster_with_a_2d_and_a_3d_model_names_the_options(tmp_path, affine):
    three_d = models.save_model(models.build_model("unet-3d"), tmp_path / "u3.pt")
    _mics(tmp_path / "in", 1)
    args = ("in", "-o", "out", "-m", affine, "-m", str(three_d), "--cluster", "local:1")
    proc = cryodenoise("denoise", *args, cwd=tmp_path)
    error_line(proc, "-m", "--cluster", "2D", "3D", code=2)
    assert not (tmp_path / "out").exists()


def test_out_star_that_is_not_a_star_file_is_refused_before_it_replaces_a_micrograph(
    tmp_path, affine
):
    _mics(tmp_path / "in", 2)
    before = (tmp_path / "in" / "mic1.mrc").read_bytes()
    args = ("in/mic0.mrc", "-o", "out", "--out-star", "in/mic1.mrc", "-m", affine, "-d", "cpu")
    proc = cryodenoise("denoise", *args, cwd=tmp_path)
    error_line(proc, "--out-star in/mic1.mrc", ".star", code=2)
    assert (tmp_path / "in" / "mic1.mrc").read_bytes() == before
    assert not (tmp_path / "out").exists()
