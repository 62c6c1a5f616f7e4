"""The command line never destroys an input and never shows a traceback.

Every case runs ``cryodenoise`` as a user does (a subprocess with real arguments) unless it
needs to simulate a failure (a full disk) in-process. Each refusal asserts: a non-zero
exit, exactly one line on stderr naming the file or option, no traceback, the inputs'
bytes unchanged and no file left behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from subprocess_runs import error_line

import napari_cryodenoise
from napari_cryodenoise.io import write_mrc

SRC = str(Path(napari_cryodenoise.__file__).resolve().parents[1])
WAYS = ("direct", "symlink", "hardlink", "dotdot")


def cli(*args: str | os.PathLike, cwd: Path, env: dict | None = None, timeout: float = 300):
    """Run ``python -m napari_cryodenoise ARGS``; return the completed process."""
    full_env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    full_env.pop("CRYODENOISE_DEBUG", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "napari_cryodenoise", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 (or link target) of everything under ``folder``."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def _image(path: Path, shape=(64, 64), seed=0) -> Path:
    write_mrc(path, np.random.default_rng(seed).normal(10, 2, shape).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A tiny 2D model (affine, random weights) in the native format."""
    from napari_cryodenoise.models import build_model, save_model

    return save_model(build_model("affine"), tmp_path_factory.mktemp("m") / "affine.pt")


@pytest.fixture
def ws(tmp_path, model_file) -> Path:
    """A work folder with images, a TIFF, a model and an initial model."""
    import shutil

    import tifffile

    _image(tmp_path / "in.mrc")
    tifffile.imwrite(tmp_path / "in.tif", np.zeros((32, 32), np.float32))
    shutil.copy(model_file, tmp_path / "model.pt")
    shutil.copy(model_file, tmp_path / "init.pt")
    (tmp_path / "sub").mkdir()
    return tmp_path


def alias(ws: Path, target: str, way: str) -> str:
    """Another name of the file ``ws/target``: itself, a symlink, a hard link or ``sub/..``."""
    if way == "direct":
        return target
    if way == "symlink":
        (ws / f"ln_{target}").symlink_to(ws / target)
        return f"ln_{target}"
    if way == "hardlink":
        os.link(ws / target, ws / f"hl_{target}")
        return f"hl_{target}"
    return f"sub/../{target}"


def folder_alias(ws: Path, way: str) -> str:
    """An output folder in which ``in.mrc`` is the input ``ws/in.mrc`` (by ``way``)."""
    if way == "direct":
        return "."
    if way == "symlink":
        (ws / "lndir").symlink_to(ws)
        return "lndir"
    if way == "hardlink":
        (ws / "hl").mkdir()
        os.link(ws / "in.mrc", ws / "hl" / "in.mrc")
        return "hl"
    return "sub/.."


# every output option of every command, pointed at one of the run's inputs
GUARD_CASES = {
    "denoise --out-star": (
        ["denoise", "in.mrc", "-o", "res", "-m", "model.pt", "--out-star"],
        "in.mrc",
    ),
    "denoise --out-star model": (
        ["denoise", "in.mrc", "-o", "res", "-m", "model.pt", "--out-star"],
        "model.pt",
    ),
    "evaluate --csv": (
        ["evaluate", "in.mrc", "--clean", "in.mrc", "-m", "raw", "--csv"],
        "in.mrc",
    ),
    "evaluate --plot": (
        ["evaluate", "in.tif", "--clean", "in.mrc", "-m", "raw", "--csv", "r.csv", "--plot"],
        "in.tif",
    ),
    "train -o": (["train", "--single", "in.mrc", "--steps", "1", "-o"], "in.mrc"),
    "train -o init": (["train", "--single", "in.mrc", "--init", "init.pt", "-o"], "init.pt"),
    "train --checkpoint": (
        ["train", "--single", "in.mrc", "-o", "m.pt", "--checkpoint"],
        "in.mrc",
    ),
    "train --checkpoint init": (
        ["train", "--single", "in.mrc", "--init", "init.pt", "-o", "m.pt", "--checkpoint"],
        "init.pt",
    ),
    "train --export-topaz init": (
        ["train", "--single", "in.mrc", "--init", "init.pt", "-o", "m.pt", "--export-topaz"],
        "init.pt",
    ),
}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("case", sorted(GUARD_CASES))
def test_output_option_pointed_at_an_input_is_refused(ws, case, way):
    args, target = GUARD_CASES[case]
    path = alias(ws, target, way)
    before = snapshot(ws)
    proc = cli(*args, path, cwd=ws)
    error_line(proc, "would overwrite the input", target)
    assert proc.returncode == 2
    assert snapshot(ws) == before


@pytest.mark.parametrize("way", WAYS)
def test_denoise_output_folder_holding_the_input_is_refused(ws, way):
    out = folder_alias(ws, way)
    before = snapshot(ws)
    proc = cli("denoise", "in.mrc", "-o", out, "-m", "model.pt", cwd=ws)
    error_line(proc, "-o", "would overwrite the input")
    assert snapshot(ws) == before


@pytest.mark.parametrize("way", WAYS)
def test_default_out_star_never_overwrites_an_input_list(ws, way):
    (ws / "res").mkdir()
    (ws / "list.star").write_text("data_\nloop_\n_rlnMicrographName #1\nin.mrc\n")
    default = ws / "res" / "denoised_micrographs.star"
    if way == "direct":
        (ws / "list.star").rename(default)
        given = "res/denoised_micrographs.star"
    elif way == "symlink":
        default.symlink_to(ws / "list.star")
        given = "list.star"
    elif way == "hardlink":
        os.link(ws / "list.star", default)
        given = "list.star"
    else:
        (ws / "list.star").rename(default)
        given = "res/../res/denoised_micrographs.star"
    before = snapshot(ws)
    proc = cli("denoise", given, "-o", "res", "-m", "model.pt", cwd=ws)
    error_line(proc, "--out-star", "would overwrite the input")
    assert snapshot(ws) == before


def test_two_inputs_writing_one_output_are_refused(ws):
    import shutil

    shutil.copy(ws / "in.mrc", ws / "sub" / "in.mrc")
    before = snapshot(ws)
    proc = cli("denoise", "in.mrc", "sub/in.mrc", "-o", "res", "-m", "model.pt", cwd=ws)
    # the line tells the two inputs apart (both are "in.mrc")
    error_line(proc, "is also the output of", "(output of in.mrc)", "(output of sub/in.mrc)")
    assert snapshot(ws) == before


def test_folders_and_symlink_loops_are_one_line(ws):
    (ws / "loop").symlink_to(ws / "loop")
    (ws / "res").mkdir()
    before = snapshot(ws)
    for args, words in (
        (["denoise", "loop", "-o", "res", "-m", "model.pt"], ["loop", "symlink loop"]),
        (["denoise", "in.mrc", "-o", "loop", "-m", "model.pt"], ["loop", "symlink loop"]),
        (["denoise", "in.mrc", "-o", "in.tif", "-m", "model.pt"], ["in.tif", "not a folder"]),
        (["denoise", "in.mrc", "-o", "res", "--out-star", "res"], ["--out-star", "folder"]),
        (["denoise", "in.mrc", "-o", "res", "--out-star", "loop"], ["symlink loop"]),
        (["train", "--single", "in.mrc", "-o", "loop"], ["-o loop", "symlink loop"]),
        (["train", "--single", "in.mrc", "-o", "res"], ["-o res", "folder"]),
        (["evaluate", "in.mrc", "--clean", "in.mrc", "-m", "raw", "--csv", "res"], ["folder"]),
        (["evaluate", "in.mrc", "--clean", "in.mrc", "-m", "raw", "--csv", "loop"], ["loop"]),
        (["simulate", "in.mrc", "--size", "32", "--frames", "2"], ["not a folder"]),
    ):
        error_line(cli(*args, cwd=ws), *words)
        assert snapshot(ws) == before, args


def test_evaluate_plot_format_is_checked_before_any_work(ws):
    before = snapshot(ws)
    proc = cli(
        "evaluate",
        "in.mrc",
        "--clean",
        "in.mrc",
        "-m",
        "raw",
        "--csv",
        "r.csv",
        "--plot",
        "x.mrc",
        cwd=ws,
    )
    error_line(proc, "--plot x.mrc", ".png")
    assert snapshot(ws) == before  # not even the CSV


OUT_OF_RANGE = [
    (["denoise", "in.mrc", "-o", "res", "--gaussian", "nan"], "--gaussian"),
    (["denoise", "in.mrc", "-o", "res", "--gaussian", "inf"], "--gaussian"),
    (["denoise", "in.mrc", "-o", "res", "--gaussian", "1e6"], "--gaussian"),
    (["denoise", "in.mrc", "-o", "res", "--gaussian", "-1"], "--gaussian"),
    (["denoise", "in.mrc", "-o", "res", "--lowpass", "-1"], "--lowpass"),
    (["denoise", "in.mrc", "-o", "res", "--lowpass", "0"], "--lowpass"),
    (["denoise", "in.mrc", "-o", "res", "--lowpass", "nan"], "--lowpass"),
    (["denoise", "in.mrc", "-o", "res", "--bin", "1e9"], "--bin"),
    (["denoise", "in.mrc", "-o", "res", "--bin", "0"], "--bin"),
    (["denoise", "in.mrc", "-o", "res", "--pixel-size", "nan"], "--pixel-size"),
    (["denoise", "in.mrc", "-o", "res", "--patch-size", "0"], "--patch-size"),
    (["denoise", "in.mrc", "-o", "res", "--patch-size", "1e9"], "--patch-size"),
    (["denoise", "in.mrc", "-o", "res", "--padding", "-1"], "--padding"),
    (["denoise", "in.mrc", "-o", "res", "--retries", "-1"], "--retries"),
    (["evaluate", "in.mrc", "--clean", "in.mrc", "-m", "gaussian:1e6"], "gaussian:1e6"),
    (["evaluate", "in.mrc", "--clean", "in.mrc", "-m", "lowpass:nan"], "lowpass:nan"),
    (["evaluate", "in.mrc", "--picks", "p.star", "--radius", "nan"], "--radius"),
    (["evaluate", "--even", "in.mrc", "--odd", "in.mrc", "--pixel-size", "inf"], "--pixel-size"),
    (["train", "--single", "in.mrc", "-o", "m.pt", "--lr", "nan"], "--lr"),
    (["simulate", "sim", "--size", "4"], "--size"),
    (["simulate", "sim", "--dose", "inf"], "--dose"),
]


@pytest.mark.parametrize(("args", "option"), OUT_OF_RANGE, ids=lambda v: str(v))
def test_options_out_of_range_are_refused_at_once(ws, args, option):
    before = snapshot(ws)
    line = error_line(cli(*args, cwd=ws), option)
    assert "memory" not in line and "convert" not in line
    assert snapshot(ws) == before


def test_bin_too_far_for_the_image_fails_before_writing(ws):
    proc = cli("denoise", "in.mrc", "-o", "res", "-m", "model.pt", "--bin", "100", cwd=ws)
    error_line(proc, "in.mrc", "--bin 100", "16 px")
    assert not (ws / "res").exists() or not any((ws / "res").iterdir())


def test_explicit_2d_model_on_a_volume_is_an_error_not_a_swap(ws):
    write_mrc(ws / "v.rec", np.random.default_rng(1).normal(size=(12, 32, 32)).astype(np.float32))
    proc = cli("denoise", "v.rec", "-o", "res", "-m", "model.pt", cwd=ws)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "v.rec is a volume" in proc.stderr and "--stack" in proc.stderr
    assert not (ws / "res" / "v.mrc").exists()
    proc = cli("denoise", "v.rec", "-o", "res", "-m", "model.pt", "--stack", cwd=ws)
    assert proc.returncode == 0, proc.stderr
    assert (ws / "res" / "v.mrc").is_file()


def test_default_model_on_a_volume_says_it_uses_the_3d_default(tmp_path, capsys, monkeypatch):
    from napari_cryodenoise.cli import denoise as cli_denoise
    from napari_cryodenoise.cli import main
    from napari_cryodenoise.models import build_model, save_model
    from napari_cryodenoise.pipeline import plan as pipeline_plan

    m2 = save_model(build_model("affine"), tmp_path / "a.pt")
    m3 = save_model(build_model("unet-fast-3d"), tmp_path / "u3.pt")
    monkeypatch.setattr(cli_denoise, "DEFAULT_2D", str(m2))
    monkeypatch.setattr(pipeline_plan, "DEFAULT_3D", str(m3))
    write_mrc(tmp_path / "v.rec", np.random.default_rng(1).normal(size=(8, 24, 24)).astype("f4"))
    assert main(["denoise", str(tmp_path / "v.rec"), "-o", str(tmp_path / "o"), "-d", "cpu"]) == 0
    assert "default 3D model" in capsys.readouterr().err


def _topaz_pickle(path: Path, monkeypatch) -> Path:
    """A whole-module pickle like the ones `topaz denoise` training writes."""
    import torch
    from torch import nn

    from napari_cryodenoise.models import build_model

    mod = types.ModuleType("topaz.denoise")
    cls = type("AffineDenoise", (nn.Module,), {"__module__": "topaz.denoise"})
    mod.AffineDenoise = cls
    monkeypatch.setitem(sys.modules, "topaz", types.ModuleType("topaz"))
    monkeypatch.setitem(sys.modules, "topaz.denoise", mod)
    fake = cls()
    for name, child in build_model("affine").named_children():
        fake.add_module(name, child)
    torch.save(fake, path)
    monkeypatch.delitem(sys.modules, "topaz.denoise")
    monkeypatch.delitem(sys.modules, "topaz")
    return path


def test_allow_pickle_is_accepted_where_models_are_opened(ws, monkeypatch):
    _topaz_pickle(ws / "old.sav", monkeypatch)
    env = {"NAPARI_CRYODENOISE_ALLOW_PICKLE": ""}
    proc = cli("denoise", "in.mrc", "-o", "res", "-m", "old.sav", "-d", "cpu", cwd=ws, env=env)
    assert proc.returncode != 0 and "--allow-pickle" in proc.stderr
    assert "Traceback" not in proc.stderr and not (ws / "res" / "in.mrc").exists()
    args = ("denoise", "in.mrc", "-o", "res", "-m", "old.sav", "-d", "cpu", "--allow-pickle")
    proc = cli(*args, cwd=ws, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (ws / "res" / "in.mrc").is_file()
    args = ("evaluate", "in.mrc", "--clean", "in.mrc", "-m", "old.sav", "-d", "cpu")
    assert cli(*args, cwd=ws, env=env).returncode != 0
    proc = cli(*args, "--allow-pickle", cwd=ws, env=env)
    assert proc.returncode == 0, proc.stderr
    assert cli("models", "--allow-pickle", "--path", cwd=ws, env=env).returncode == 0
    args = ("train", "--single", "in.mrc", "--init", "old.sav", "-o", "ft.pt", "--steps", "1")
    tiny = ("--crop", "32", "--batch-size", "1", "--val-fraction", "0", "-d", "cpu", "--quiet")
    proc = cli(*args, *tiny, cwd=ws, env=env)
    assert proc.returncode != 0 and "--allow-pickle" in proc.stderr
    proc = cli(*args, *tiny, "--allow-pickle", cwd=ws, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (ws / "ft.pt").is_file()


def test_rerun_after_an_interruption(ws):
    """No flags: refuse at once, write nothing; --skip-existing: redo incomplete, full STAR."""
    _image(ws / "b.mrc", seed=2)
    _image(ws / "c.mrc", seed=3)
    base = ("denoise", "in.mrc", "b.mrc", "c.mrc", "-o", "res", "-m", "model.pt", "-d", "cpu")
    # an "interrupted" run: in.mrc done, b.mrc truncated, c.mrc never started, a stale temp file
    assert cli(*base[:2], *base[4:], cwd=ws).returncode == 0
    assert cli(*base[:3], *base[4:], "--overwrite", cwd=ws).returncode == 0
    (ws / "res" / "denoised_micrographs.star").unlink()
    good_in = (ws / "res" / "in.mrc").read_bytes()
    (ws / "res" / "b.mrc").write_bytes((ws / "res" / "b.mrc").read_bytes()[:2000])
    stale = ws / "res" / ".c.mrc.999-abcdef.partial.mrc"
    stale.write_bytes(b"half")
    before = snapshot(ws)
    line = error_line(cli(*base, cwd=ws), "already exist", "--skip-existing", "res/in.mrc")
    assert "2 of 3" in line
    assert snapshot(ws) == before
    proc = cli(*base, "--skip-existing", cwd=ws)
    assert proc.returncode == 0, proc.stderr
    assert "denoised 2, skipped 1" in proc.stdout
    assert (ws / "res" / "in.mrc").read_bytes() == good_in
    assert not stale.exists()
    from napari_cryodenoise.io import read_star_micrographs
    from napari_cryodenoise.io.completeness import output_is_complete

    assert all(output_is_complete(ws / "res" / f"{n}.mrc") for n in ("in", "b", "c"))
    listed = read_star_micrographs(ws / "res" / "denoised_micrographs.star")
    assert sorted(Path(p).name for p in listed) == ["b.mrc", "c.mrc", "in.mrc"]
    assert not [p for p in (ws / "res").iterdir() if ".partial" in p.name]


def test_train_on_nan_pixels_names_the_file(ws):
    nan = np.ones((64, 64), np.float32)
    nan[5, 5] = np.nan
    write_mrc(ws / "nan.mrc", nan)
    args = ("train", "--single", "nan.mrc", "-o", "m.pt", "--arch", "affine", "--quiet")
    proc = cli(*args, "-d", "cpu", cwd=ws)
    error_line(proc, "nan.mrc", "NaN")
    assert not (ws / "m.pt").exists()


def test_full_disk_while_training_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    from napari_cryodenoise.cli import main

    _image(tmp_path / "in.mrc")
    real_replace = os.replace

    def full(src, dst, *a, **k):
        if str(dst).endswith(".pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", full)
    args = ["train", "--single", str(tmp_path / "in.mrc"), "-o", str(tmp_path / "m.pt")]
    args += ["--arch", "affine", "--steps", "1", "--crop", "32", "--val-fraction", "0"]
    assert main([*args, "-d", "cpu", "--quiet"]) != 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "no space left" in err[0], err
    assert "m.pt" in err[0] or "m.ckpt.pt" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mrc"]


def test_full_disk_while_denoising_names_the_file(tmp_path, capsys, monkeypatch, model_file):
    from napari_cryodenoise.cli import main

    _image(tmp_path / "in.mrc")
    real_replace = os.replace

    def full(src, dst, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    monkeypatch.setattr(os, "replace", full)
    out = tmp_path / "res"
    assert main(["denoise", str(tmp_path / "in.mrc"), "-o", str(out), "-m", str(model_file)]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "no space left" in err[0] and str(out / "in.mrc") in err[0], err
    monkeypatch.setattr(os, "replace", real_replace)
    assert not out.exists() or not list(out.iterdir())


def test_unexpected_errors_are_one_line_internal_errors(tmp_path, capsys, monkeypatch):
    from napari_cryodenoise.cli import denoise as cli_denoise
    from napari_cryodenoise.cli import main

    def boom(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli_denoise, "expand_inputs", boom)
    monkeypatch.delenv("CRYODENOISE_DEBUG", raising=False)
    assert main(["denoise", "x.mrc", "-o", str(tmp_path / "o")]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1
    assert "internal error: RuntimeError: boom" in err[0] and "CRYODENOISE_DEBUG=1" in err[0]
    monkeypatch.setenv("CRYODENOISE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["denoise", "x.mrc", "-o", str(tmp_path / "o")])


def test_folder_of_compressed_maps_is_denoised_with_plain_names(tmp_path):
    import gzip

    import mrcfile

    from napari_cryodenoise.pipeline import expand_inputs, output_path

    src = tmp_path / "maps"
    src.mkdir()
    plain = tmp_path / "emd_1.map"
    with mrcfile.new(plain) as m:
        m.set_data(np.zeros((8, 8, 8), np.float32))
    (src / "emd_1.map.gz").write_bytes(gzip.compress(plain.read_bytes()))
    (src / "notes.txt").write_text("x")
    found = expand_inputs([str(src)])
    assert [p.name for p in found] == ["emd_1.map.gz"]
    assert output_path(found[0], tmp_path / "o", "mrc").name == "emd_1.mrc"
    assert output_path(Path("a.mrcs.bz2"), tmp_path, "mrc").name == "a.mrcs"
