"""``cryodenoise watch`` on the paths a session at the microscope walks (as subprocesses).

Restarts with other options, files replaced after they were taken, movies landing in
the folder, outputs that resolve to inputs, leftovers of a killed run. The model is a
tiny saved affine network (offline, fast); images are 128 px.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from subprocess_runs import SRC, cryodenoise

from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.models import build_model, save_model

SHAPE = (128, 128)
FAST = ("--settle", "0.5", "--poll", "0.3")


@pytest.fixture(scope="module")
def affine(tmp_path_factory) -> str:
    return str(save_model(build_model("affine"), tmp_path_factory.mktemp("m") / "affine.pt"))


def _image(seed: int, offset: float = 5.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=SHAPE) + offset).astype(np.float32)


def _micrographs(folder: Path, n: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = write_mrc(folder / f"mic_{i}.mrc", _image(i), voxel_size=1.5)
        old = time.time() - 60 + i
        os.utime(path, (old, old))
        paths.append(path)
    return paths


def _watch(indir: Path, outdir: Path, affine: str, *extra: str, idle: str = "1"):
    return cryodenoise(
        "watch", str(indir), "-o", str(outdir), "-m", affine, *FAST,
        "--stop-after-idle", idle, *extra, timeout=120,
    )  # fmt: skip


def _data(path: Path) -> np.ndarray:
    with mrcfile.open(path) as m:
        return np.array(m.data)


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "napari_cryodenoise", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_overwrite_redoes_outputs_an_earlier_run_kept(tmp_path, affine):
    """Outputs kept by a run (made with other options, or not by a watch) are redone by
    the next run with --overwrite (was: kept for ever once a run had recorded them)."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    mics = _micrographs(indir)
    assert _watch(indir, outdir, affine).returncode == 0
    plain = _data(outdir / "mic_0.mrc")
    changed = _watch(indir, outdir, affine, "--lowpass", "2")
    assert changed.returncode == 0, changed.stderr
    assert "other options" in changed.stderr and "kept 2 earlier" in changed.stdout
    # the user stops, then runs the same command with --overwrite: the outputs are redone
    redo = _watch(indir, outdir, affine, "--lowpass", "2", "--overwrite")
    assert redo.returncode == 0, redo.stderr
    assert "denoised 2" in redo.stdout, redo.stdout
    assert not np.array_equal(_data(outdir / "mic_0.mrc"), plain)
    again = _watch(indir, outdir, affine, "--lowpass", "2", "--overwrite")
    assert "denoised 0, kept 2 earlier" in again.stdout, again.stdout  # now they are ours

    # outputs written by `cryodenoise denoise` into the folder before the watch
    other = tmp_path / "other"
    assert cryodenoise("denoise", *map(str, mics), "-o", str(other), "-m", affine).returncode == 0
    kept = _watch(indir, other, affine)
    assert "kept 2 earlier" in kept.stdout, kept.stdout
    redo = _watch(indir, other, affine, "--overwrite")
    assert "denoised 2" in redo.stdout, redo.stdout
