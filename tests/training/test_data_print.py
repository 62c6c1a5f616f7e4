"""The training data a checkpoint records, and the note when a resume trains on others."""

from __future__ import annotations

import numpy as np

from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.training.data_print import data_fingerprint, data_notes
from napari_cryodenoise.training.pair import ImagePair
from napari_cryodenoise.training.pairs import pairs_from_files


def _pairs(*specs):
    """ImagePairs from (name, side, pixel size)."""
    return [
        ImagePair(np.zeros((side, side), np.float32), None, name=name, pixel_size=apix)
        for name, side, apix in specs
    ]


def test_same_data_in_any_order_gives_no_note():
    before = data_fingerprint(_pairs(("a", 32, 1.1), ("b", 32, 1.1)))
    now = data_fingerprint(_pairs(("b", 32, 1.1), ("a", 32, 1.1)))
    assert data_notes("m.ckpt.pt", before, now) == []


def test_other_data_are_one_line_saying_how():
    before = data_fingerprint(_pairs(("a", 32, 1.1), ("b", 32, 1.1)))
    now = data_fingerprint(_pairs(("a", 48, 0.9), ("c", 48, 0.9), ("d", 48, 0.9)))
    (line,) = data_notes("m.ckpt.pt", before, now)
    assert line.startswith("resuming m.ckpt.pt on other data than it was trained on: ")
    for part in (
        "3 images (was 2)",
        "2 of 3 images new (c, d)",
        "48 x 48 px (was 32 x 32 px)",
        "pixel size 0.9 A (was 1.1 A)",
        "fine-tuning",
    ):
        assert part in line, line
    # a subset of the same images: the count says it; unknown pixel sizes are not compared
    (line,) = data_notes("m.ckpt.pt", before, data_fingerprint(_pairs(("a", 32, None))))
    assert "1 image (was 2)" in line and "new" not in line and "pixel size" not in line


def test_an_older_checkpoint_without_a_fingerprint_gets_no_note():
    now = data_fingerprint(_pairs(("a", 32, None)))
    assert data_notes("old.ckpt.pt", None, now) == []
    assert data_notes("old.ckpt.pt", {}, now) == []


def test_many_names_are_compared_by_digest():
    before = data_fingerprint(_pairs(*[(f"x{i:04d}", 8, None) for i in range(300)]))
    now = data_fingerprint(_pairs(*[(f"y{i:04d}", 8, None) for i in range(300)]))
    assert len(before["names"]) == 200
    (line,) = data_notes("m.ckpt.pt", before, now)
    assert "other image names" in line


def test_half_sum_files_carry_their_pixel_size(tmp_path):
    for half in ("even", "odd"):
        write_mrc(tmp_path / f"a_{half}.mrc", np.ones((16, 16), np.float32), voxel_size=1.35)
    (pair,) = pairs_from_files([tmp_path / "a_even.mrc"], [tmp_path / "a_odd.mrc"])
    assert pair.pixel_size == 1.35
    assert data_fingerprint([pair])["pixel_sizes"] == [1.35]
