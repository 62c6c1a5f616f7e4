"""``cryodenoise evaluate`` says how it reads the FRC and warns about dependent halves."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
from scipy import ndimage as ndi
from subprocess_runs import cryodenoise, error_line

from napari_cryodenoise.io import write_mrc


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eo")
    rng = np.random.default_rng(5)
    signal = ndi.gaussian_filter(rng.normal(size=(128, 128)), 3) * 30
    even = (signal + rng.normal(size=signal.shape)).astype(np.float32)
    odd = (signal + rng.normal(size=signal.shape)).astype(np.float32)
    files = {
        "even": write_mrc(folder / "even.mrc", even, voxel_size=2.0),
        "odd": write_mrc(folder / "odd.mrc", odd, voxel_size=2.0),
        "smoothed": write_mrc(
            folder / "even_smoothed.mrc", ndi.gaussian_filter(even, 1), voxel_size=2.0
        ),
    }
    return files


def test_independent_halves_get_the_rule_and_no_warning(halves):
    done = cryodenoise(
        "evaluate",
        "--even",
        str(halves["even"]),
        "--odd",
        str(halves["odd"]),
        "-m",
        "raw,gaussian:2",
    )
    assert done.returncode == 0, done.stderr
    assert "FRC resolution: first frequency where the FRC falls below" in done.stdout
    assert "warning" not in done.stdout


@pytest.mark.parametrize(
    ("odd", "methods"),
    [("smoothed", "raw,gaussian:2"), ("even", "raw")],
)
def test_an_image_against_its_own_filtered_version_is_flagged(halves, odd, methods):
    done = cryodenoise(
        "evaluate", "--even", str(halves["even"]), "--odd", str(halves[odd]), "-m", methods
    )
    assert done.returncode == 0, done.stderr
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("warning:")]
    assert line.startswith("warning: --even even.mrc and its --odd file stay correlated")
    assert "not be independent" in line and "Traceback" not in done.stderr


@pytest.mark.parametrize("half", ["--even", "--odd"])
def test_a_constant_half_is_one_line_naming_it(halves, tmp_path, half):
    """A constant half has no FRC: one line naming the file, no table, before any method."""
    flat = write_mrc(tmp_path / "flat.mrc", np.full((128, 128), 3.0, np.float32), voxel_size=2)
    pair = {"--even": halves["even"], "--odd": halves["odd"], half: flat}
    done = cryodenoise("evaluate", "--even", str(pair["--even"]), "--odd", str(pair["--odd"]))
    line = error_line(done, f"{half} {flat} is constant", "no FRC", code=2)
    assert "|" not in done.stdout and "..." not in done.stderr.replace(line, "")


def test_images_too_small_for_an_frc_say_so(tmp_path):
    """A 3x3 pair: 'too small for an FRC' with the size needed, not 'resolution none'."""
    rng = np.random.default_rng(0)
    files = [
        write_mrc(tmp_path / f"{n}.mrc", rng.normal(size=(3, 3)).astype(np.float32)) for n in "eo"
    ]
    done = cryodenoise("evaluate", "--even", str(files[0]), "--odd", str(files[1]), "-m", "raw")
    error_line(done, f"--even {files[0]} (3, 3) is too small for an FRC", "16 pixels", code=2)


def test_halves_with_different_pixel_sizes_are_refused(halves, tmp_path):
    """Headers of 2 and 4 A/px: one line naming both (an FRC in pixels would pair different
    frequencies); --pixel-size uses one size for both, with that line as a warning."""
    odd = tmp_path / "odd_binned_header.mrc"
    odd.write_bytes(halves["odd"].read_bytes())
    with mrcfile.open(odd, mode="r+") as mrc:
        mrc.voxel_size = 4.0
    args = ["evaluate", "--even", str(halves["even"]), "--odd", str(odd), "-m", "raw"]
    line = f"--even {halves['even']} has 2 A/px and --odd {odd} 4 A/px"
    error_line(cryodenoise(*args), line, "different pixel sizes", "--pixel-size", code=2)
    done = cryodenoise(*args, "--pixel-size", "2")
    assert done.returncode == 0, done.stderr
    assert f"warning: {line}" in done.stderr and "using --pixel-size 2 for both" in done.stderr
    assert "| raw" in done.stdout
