import csv
import sys

import numpy as np
import pytest

from napari_cryodenoise.cli import CLIError, main
from napari_cryodenoise.cli.evaluate import Row, format_table, parse_method, parse_methods
from napari_cryodenoise.io import write_mrc


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
    assert "12.35" in lines[3]
    # gaussian:2 has no SSIM: its last cell is empty, not dropped
    assert [c.strip() for c in lines[3].strip().strip("|").split("|")] == [
        "gaussian:2",
        "12.35",
        "",
    ]


def test_model_method_uses_engine(dataset, tmp_path, capsys):
    from napari_cryodenoise.models import build_model, save_model

    path = tmp_path / "tiny_affine.pt"
    save_model(build_model("affine"), path)
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
