import numpy as np

from napari_cryodenoise.cli import main
from napari_cryodenoise.io import read_image


def test_version_and_help(capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "cryodenoise" in capsys.readouterr().out
    assert main([]) == 0


def test_simulate_writes_all_files(tmp_path):
    assert (
        main(
            ["simulate", str(tmp_path), "--n", "2", "--size", "64", "--frames", "4", "--seed", "1"]
        )
        == 0
    )
    for i in range(2):
        stem = tmp_path / f"sim_{i:04d}"
        movie, info = read_image(f"{stem}_movie.mrcs")
        even, _ = read_image(f"{stem}_even.mrc")
        odd, _ = read_image(f"{stem}_odd.mrc")
        total, _ = read_image(f"{stem}_sum.mrc")
        clean, cinfo = read_image(f"{stem}_clean.mrc")
        assert movie.shape == (4, 64, 64) and info.kind == "stack"
        np.testing.assert_allclose(np.asarray(even) + np.asarray(odd), total)
        np.testing.assert_allclose(movie.sum(0), total)
        assert cinfo.pixel_size == 1.5 and not cinfo.voxel_size_is_placeholder


def test_bad_arguments_give_one_line_errors(tmp_path, capsys):
    assert main(["simulate", str(tmp_path), "--size", "4"]) == 2
    assert "error" in capsys.readouterr().err
