"""Particle coordinates: RELION STAR, Topaz tables, EMAN .box, plain text; picks per micrograph."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io.star_coords import (
    picks_for,
    read_coordinates,
    read_star_coordinates,
    star_micrograph_names,
)


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


def _coordinate_star(path, rows, *, micrographs=True):
    cols = "_rlnCoordinateX #1\n_rlnCoordinateY #2\n"
    if micrographs:
        cols += "_rlnMicrographName #3\n"
    body = "".join(" ".join(str(v) for v in r) + "\n" for r in rows)
    path.write_text(f"data_\n\nloop_\n{cols}{body}")
    return path


def test_picks_for_filters_a_shared_star_by_micrograph(tmp_path):
    star = _coordinate_star(
        tmp_path / "all.star", [(1, 2, "mics/a.mrc"), (3, 4, "mics/b.mrc"), (5, 6, "mics/a.mrc")]
    )
    np.testing.assert_allclose(picks_for(star, "/data/a.mrc"), [[1, 2], [5, 6]])
    np.testing.assert_allclose(picks_for(star, "b"), [[3, 4]])  # the stem is enough
    with pytest.raises(InputError, match="no picks for c.mrc; it lists 2 micrographs"):
        picks_for(star, "c.mrc")


def test_picks_for_reads_a_one_micrograph_star_whole(tmp_path):
    star = _coordinate_star(tmp_path / "one.star", [(1, 2, "other.mrc"), (3, 4, "other.mrc")])
    np.testing.assert_allclose(picks_for(star, "mine.mrc"), [[1, 2], [3, 4]])
    plain = _coordinate_star(tmp_path / "plain.star", [(7, 8)], micrographs=False)
    np.testing.assert_allclose(picks_for(plain, "anything.mrc"), [[7, 8]])


def test_picks_for_refuses_empty_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing picked\n")
    with pytest.raises(InputError, match="empty.txt contains no picks"):
        picks_for(empty, "a.mrc")


def test_bad_coordinates_are_input_errors(tmp_path):
    nan = _coordinate_star(tmp_path / "nan.star", [("nan", 2)], micrographs=False)
    with pytest.raises(InputError, match="NaN or infinite"):
        read_coordinates(nan)
    words = _coordinate_star(tmp_path / "words.star", [("x", 2)], micrographs=False)
    with pytest.raises(InputError, match="non-numeric"):
        read_coordinates(words)
    header = tmp_path / "h.txt"
    header.write_text("a b\n1 2\n")
    with pytest.raises(InputError, match="no x/y"):
        read_coordinates(header)
    short = tmp_path / "short.box"
    short.write_text("1 2\n")
    with pytest.raises(InputError, match="cannot parse"):
        read_coordinates(short)


def test_no_micrograph_column_means_all_rows(tmp_path):
    plain = _coordinate_star(tmp_path / "p.star", [(1, 2), (3, 4)], micrographs=False)
    assert star_micrograph_names(plain) == []
    np.testing.assert_allclose(read_star_coordinates(plain, micrograph="x.mrc"), [[1, 2], [3, 4]])
