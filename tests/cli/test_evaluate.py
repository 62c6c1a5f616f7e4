import csv
import sys

import numpy as np
import pytest

from napari_cryodenoise.cli import CLIError, main
from napari_cryodenoise.cli.evaluate import Row, format_table, parse_method, parse_methods
from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.io.star_coords import (
    read_coordinates,
    read_star_coordinates,
    star_micrograph_names,
)


def _smooth(shape, rng, width=3.0):
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(rng.normal(size=shape), width) * 40


@pytest.fixture
def dataset(tmp_path):
    """Clean image with dark discs at picks; noisy sum; even/odd halves; a pick STAR file."""
    rng = np.random.default_rng(0)
    shape = (96, 112)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    picks = np.array([[30.0, 30.0], [80.0, 30.0], [30.0, 70.0], [80.0, 66.0]])  # x, y
    clean = 10 + _smooth(shape, rng)
    for x, y in picks:
        clean -= 3.0 * (np.hypot(xx - x, yy - y) <= 6)
    even = clean / 2 + rng.normal(0, 1.0, shape)
    odd = clean / 2 + rng.normal(0, 1.0, shape)
    files = {}
    for name, data in (("clean", clean), ("even", even), ("odd", odd), ("sum", even + odd)):
        files[name] = tmp_path / f"mic_{name}.mrc"
        write_mrc(files[name], data.astype(np.float32), voxel_size=2.0)
    star = tmp_path / "mic_autopick.star"
    star.write_text(
        "\ndata_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnAutopickFigureOfMerit #3\n"
        + "".join(f"{x:.3f} {y:.3f} 0.5\n" for x, y in picks)
    )
    files["star"] = star
    return files


def _table(out):
    lines = [ln for ln in out.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        row = dict(zip(header, cells, strict=True))
        rows[(row["image"], row["method"]) if "image" in row else row["method"]] = row
    return header, rows


def test_ground_truth_and_picks(dataset, tmp_path, capsys):
    out_csv = tmp_path / "res" / "scores.csv"
    code = main(
        [
            "evaluate",
            str(dataset["sum"]),
            "--clean",
            str(dataset["clean"]),
            "--picks",
            str(dataset["star"]),
            "--radius",
            "5",
            "-m",
            "raw,gaussian:1.5",
            "-m",
            "lowpass:2",
            "--csv",
            str(out_csv),
        ]
    )
    assert code == 0
    header, rows = _table(capsys.readouterr().out)
    assert list(rows) == ["raw", "gaussian:1.5", "lowpass:2"]
    assert {"PSNR dB", "SNR dB", "SSIM", "region SNR dB", "pairs"} <= set(header)
    assert float(rows["gaussian:1.5"]["PSNR dB"]) > float(rows["raw"]["PSNR dB"])
    assert float(rows["gaussian:1.5"]["region SNR dB"]) > float(rows["raw"]["region SNR dB"])
    assert rows["raw"]["pairs"] == "4"
    with open(out_csv) as fh:
        recs = list(csv.DictReader(fh))
    assert [r["method"] for r in recs] == ["raw", "gaussian:1.5", "lowpass:2"]
    assert float(recs[0]["ssim"]) < float(recs[1]["ssim"]) <= 1.0


def test_even_odd_frc(dataset, capsys):
    code = main(
        [
            "evaluate",
            "--even",
            str(dataset["even"]),
            "--odd",
            str(dataset["odd"]),
            "-m",
            "raw,gaussian:2",
            "--per-image",
        ]
    )
    assert code == 0
    header, rows = _table(capsys.readouterr().out)
    assert header[:2] == ["image", "method"]
    assert "FRC 0.143 A" in header and "hold-out NMSE" in header
    # resolutions in Angstrom: no better than Nyquist (2 x 2.0 A)
    for r in rows.values():
        assert float(r["FRC 0.143 A"]) >= 4.0 - 1e-6


def test_even_odd_plot(dataset, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "frc.png"
    assert (
        main(
            [
                "evaluate",
                "--even",
                str(dataset["even"]),
                "--odd",
                str(dataset["odd"]),
                "-m",
                "raw",
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_is_a_clear_error(dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = main(
        [
            "evaluate",
            "--even",
            str(dataset["even"]),
            "--odd",
            str(dataset["odd"]),
            "-m",
            "raw",
            "--plot",
            str(tmp_path / "x.png"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and "pip install" in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "nothing to measure"),
        (["{sum}", "--picks", "{star}"], "--radius"),
        (["{sum}", "--clean", "{clean}", "{clean}"], "--clean: got 2"),
        (["--even", "{even}"], "--even and --odd"),
        (["{sum}"], "without --clean or --picks"),
        (["{sum}", "--clean", "{clean}", "-m", "gaussian:x"], "gaussian:NUMBER"),
        (["{sum}", "--clean", "{sum}.missing"], "no such file"),
    ],
)
def test_usage_errors(dataset, capsys, argv, message):
    argv = [a.format(**{k: str(v) for k, v in dataset.items()}) for a in argv]
    assert main(["evaluate", *argv]) == 2
    assert message in capsys.readouterr().err


def test_mismatched_shapes_and_stacks(dataset, tmp_path, capsys):
    small = tmp_path / "small.mrc"
    write_mrc(small, np.zeros((32, 32), np.float32))
    assert main(["evaluate", str(dataset["sum"]), "--clean", str(small), "-m", "raw"]) == 2
    assert "differs" in capsys.readouterr().err
    stack = tmp_path / "stack.mrcs"
    write_mrc(stack, np.zeros((3, 32, 32), np.float32), kind="stack")
    assert main(["evaluate", str(stack), "--clean", str(stack), "-m", "raw"]) == 2
    assert "stack" in capsys.readouterr().err


def test_parse_methods():
    ms = parse_methods(["raw,gaussian:2", "unet+fcnn, raw", "lowpass:4"])
    assert [m.spec for m in ms] == ["raw", "gaussian:2", "unet+fcnn", "lowpass:4"]
    assert ms[1].kind == "gaussian" and ms[1].value == 2.0
    assert ms[2].kind == "model" and ms[2].models == ["unet", "fcnn"]
    assert parse_method("/a/b/model.pt").models == ["/a/b/model.pt"]
    with pytest.raises(CLIError):
        parse_method("lowpass:-1")
    with pytest.raises(CLIError):
        parse_method("unet+")


def test_format_table_aligns_columns():
    text = format_table(
        [
            Row("a", "raw", {"psnr_db": 1.0, "ssim": 0.5}),
            Row("a", "gaussian:2", {"psnr_db": 12.345}),
        ]
    )
    lines = text.splitlines()
    assert len({len(ln) for ln in lines}) == 1
    assert lines[1].startswith("|---") and lines[1].endswith(":|")
    assert "12.35" in lines[3] and lines[3].rstrip("| ").endswith("")


def test_model_method_uses_engine(dataset, tmp_path, capsys):
    pytest.importorskip("napari_cryodenoise.engine.inference")
    models = pytest.importorskip("napari_cryodenoise.models")
    if not hasattr(models, "save_model"):
        pytest.skip("models.save_model not available yet")
    path = tmp_path / "tiny_affine.pt"
    models.save_model(models.build_model("affine"), path)
    assert (
        main(
            [
                "evaluate",
                str(dataset["sum"]),
                "--clean",
                str(dataset["clean"]),
                "-m",
                f"raw,{path}",
            ]
        )
        == 0
    )
    _, rows = _table(capsys.readouterr().out)
    assert str(path) in rows


# ----------------------------------------------------------------------------- coordinates


def test_read_star_coordinates_relion31(tmp_path):
    star = tmp_path / "particles.star"
    star.write_text(
        "# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnImagePixelSize #2\n"
        "1 1.0\n\n# version 30001\n\ndata_particles\n\nloop_\n"
        "_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnMicrographName #3\n"
        "10.5 20.0 MotionCorr/job002/mic_a.mrc\n"
        "11.0 21.5 MotionCorr/job002/mic_b.mrc\n"
        "12.0 22.0 MotionCorr/job002/mic_a.mrc\n"
    )
    xy = read_star_coordinates(star)
    assert xy.shape == (3, 2) and xy.dtype == np.float64
    np.testing.assert_allclose(
        read_star_coordinates(star, micrograph="mic_a.mrc"), [[10.5, 20.0], [12.0, 22.0]]
    )
    np.testing.assert_allclose(read_coordinates(star, micrograph="/x/mic_b.tif"), [[11.0, 21.5]])
    assert star_micrograph_names(star) == [
        "MotionCorr/job002/mic_a.mrc",
        "MotionCorr/job002/mic_b.mrc",
    ]
    bad = tmp_path / "bad.star"
    bad.write_text("data_\nloop_\n_rlnMicrographName #1\nmic.mrc\n")
    with pytest.raises(InputError, match="rlnCoordinateX"):
        read_star_coordinates(bad)


def test_read_other_coordinate_formats(tmp_path):
    topaz = tmp_path / "picks.txt"
    topaz.write_text("image_name\tx_coord\ty_coord\tscore\nmic_a\t5\t6\t1.2\nmic_b\t7\t8\t0.3\n")
    np.testing.assert_allclose(read_coordinates(topaz), [[5, 6], [7, 8]])
    np.testing.assert_allclose(read_coordinates(topaz, micrograph="mic_b.mrc"), [[7, 8]])
    box = tmp_path / "mic.box"
    box.write_text("10\t20\t64\t64\n0 0 32 32\n")
    np.testing.assert_allclose(read_coordinates(box), [[42, 52], [16, 16]])
    plain = tmp_path / "xy.txt"
    plain.write_text("# x y (pixels)\n1.5 2.5\n3 4\n")
    np.testing.assert_allclose(read_coordinates(plain), [[1.5, 2.5], [3, 4]])
    csvf = tmp_path / "xy.csv"
    csvf.write_text("y,x\n2,1\n")
    np.testing.assert_allclose(read_coordinates(csvf), [[1, 2]])
    with pytest.raises(InputError, match="no such"):
        read_coordinates(tmp_path / "none.star")


def test_real_autopick_star(shared_data):
    xy = read_star_coordinates(shared_data / "micrographs" / "ucsf_1142_DW_autopick.star")
    assert xy.shape == (45, 2)
    assert (xy[:, 0] < 959).all() and (xy[:, 1] < 927).all()
