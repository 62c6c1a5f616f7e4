"""Even/odd half sums named as MotionCor2/RELION write them, for ``cryodenoise train``."""

# ruff: noqa: W291, W293, E501  (the fixture is a RELION 5 file, trailing spaces and all)
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from relion_star_files import RELION5_MOTIONCORR_EVEN_ODD
from subprocess_runs import cryodenoise

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.training import pairs_from_folders, pairs_from_pair_folder, pairs_from_star
from napari_cryodenoise.training.pair_sources import (
    half_of,
    match_half_folders,
    pair_files_from_star,
    pair_files_in_folder,
)

TINY = ["--arch", "affine", "--crop", "32", "--batch-size", "2", "--val-every", "2"]
TINY += ["--device", "cpu", "--quiet", "--steps", "1"]


def _image(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).normal(size=(48, 48)).astype(np.float32)
    return write_mrc(path, data, voxel_size=0.885)


def _motioncor_folder(folder: Path, names=("mic_0001", "mic_0002")) -> Path:
    """What MotionCor2 -SplitSum 1 leaves: X.mrc, X_EVN.mrc, X_ODD.mrc."""
    for k, name in enumerate(names):
        for j, tag in enumerate(("", "_EVN", "_ODD")):
            _image(folder / f"{name}{tag}.mrc", 10 * k + j)
    return folder


def test_half_names():
    assert half_of("a/mic_0001_EVN.mrc") == ("mic_0001", "even")
    assert half_of("mic_0001_ODD.mrc") == ("mic_0001", "odd")
    assert half_of("x_even.tif") == ("x", "even") and half_of("x_Odd.mrc") == ("x", "odd")
    assert half_of("mic_0001.mrc") is None and half_of("_EVN.mrc") is None


def test_pairs_folder_motioncor_and_even_odd(tmp_path):
    folder = _motioncor_folder(tmp_path / "mc")
    _image(folder / "b_even.mrc", 1)
    _image(folder / "b_odd.mrc", 2)
    _image(folder / "lonely_EVN.mrc", 3)
    pairs, unpaired = pair_files_in_folder(folder)
    assert [(e.name, o.name) for e, o in pairs] == [
        ("b_even.mrc", "b_odd.mrc"),
        ("mic_0001_EVN.mrc", "mic_0001_ODD.mrc"),
        ("mic_0002_EVN.mrc", "mic_0002_ODD.mrc"),
    ]
    assert [p.name for p in unpaired] == ["lonely_EVN.mrc"]
    loaded, _ = pairs_from_pair_folder(folder)
    assert [p.name for p in loaded] == ["b", "mic_0001", "mic_0002"]
    with pytest.raises(InputError, match="no even/odd half sums found.*SplitSum"):
        pair_files_in_folder(_image(tmp_path / "plain" / "a.mrc", 0).parent)


def test_even_odd_folders_matched_by_name_or_tag(tmp_path):
    for k, (even, odd) in enumerate((("a_EVN.mrc", "a_ODD.mrc"), ("b_even.mrc", "b_odd.mrc"))):
        _image(tmp_path / "e" / even, k)
        _image(tmp_path / "o" / odd, k + 10)
    files = match_half_folders(tmp_path / "e", tmp_path / "o")
    assert [(e.name, o.name) for e, o in files] == [
        ("a_EVN.mrc", "a_ODD.mrc"),
        ("b_even.mrc", "b_odd.mrc"),
    ]
    assert [p.name for p in pairs_from_folders(tmp_path / "e", tmp_path / "o")] == [
        "a_EVN",
        "b_even",
    ]
    mc = _motioncor_folder(tmp_path / "mc")  # one folder given as --even and --odd
    assert len(match_half_folders(mc, mc)) == 2
    _image(tmp_path / "x" / "q.mrc", 0)
    with pytest.raises(InputError, match="no matching image files"):
        match_half_folders(tmp_path / "x", tmp_path / "o")


def test_relion5_star_columns_and_beside_fallback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _motioncor_folder(tmp_path / "MotionCorr/job002/Movies")
    star = tmp_path / "MotionCorr/job002/corrected_micrographs.star"
    star.write_text(RELION5_MOTIONCORR_EVEN_ODD)
    files = pair_files_from_star(star)
    assert [(e.name, o.name) for e, o in files] == [
        ("mic_0001_EVN.mrc", "mic_0001_ODD.mrc"),
        ("mic_0002_EVN.mrc", "mic_0002_ODD.mrc"),
    ]
    assert [p.name for p in pairs_from_star(star)] == ["mic_0001", "mic_0002"]
    # RELION 3.1/4 STAR of MotionCor2 -SplitSum 1 output: the halves beside each micrograph
    plain = tmp_path / "plain.star"
    plain.write_text(
        "# version 30001\n\ndata_micrographs\n\nloop_ \n_rlnMicrographName #1 \n"
        "MotionCorr/job002/Movies/mic_0001.mrc \nMotionCorr/job002/Movies/mic_0002.mrc \n"
    )
    assert pair_files_from_star(plain) == files
    (tmp_path / "MotionCorr/job002/Movies/mic_0002_ODD.mrc").unlink()
    with pytest.raises(InputError, match="1 of 2 micrographs have no even/odd half sums"):
        pair_files_from_star(plain)
    # a micrograph the STAR lists is not there at all: said so, not "no half sums"
    gone = tmp_path / "gone.star"
    gone.write_text(plain.read_text().replace("mic_0002.mrc", "mic_0009.mrc"))
    with pytest.raises(InputError, match=r"1 of 2 micrographs it lists do not exist \(e\.g\. "):
        pair_files_from_star(gone)
    tomo = tmp_path / "tomograms.star"
    tomo.write_text(
        "# version 50001\n\ndata_global\n\nloop_ \n_rlnTomoName #1 \n"
        "_rlnTomoReconstructedTomogramHalf1 #2 \n_rlnTomoReconstructedTomogramHalf2 #3 \n"
        "TS_01 Tomograms/job007/tomograms/rec_TS_01_half1.mrc "
        "Tomograms/job007/tomograms/rec_TS_01_half2.mrc \n"
    )
    assert [e.name for e, _ in pair_files_from_star(tomo)] == ["rec_TS_01_half1.mrc"]
    nothing = tmp_path / "nothing.star"
    nothing.write_text("data_x\nloop_\n_rlnFoo #1\n1\n")
    with pytest.raises(InputError, match="no rlnMicrographNameEven"):
        pair_files_from_star(nothing)


def test_cli_train_star_and_pairs(tmp_path):
    _motioncor_folder(tmp_path / "MotionCorr/job002/Movies")
    star = tmp_path / "MotionCorr/job002/corrected_micrographs.star"
    star.write_text(RELION5_MOTIONCORR_EVEN_ODD)
    run = cryodenoise(
        "train", "--star", str(star.relative_to(tmp_path)), "-o", "m1.pt", *TINY, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert "trained 1 steps" in run.stdout and (tmp_path / "m1.pt").is_file()
    run = cryodenoise(
        "train", "--pairs", "MotionCorr/job002/Movies", "-o", "m2.pt", *TINY, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "m2.pt").is_file()
    bad = tmp_path / "bad.star"
    bad.write_bytes(
        b"data_m\nloop_\n_rlnMicrographNameEven #1\n_rlnMicrographNameOdd #2\na\xff b\n"
    )
    run = cryodenoise("train", "--star", str(bad), "-o", "m3.pt", *TINY, cwd=tmp_path)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert f"{bad} line 5: not UTF-8 text" in run.stderr
    assert not (tmp_path / "m3.pt").exists()
