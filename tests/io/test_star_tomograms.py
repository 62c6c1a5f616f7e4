"""RELION 5 ``tomograms.star`` in, the same STAR with the denoised tomograms out.

The fixture is written the way RELION 5's tomogram reconstruction writes it: a
leading blank line, ``# version 50001``, a ``data_global`` loop with one row per
tomogram, labels with a trailing space, paths relative to the project directory.
"""

# ruff: noqa: W291, W293, E501  (the fixture is a RELION file, trailing spaces and all)
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from relion_star_files import RELION5_TOMOGRAMS
from subprocess_runs import cryodenoise

from napari_cryodenoise.io import read_image, write_mrc
from napari_cryodenoise.io.star import image_column, read_star, read_star_micrographs
from napari_cryodenoise.io.star_micrographs import OutputStarPlan, read_micrograph_star

TOMO = "rlnTomoReconstructedTomogram"


def _project(root: Path) -> Path:
    """A RELION 5 project: tomograms.star under Tomograms/job010 and 24x40x40 volumes at 10 A."""
    star = root / "Tomograms/job010/tomograms.star"
    star.parent.mkdir(parents=True)
    star.write_text(RELION5_TOMOGRAMS)
    rng = np.random.default_rng(0)
    for name in ("rec_TS_01", "rec_TS_02"):
        for suffix in ("", "_half1", "_half2"):
            volume = rng.normal(size=(24, 40, 40)).astype(np.float32)
            path = root / f"Tomograms/job010/tomograms/{name}{suffix}.mrc"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_mrc(path, volume, voxel_size=10.0)
    return star


@pytest.fixture(scope="module")
def model_3d(tmp_path_factory):
    import torch

    from napari_cryodenoise import models

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "fast3d.pt"
    return models.save_model(models.build_model("unet-fast-3d"), path)


def test_tomograms_star_lists_the_tomograms(tmp_path):
    star = _project(tmp_path)
    expected = [tmp_path / f"Tomograms/job010/tomograms/rec_TS_0{i}.mrc" for i in (1, 2)]
    assert read_star_micrographs(star, project_dir=tmp_path) == expected
    source = read_micrograph_star(star, tmp_path)
    assert (source.block, source.column, source.tomograms) == ("global", TOMO, True)
    assert list(source.micrographs) == expected
    assert OutputStarPlan((source,)).default_name == "denoised_tomograms.star"
    # micrographs win when a STAR has both columns; neither: None
    both = [["rlnTomoName", TOMO], ["rlnMicrographName"]]
    assert image_column(both) == "rlnMicrographName"
    assert image_column([["rlnTomoName"]]) is None


def test_rescaled_tomograms_scale_the_binning(tmp_path):
    star = _project(tmp_path)
    source = read_micrograph_star(star, tmp_path)
    outs = [tmp_path / "Denoise" / m.name for m in source.micrographs]
    for out in outs:
        out.parent.mkdir(exist_ok=True)
        write_mrc(out, np.zeros((12, 20, 20), np.float32), voxel_size=20.0)
    pairs = list(zip(source.micrographs, outs, strict=True))
    blocks, notes = OutputStarPlan((source,), tmp_path, rescaled=True).blocks(pairs)
    assert not notes
    table = blocks[0].table
    assert table["rlnTomoTomogramBinning"].tolist() == ["14.814814", "14.814814"]
    assert table["rlnTomoTiltSeriesPixelSize"].tolist() == ["1.350000", "1.350000"]


def test_cli_denoise_tomograms_star_keeps_every_value(tmp_path, model_3d):
    star = _project(tmp_path)
    args = [
        "denoise",
        str(star.relative_to(tmp_path)),
        "-o",
        "Denoise/job011",
        "-m",
        str(model_3d),
        "-d",
        "cpu",
    ]
    run = cryodenoise(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "Denoise/job011/denoised_tomograms.star"
    assert not (tmp_path / "Denoise/job011/denoised_micrographs.star").exists()
    before, after = read_star(star), read_star(out)
    assert list(after) == list(before) == ["global"]
    assert after["global"].comments[-1] == "# version 50001"
    assert after["global"].columns == before["global"].columns
    names = after["global"].table[TOMO].tolist()
    assert names == ["Denoise/job011/rec_TS_01.mrc", "Denoise/job011/rec_TS_02.mrc"]
    rest = [c for c in before["global"].columns if c != TOMO]
    assert after["global"].table[rest].equals(before["global"].table[rest])
    for name in names:
        data, info = read_image(tmp_path / name)
        assert data.shape == (24, 40, 40)
        assert info.pixel_size == pytest.approx(10.0)

    # an interrupted run (one tomogram and the STAR lost): --skip-existing lists all again
    (tmp_path / names[1]).unlink()
    out.unlink()
    run = cryodenoise(*args, "--skip-existing", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "denoised 1, skipped 1, failed 0" in run.stdout
    again = read_star(out)
    assert again["global"].table.equals(after["global"].table)
