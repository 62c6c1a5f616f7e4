"""Movie frames streamed one at a time (io/movies.py): MRC, TIFF, EER, arrays, gain, ranges."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.io.movies import MovieReader, parse_frame_range


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(5)
    return rng.integers(0, 9, size=(5, 12, 16)).astype(np.uint8)


def test_parse_frame_range():
    assert parse_frame_range("1:4") == slice(1, 4)
    assert parse_frame_range(" -3: ") == slice(-3, None)
    assert parse_frame_range("2") == slice(2, None)
    assert parse_frame_range(None) == slice(None)
    assert parse_frame_range(slice(0, 2)) == slice(0, 2)
    for bad in ("a:b", "1:2:3", "1.5:"):
        with pytest.raises(InputError, match="use A:B"):
            parse_frame_range(bad)


def test_array_frames_are_float32_copies(frames):
    reader = MovieReader(frames)
    assert (reader.name, reader.path, reader.n_frames, reader.frame_shape) == (
        "array",
        None,
        5,
        (12, 16),
    )
    f = reader.frame(2)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f, frames[2])
    f += 1  # a copy: the movie is untouched
    np.testing.assert_array_equal(reader.frame(2), frames[2])
    assert reader.indices("1:4") == [1, 2, 3]
    assert reader.indices(None) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("m.mrcs", lambda p, a: write_mrc(p, a.astype(np.float32))),
        ("t.tif", lambda p, a: tifffile.imwrite(p, a)),
        ("z.tif", lambda p, a: tifffile.imwrite(p, a, compression="zlib")),
    ],
)
def test_movie_files(tmp_path, frames, name, write):
    path = tmp_path / name
    write(path, frames)
    reader = MovieReader(path)
    assert reader.name == path.stem and reader.path == path
    assert reader.n_frames == 5 and reader.frame_shape == (12, 16)
    for i in (0, 4):
        np.testing.assert_array_equal(reader.frame(i), frames[i].astype(np.float32))


def test_eer_movie_sums_raw_frames_into_fractions(tmp_path):
    from eer_writer import write_eer

    rng = np.random.default_rng(1)
    raw = (rng.random((6, 16, 16)) < 0.2).astype(np.uint8)
    path = write_eer(tmp_path / "movie.eer", raw)
    reader = MovieReader(path, eer_grouping=3)
    assert reader.n_frames == 2 and reader.frame_shape == (16, 16)
    np.testing.assert_array_equal(reader.frame(1), raw[3:].sum(0).astype(np.float32))


def test_gain_reference(tmp_path, frames):
    gain = np.linspace(0.5, 2.0, 12 * 16, dtype=np.float32).reshape(12, 16)
    np.testing.assert_allclose(MovieReader(frames, gain=gain).frame(1), frames[1] * gain)
    write_mrc(tmp_path / "gain.mrc", gain)
    reader = MovieReader(frames, gain=tmp_path / "gain.mrc")
    np.testing.assert_allclose(reader.frame(0), frames[0] * gain)
    with pytest.raises(InputError, match=r"12 x 16 px .* 16 x 12 \(transposed\?"):
        MovieReader(frames, gain=gain.T)
    bad = gain.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="gain reference contains NaN"):
        MovieReader(frames, gain=bad)


def test_not_a_movie(tmp_path, frames):
    with pytest.raises(InputError, match=r"needs several frames \(F, H, W\)"):
        MovieReader(frames[0])
    with pytest.raises(InputError, match="at least 2 frames, has 1"):
        MovieReader(frames[:1])
    with pytest.raises(InputError, match="selects 1 of 5 frames"):
        MovieReader(frames).indices("4:")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match=r"bad\.tif: not a readable TIFF file"):
        MovieReader(bad)
