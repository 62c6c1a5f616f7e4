"""RELION STAR files: exact reading, clear errors, and the output STAR of ``cryodenoise denoise``.

The fixtures are written the way RELION 3.1, 4 and 5 write them: a leading blank
line, ``# version 30001`` (``50001`` for RELION 5) before every block,
``loop_`` and labels with a trailing space, right-aligned values, paths
relative to the project directory.
"""

# ruff: noqa: W291, W293, E501  (the fixtures are RELION files, trailing spaces and all)
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from relion_star_files import RELION5_MOTIONCORR_EVEN_ODD, motioncorr_optics
from subprocess_runs import cryodenoise

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io import read_image, write_mrc
from napari_cryodenoise.io.star import (
    StarBlock,
    find_star_table,
    read_star,
    read_star_micrographs,
    read_star_tables,
)
from napari_cryodenoise.io.star_micrographs import (
    OpticsValues,
    OutputStarPlan,
    listed_outputs,
    read_micrograph_star,
    relion_path,
)
from napari_cryodenoise.io.star_writer import star_text, write_star

RELION31_MOTIONCORR = (
    motioncorr_optics(30001)
    + """
# version 30001

data_micrographs

loop_ 
_rlnMicrographName #1 
_rlnMicrographMetadata #2 
_rlnOpticsGroup #3 
_rlnAccumMotionTotal #4 
_rlnAccumMotionEarly #5 
_rlnAccumMotionLate #6 
MotionCorr/job002/Movies/mic_0001.mrc MotionCorr/job002/Movies/mic_0001.star            1    16.420306     2.000000    14.420306 
MotionCorr/job002/Movies/mic_0002.mrc MotionCorr/job002/Movies/mic_0002.star            1    19.121300     3.500000    15.621300 
 
"""
)

RELION4_CTF = """
# version 30001

data_optics

loop_ 
_rlnOpticsGroupName #1 
_rlnOpticsGroup #2 
_rlnMicrographOriginalPixelSize #3 
_rlnVoltage #4 
_rlnSphericalAberration #5 
_rlnAmplitudeContrast #6 
_rlnMicrographPixelSize #7 
opticsGroup1            1     0.885000   200.000000     1.400000     0.100000     0.885000 
opticsGroup2            2     1.060000   300.000000     2.700000     0.070000     1.060000 
 

# version 30001

data_micrographs

loop_ 
_rlnMicrographName #1 
_rlnMicrographMetadata #2 
_rlnOpticsGroup #3 
_rlnAccumMotionTotal #4 
_rlnCtfImage #5 
_rlnDefocusU #6 
_rlnDefocusV #7 
_rlnCtfAstigmatism #8 
_rlnDefocusAngle #9 
_rlnCtfFigureOfMerit #10 
_rlnCtfMaxResolution #11 
MotionCorr/job002/Movies/mic_0001.mrc MotionCorr/job002/Movies/mic_0001.star            1    16.420306 CtfFind/job003/Movies/mic_0001.ctf:mrc 10864.146484 10575.874023   288.272461    77.654083     0.131573     3.877592 
'MotionCorr/job002/my dir/mic 3.mrc' "" 2 1.0e1 CtfFind/job003/Movies/mic_0003.ctf:mrc 21200.000000 20950.500000   249.500000    -3.250000     0.098000     4.100000 
 
"""

RELION30 = """
data_

loop_
_rlnMicrographName #1
_rlnDefocusU #2
Micrographs/a.mrc 12000.000000
Micrographs/b.mrc 13000.5
"""


def _star(tmp_path: Path, text: str, name: str = "in.star") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------------- reading


@pytest.mark.parametrize(
    "text", [RELION31_MOTIONCORR, RELION4_CTF, RELION5_MOTIONCORR_EVEN_ODD, RELION30]
)
def test_relion_files_read_exactly_and_round_trip(tmp_path, text):
    blocks = read_star(_star(tmp_path, text))
    again = read_star(_star(tmp_path, star_text(blocks), "again.star"))
    assert list(again) == list(blocks)
    for name, block in blocks.items():
        assert again[name].columns == block.columns
        assert again[name].table.equals(block.table)
        assert again[name].comments == block.comments
    # every value is the file's exact string: take the last field of each data line
    lines = [
        ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith(("_", "#"))
    ]
    rows = [ln for ln in lines if len(ln) > 1]
    values = [v for b in blocks.values() for v in b.table.iloc[:, -1]]
    assert [r[-1] for r in rows] == values


def test_relion_blocks_columns_and_quotes(tmp_path):
    blocks = read_star(_star(tmp_path, RELION4_CTF))
    assert list(blocks) == ["optics", "micrographs"]
    assert blocks["optics"].comments == ("# version 30001",)
    mics = blocks["micrographs"]
    assert mics.columns[:3] == ["rlnMicrographName", "rlnMicrographMetadata", "rlnOpticsGroup"]
    rows = mics.records()
    assert rows[0]["rlnDefocusU"] == "10864.146484"  # a string, exactly as written
    assert rows[0]["rlnCtfImage"] == "CtfFind/job003/Movies/mic_0001.ctf:mrc"
    assert rows[1]["rlnMicrographName"] == "MotionCorr/job002/my dir/mic 3.mrc"
    assert rows[1]["rlnMicrographMetadata"] == ""
    assert rows[1]["rlnAccumMotionTotal"] == "1.0e1"
    assert mics.row_lines == (34, 35)
    assert read_star(_star(tmp_path, RELION30))[""].records()[1]["rlnDefocusU"] == "13000.5"


def test_odd_but_valid_values(tmp_path):
    text = (
        "data_x\n\nloop_\n_a #1\n_b #2\n"
        'mic#1.mrc "it\'s # fine"\n'
        "# a comment line inside the loop\n"
        "'#x' nan   # trailing comment\n"
        "\n"
        "data_general\n\n_rlnTomoName   'tomo 1'\n_rlnN 3\n"
    )
    blocks = read_star(_star(tmp_path, text))
    assert blocks["x"].records() == [
        {"a": "mic#1.mrc", "b": "it's # fine"},
        {"a": "#x", "b": "nan"},
    ]
    assert not blocks["general"].loop
    assert blocks["general"].records() == [{"rlnTomoName": "tomo 1", "rlnN": "3"}]
    again = read_star(_star(tmp_path, star_text(blocks), "again.star"))
    assert again["x"].table.equals(blocks["x"].table)
    assert again["general"].records() == blocks["general"].records()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data_m\nloop_\n_a #1\n_b #2\n1 2\n3\n", "line 6: row has 1 value but data_m has 2"),
        ("data_m\nloop_\n_a #1\n1 2\n", "line 4: row has 2 values"),
        ("hello\ndata_m\nloop_\n_a #1\n1\n", "line 1: expected data_NAME"),
        ("data_m\nloop_\n_a #1\n1\n_b #2\n", "line 5: label '_b #2' after the rows"),
        ("data_m\nloop_\n_a #1\n'open value\n", "line 4: unterminated quote"),
        ("data_m\nloop_\n1 2\n", "line 3: loop_ in data_m has no _labels"),
        ("data_m\nloop_\n_a #1\n1\ndata_m\nloop_\n_a #1\n2\n", "line 5: data_m appears twice"),
        ("data_m\nloop_\n_a #1\n_a #2\n", "line 4: label _a appears twice"),
        ("data_m\n_a 1 2\n", "line 2: expected _label value"),
        ("data_m\njunk here\n", "line 2: expected loop_ or _label value"),
        ("# only a comment\n", "no data_ block"),
    ],
)
def test_malformed_star_names_file_and_line(tmp_path, text, message):
    path = _star(tmp_path, text)
    with pytest.raises(InputError, match=message) as info:
        read_star(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_binary_and_non_utf8_star(tmp_path):
    latin = tmp_path / "latin.star"
    latin.write_bytes(b"data_m\nloop_\n_rlnMicrographName #1\nmic_\xe9.mrc\n")
    with pytest.raises(InputError, match=r"latin.star line 4: not UTF-8 text \(byte 0xe9\)"):
        read_star_micrographs(latin)
    binary = tmp_path / "mrc.star"
    binary.write_bytes(b"data_m\n\x00\x01\x02")
    with pytest.raises(InputError, match="line 2: binary data"):
        read_star(binary)
    with pytest.raises(InputError, match="no such STAR file"):
        read_star(tmp_path / "none.star")
    with pytest.raises(InputError, match="is a folder"):
        read_star(tmp_path)
    bom = tmp_path / "bom.star"
    bom.write_bytes(b"\xef\xbb\xbfdata_m\nloop_\n_rlnMicrographName #1\na.mrc\n")
    assert read_star_micrographs(bom)[0].name == "a.mrc"


def test_compatibility_functions(tmp_path):
    path = _star(tmp_path, RELION31_MOTIONCORR)
    tables = read_star_tables(path)
    assert len(tables) == 2 and tables[1][0]["rlnAccumMotionEarly"] == "2.000000"
    assert find_star_table(path, "rlnVoltage")[0]["rlnVoltage"] == "300.000000"
    with pytest.raises(InputError, match="no rlnCoordinateX column"):
        find_star_table(path, "rlnCoordinateX")
    # relative names: the project directory first, then beside the STAR file
    mics = read_star_micrographs(path, project_dir=tmp_path / "project")
    assert mics[0] == tmp_path / "project" / "MotionCorr/job002/Movies/mic_0001.mrc"


def test_write_star_is_atomic_and_quotes(tmp_path):
    block = StarBlock.from_rows("micrographs", ["rlnMicrographName", "rlnNote"], [["a b.mrc", ""]])
    path = write_star(tmp_path / "o.star", [block])
    text = path.read_text()
    assert "# version 30001" in text and '"a b.mrc"' in text and '""' in text
    assert read_star(path)["micrographs"].records() == [
        {"rlnMicrographName": "a b.mrc", "rlnNote": ""}
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["o.star"]  # no temporary file left
    for value in ("line\nbreak", "tab\there", "both \" and ' quotes"):
        bad = StarBlock.from_rows("m", ["a"], [[value]])
        with pytest.raises(InputError, match="cannot be written"):
            star_text([bad])
    bad = StarBlock.from_rows("m", ["a"], [["line\nbreak"]])
    with pytest.raises(InputError, match="cannot be written"):
        write_star(tmp_path / "bad.star", [bad])
    assert not (tmp_path / "bad.star").exists()


# ----------------------------------------------------------------- the output STAR


def _project(root: Path, text: str, pixel: dict[str, float]) -> Path:
    """A RELION project: the STAR under MotionCorr/job002 and its micrographs."""
    star = _star(root, text, "MotionCorr/job002/corrected_micrographs.star")
    for row in read_micrograph_star(star, root).micrographs:
        row.parent.mkdir(parents=True, exist_ok=True)
        size = pixel.get(row.name, 0.885)
        image = np.random.default_rng(len(row.name)).normal(size=(40, 48)).astype(np.float32)
        write_mrc(row, image, voxel_size=size)
    return star


def test_plan_keeps_every_block_column_and_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    star = _project(tmp_path, RELION4_CTF, {"mic 3.mrc": 1.06})
    source = read_micrograph_star(star)
    outs = [tmp_path / "Denoised/job010" / f"{m.stem}.mrc" for m in source.micrographs]
    pairs = list(zip(source.micrographs, outs, strict=True))
    blocks, notes = OutputStarPlan((source,)).blocks(pairs)
    assert not notes
    before = read_star(star)
    assert [b.name for b in blocks] == list(before)
    assert blocks[0].table.equals(before["optics"].table)
    mics = blocks[1].table
    assert list(mics.columns) == before["micrographs"].columns
    assert mics["rlnMicrographName"].tolist() == [
        "Denoised/job010/mic_0001.mrc",
        "Denoised/job010/mic 3.mrc",
    ]
    rest = [c for c in mics.columns if c != "rlnMicrographName"]
    assert mics[rest].equals(before["micrographs"].table[rest])
    # rows in input order, only those listed
    blocks, _ = OutputStarPlan((source,)).blocks(pairs[::-1][:1])
    assert blocks[1].table["rlnOpticsGroup"].tolist() == ["2"]
    assert relion_path(tmp_path / "x" / "y.mrc") == "x/y.mrc"
    assert relion_path("/elsewhere/y.mrc") == "/elsewhere/y.mrc"


def test_listed_outputs_every_output_once(tmp_path):
    done, old, failed = (tmp_path / n for n in ("done.mrc", "old.mrc", "failed.mrc"))
    results = [
        (tmp_path / "a.mrc", done, True),
        (tmp_path / "b.mrc", old, False),  # "exists (use --overwrite)": complete from before
        (tmp_path / "c.mrc", failed, False),
        (tmp_path / "d.mrc", done, False),  # another input writing the same output
        (tmp_path / "e.mrc", tmp_path / "a.mrc", False),  # an output that is an input
    ]
    listed = listed_outputs(results, complete=lambda p: p != failed)
    assert listed == [(tmp_path / "a.mrc", done), (tmp_path / "b.mrc", old)]


def test_optics_values_are_validated():
    with pytest.raises(InputError, match="--cs must be"):
        OpticsValues(cs=-1)
    with pytest.raises(InputError, match="--amplitude-contrast must be"):
        OpticsValues(amplitude_contrast=1.5)
    with pytest.raises(InputError, match="--voltage must be"):
        OpticsValues(voltage=float("nan"))


@pytest.fixture(scope="module")
def affine_model(tmp_path_factory):
    import torch

    from napari_cryodenoise import models

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "affine.pt"
    return models.save_model(models.build_model("affine"), path)


def test_cli_denoise_star_keeps_optics_and_columns(tmp_path, affine_model):
    star = _project(tmp_path, RELION4_CTF, {"mic 3.mrc": 1.06})
    common = ["-m", str(affine_model), "-d", "cpu"]
    run = cryodenoise(
        "denoise", str(star.relative_to(tmp_path)), "-o", "Denoised/job010", *common, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "Denoised/job010/denoised_micrographs.star"
    before, after = read_star(star), read_star(out)
    assert list(after) == ["optics", "micrographs"]
    assert after["optics"].table.equals(before["optics"].table)
    assert after["optics"].comments[-1] == "# version 30001"
    again = write_star(tmp_path / "again.star", after)  # no header comment piles up
    assert read_star(again)["optics"].comments == after["optics"].comments
    assert after["micrographs"].columns == before["micrographs"].columns
    names = after["micrographs"].table["rlnMicrographName"].tolist()
    assert names == ["Denoised/job010/mic_0001.mrc", "Denoised/job010/mic 3.mrc"]
    rest = [c for c in before["micrographs"].columns if c != "rlnMicrographName"]
    assert after["micrographs"].table[rest].equals(before["micrographs"].table[rest])
    assert all((tmp_path / n).is_file() for n in names)

    # from elsewhere, with --project-dir and --bin 2: same names, pixel sizes doubled per group
    run = cryodenoise(
        "denoise",
        str(star),
        "-o",
        str(tmp_path / "Denoised/job011"),
        "--project-dir",
        str(tmp_path),
        "--bin",
        "2",
        *common,
        cwd=tmp_path / "MotionCorr",
    )
    assert run.returncode == 0, run.stderr
    binned = read_star(tmp_path / "Denoised/job011/denoised_micrographs.star")
    assert (
        binned["micrographs"].table["rlnMicrographName"].tolist()[0]
        == "Denoised/job011/mic_0001.mrc"
    )
    pixel = binned["optics"].table["rlnMicrographPixelSize"].tolist()
    assert pixel == ["1.770000", "2.120000"]
    original = binned["optics"].table["rlnMicrographOriginalPixelSize"].tolist()
    assert original == ["0.885000", "1.060000"]
    assert read_image(tmp_path / "Denoised/job011/mic 3.mrc")[1].pixel_size == pytest.approx(2.12)


def test_cli_denoise_files_get_relion31_star_and_rerun_lists_all(tmp_path, affine_model):
    star = _project(tmp_path, RELION31_MOTIONCORR, {})
    common = ["-m", str(affine_model), "-d", "cpu"]
    args = ["denoise", "MotionCorr/job002/Movies/", "-o", "Denoised", *common]
    run = cryodenoise(
        *args, "--voltage", "300", "--cs", "2.7", "--amplitude-contrast", "0.1", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "Denoised/denoised_micrographs.star"
    text = out.read_text()
    assert text.count("# version 30001") == 2
    blocks = read_star(out)
    assert blocks["optics"].records() == [
        {
            "rlnOpticsGroupName": "opticsGroup1",
            "rlnOpticsGroup": "1",
            "rlnMicrographOriginalPixelSize": "0.885000",
            "rlnVoltage": "300.000000",
            "rlnSphericalAberration": "2.700000",
            "rlnAmplitudeContrast": "0.100000",
            "rlnMicrographPixelSize": "0.885000",
        }
    ]
    assert blocks["micrographs"].records() == [
        {"rlnMicrographName": "Denoised/mic_0001.mrc", "rlnOpticsGroup": "1"},
        {"rlnMicrographName": "Denoised/mic_0002.mrc", "rlnOpticsGroup": "1"},
    ]
    # an interrupted run (one output and the STAR lost): rerun without flags stops before
    # any work; rerun with --skip-existing: the STAR lists every output, done now or before
    (tmp_path / "Denoised/mic_0002.mrc").unlink()
    out.unlink()
    run = cryodenoise(*args, cwd=tmp_path)
    assert run.returncode == 2 and "exist" in run.stderr and not out.exists()
    run = cryodenoise(*args, "--skip-existing", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    names = read_star(out)["micrographs"].table["rlnMicrographName"].tolist()
    assert names == ["Denoised/mic_0001.mrc", "Denoised/mic_0002.mrc"]
    # a STAR list with a short row: one line naming file and line, no traceback
    bad = _star(tmp_path, RELION31_MOTIONCORR.replace("2.000000    14.420306", ""), "bad.star")
    run = cryodenoise("denoise", str(bad), "-o", "Bad", *common, cwd=tmp_path)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert f"{bad} line 28: row has 4 values but data_micrographs has 6 columns" in run.stderr
    assert not (tmp_path / "Bad").exists()
    assert star.is_file()


def test_cli_denoise_star_run_from_another_folder_writes_project_paths(tmp_path, affine_model):
    """Run from outside the project without --project-dir: the project is where the STAR's
    names are found, so the output STAR's names are relative to it like its other columns,
    and a missing micrograph is named where the STAR's other micrographs are."""
    star = _project(tmp_path, RELION5_MOTIONCORR_EVEN_ODD, {})
    (tmp_path / "MotionCorr/job002/Movies/mic_0002.mrc").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "Denoise/job004"
    run = cryodenoise(
        "denoise", str(star), "-o", str(out), "-m", str(affine_model), "-d", "cpu", cwd=elsewhere
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    missing = tmp_path / "MotionCorr/job002/Movies/mic_0002.mrc"
    assert f"error: {missing}: no such file" in run.stderr
    blocks = read_star(out / "denoised_micrographs.star")
    (row,) = blocks["micrographs"].records()
    assert row["rlnMicrographName"] == "Denoise/job004/mic_0001.mrc"
    assert row["rlnMicrographNameEven"] == "MotionCorr/job002/Movies/mic_0001_EVN.mrc"


def test_written_star_is_laid_out_as_relion_writes_it(tmp_path):
    """Spaces between aligned columns, numbers to the right; other readers agree."""
    rows = [["MotionCorr/job002/mic_0001.mrc", "1", "0.885"], ["m2.mrc", "12", "-1.5e-3"]]
    columns = ["rlnMicrographName", "rlnOpticsGroup", "rlnDefocusU"]
    path = write_star(tmp_path / "o.star", [StarBlock.from_rows("micrographs", columns, rows)])
    text = path.read_text()
    assert "\t" not in text
    assert text.splitlines()[-5:] == [
        "_rlnMicrographName #1",
        "_rlnOpticsGroup #2",
        "_rlnDefocusU #3",
        "MotionCorr/job002/mic_0001.mrc  1   0.885",
        "m2.mrc                         12 -1.5e-3",
    ]
    starfile = pytest.importorskip("starfile")
    table = starfile.read(path)
    assert list(table["rlnMicrographName"]) == ["MotionCorr/job002/mic_0001.mrc", "m2.mrc"]
    assert list(table["rlnOpticsGroup"]) == [1, 12]


def test_cli_denoise_files_some_without_pixel_size_keep_the_known_one(tmp_path, affine_model):
    """Files with and without a header pixel size: the known one stays in its own optics
    group; the others get their own group (pixel size 0 = unknown) and one note says so."""
    folder = tmp_path / "mics"
    folder.mkdir()
    image = np.random.default_rng(1).normal(size=(40, 48)).astype(np.float32)
    write_mrc(folder / "a.mrc", image, voxel_size=1.06)
    write_mrc(folder / "b.mrc", image, voxel_size=0.0)
    run = cryodenoise(
        "denoise", "mics", "-o", "Denoised", "-m", str(affine_model), "-d", "cpu", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "Denoised/denoised_micrographs.star"
    blocks = read_star(out)
    assert blocks["optics"].records() == [
        {"rlnOpticsGroupName": "opticsGroup1", "rlnOpticsGroup": "1",
         "rlnMicrographPixelSize": "1.060000"},
        {"rlnOpticsGroupName": "opticsGroup2", "rlnOpticsGroup": "2",
         "rlnMicrographPixelSize": "0.000000"},
    ]  # fmt: skip
    assert blocks["micrographs"].records() == [
        {"rlnMicrographName": "Denoised/a.mrc", "rlnOpticsGroup": "1"},
        {"rlnMicrographName": "Denoised/b.mrc", "rlnOpticsGroup": "2"},
    ]
    note = "optics group 2: 1 of 2 micrographs have no pixel size in the header"
    assert note in run.stdout + run.stderr
    assert note in out.read_text()  # a comment line before data_optics, for who opens it
    starfile = pytest.importorskip("starfile")
    assert starfile.read(out)["optics"]["rlnMicrographPixelSize"].tolist() == [1.06, 0.0]


def test_cli_denoise_files_none_with_a_pixel_size_leave_the_column_out(tmp_path, affine_model):
    """No header has a pixel size: no rlnMicrographPixelSize (not a column of zeros that
    RELION would take for a value); one note says to set it on import."""
    folder = tmp_path / "mics"
    folder.mkdir()
    image = np.random.default_rng(1).normal(size=(40, 48)).astype(np.float32)
    write_mrc(folder / "a.mrc", image, voxel_size=0.0)
    run = cryodenoise(
        "denoise", "mics", "-o", "Denoised", "-m", str(affine_model), "-d", "cpu", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    blocks = read_star(tmp_path / "Denoised/denoised_micrographs.star")
    assert blocks["optics"].records() == [
        {"rlnOpticsGroupName": "opticsGroup1", "rlnOpticsGroup": "1"}
    ]
    assert "pixel size unknown in every header" in run.stdout + run.stderr
