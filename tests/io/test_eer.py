"""EER movies: raw frames grouped into fractions, decoded lazily, usable for training."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io import EerMovie, write_mrc
from napari_cryodenoise.training import pair_from_movie

pytest.importorskip("imagecodecs")

from eer_writer import write_eer  # noqa: E402  (tests/ is on sys.path)


def _raw_frames(n: int, shape=(64, 80), seed: int = 0) -> np.ndarray:
    """Sparse binary electron events, denser in a disc (a 'particle')."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    rate = 0.02 + 0.03 * ((yy - 30) ** 2 + (xx - 40) ** 2 < 15**2)
    return (rng.random((n, *shape)) < rate).astype(np.uint8)


@pytest.fixture
def eer_file(tmp_path):
    raw = _raw_frames(23)
    return write_eer(tmp_path / "movie.eer", raw, pixel_size_m=8e-11), raw


def test_fractions_are_sums_of_raw_frame_groups(eer_file):
    path, raw = eer_file
    with EerMovie(path, grouping=5) as movie:
        assert movie.n_raw_frames == 23 and len(movie) == 4  # 3 trailing frames dropped
        assert movie.shape == (4, 64, 80) and movie.dtype == np.uint16
        for i in range(4):
            np.testing.assert_array_equal(movie[i], raw[5 * i : 5 * i + 5].sum(0))
        np.testing.assert_array_equal(movie[-1], movie[3])
        with pytest.raises(IndexError):
            movie[4]
        assert "23 raw frames" in repr(movie)


def test_pair_from_eer_movie(eer_file):
    path, raw = eer_file
    pair = pair_from_movie(path, eer_grouping=5, frames="0:4")
    fractions = [raw[5 * i : 5 * i + 5].sum(0) for i in range(4)]
    np.testing.assert_array_equal(pair.even, fractions[0] + fractions[2])
    np.testing.assert_array_equal(pair.odd, fractions[1] + fractions[3])
    assert pair.name == "movie"


def test_bad_eer_inputs_have_clear_errors(tmp_path, eer_file, monkeypatch):
    path, _ = eer_file
    with pytest.raises(InputError, match="fewer than one group"):
        EerMovie(path, grouping=40)
    with pytest.raises(InputError, match="grouping must be"):
        EerMovie(path, grouping=0)
    with pytest.raises(InputError, match="no such file"):
        EerMovie(tmp_path / "missing.eer")
    tiff = tmp_path / "plain.eer"
    import tifffile

    tifffile.imwrite(tiff, np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(InputError, match="not an EER movie"):
        EerMovie(tiff)
    junk = tmp_path / "junk.eer"
    junk.write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="not a readable EER file"):
        EerMovie(junk)
    truncated = tmp_path / "truncated.eer"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="truncated|not a readable EER"):
        movie = EerMovie(truncated, grouping=1)
        for i in range(len(movie)):
            movie[i]
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    with pytest.raises(InputError, match=r"napari-cryodenoise\[eer\]"):
        EerMovie(path)


def test_cli_trains_from_eer(tmp_path, eer_file):
    from napari_cryodenoise.cli import main

    path, _ = eer_file
    gain = write_mrc(tmp_path / "gain.mrc", np.ones((64, 80), np.float32))
    out = tmp_path / "eer.pt"
    args = ["train", "--movies", str(path), "--eer-grouping", "5", "--gain", str(gain)]
    tiny = ["--arch", "affine", "--crop", "32", "--device", "cpu", "--quiet", "--steps", "1"]
    assert main([*args, *tiny, "-o", str(out)]) == 0
    assert out.is_file()
