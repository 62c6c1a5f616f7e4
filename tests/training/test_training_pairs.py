"""Even/odd pairs from movies and files: sums, frame ranges, gain, drift correction."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.simulate import simulate_movie
from napari_cryodenoise.training import (
    MovieReader,
    estimate_drift,
    pair_from_arrays,
    pair_from_movie,
    pairs_from_files,
    pairs_from_folders,
    pairs_from_movies,
    parse_frame_range,
    read_single_images,
)


@pytest.fixture(scope="module")
def movie():
    return simulate_movie((64, 80), n_frames=8, seed=1)


def test_halves_sum_to_selected_frames(movie):
    pair = pair_from_movie(movie.frames)
    np.testing.assert_allclose(pair.even + pair.odd, movie.total, rtol=1e-6)
    np.testing.assert_allclose(pair.even, movie.even, rtol=1e-6)
    np.testing.assert_allclose(pair.odd, movie.odd, rtol=1e-6)
    assert pair.even.dtype == np.float32


def test_frame_range_is_honoured(movie):
    pair = pair_from_movie(movie.frames, frames="1:6")
    f = movie.frames.astype(np.float64)
    np.testing.assert_allclose(pair.even, f[1] + f[3] + f[5], rtol=1e-6)
    np.testing.assert_allclose(pair.odd, f[2] + f[4], rtol=1e-6)
    tail = pair_from_movie(movie.frames, frames="-4:")
    np.testing.assert_allclose(tail.even + tail.odd, f[4:].sum(0), rtol=1e-6)


def test_parse_frame_range():
    assert parse_frame_range("2:30") == slice(2, 30)
    assert parse_frame_range(":10") == slice(None, 10)
    assert parse_frame_range("3") == slice(3, None)
    assert parse_frame_range(None) == slice(None)
    for bad in ("a:b", "1:2:3"):
        with pytest.raises(InputError, match="A:B"):
            parse_frame_range(bad)
    with pytest.raises(InputError, match="at least 2"):
        pair_from_movie(np.zeros((8, 16, 16), np.float32), frames="7:")


def test_gain_reference_multiplies_frames(movie, tmp_path):
    gain = np.linspace(0.5, 1.5, 64 * 80, dtype=np.float32).reshape(64, 80)
    pair = pair_from_movie(movie.frames, gain=gain)
    np.testing.assert_allclose(pair.even, movie.even * gain, rtol=1e-5)
    write_mrc(tmp_path / "gain.mrc", gain)
    from_file = pair_from_movie(movie.frames, gain=tmp_path / "gain.mrc")
    np.testing.assert_allclose(from_file.odd, movie.odd * gain, rtol=1e-5)
    with pytest.raises(InputError, match="gain reference is 64 x 80"):
        pair_from_movie(movie.frames, gain=gain.T)


def test_movie_files_mrcs_and_tiff(movie, tmp_path):
    frames = movie.frames.astype(np.uint8)
    write_mrc(tmp_path / "a.mrcs", frames.astype(np.float32))
    tifffile.imwrite(tmp_path / "b.tif", frames)
    tifffile.imwrite(tmp_path / "c.tif", frames, compression="zlib")
    pairs = pairs_from_movies([tmp_path / "a.mrcs", tmp_path / "b.tif", tmp_path / "c.tif"])
    assert [p.name for p in pairs] == ["a", "b", "c"]
    expect = frames[0::2].sum(0, dtype=np.float32)
    for p in pairs:
        np.testing.assert_array_equal(p.even, expect)
    saved = pairs_from_movies([tmp_path / "a.mrcs"], save_dir=tmp_path / "halves")
    assert (tmp_path / "halves" / "a_even.mrc").is_file()
    assert isinstance(saved[0].even, np.memmap)
    np.testing.assert_array_equal(saved[0].odd, frames[1::2].sum(0, dtype=np.float32))


def test_corrupt_eer_gets_a_clear_message(tmp_path):
    path = tmp_path / "movie.eer"
    path.write_bytes(b"II*\x00")
    with pytest.raises(InputError, match=r"movie\.eer: (not a readable EER|reading EER movies)"):
        MovieReader(path)


def _abs_error(shifts: np.ndarray, drift: np.ndarray) -> np.ndarray:
    truth = -(drift - drift.mean(axis=0))  # shifts undo the drift, centred
    return np.abs(shifts - truth)


@pytest.mark.parametrize("seed", [3, 4])
def test_alignment_recovers_known_drift(seed):
    sim = simulate_movie((384, 384), n_frames=16, drift=6.0, phase_contrast=0.5, seed=seed)
    reader = MovieReader(sim.frames)
    shifts = estimate_drift(reader, range(16))
    assert _abs_error(shifts, sim.drift).max() < 0.5
    aligned = pair_from_movie(sim.frames, align=True)
    plain = pair_from_movie(sim.frames)
    corr = [
        np.corrcoef((p.even + p.odd).ravel(), sim.clean.ravel())[0, 1] for p in (aligned, plain)
    ]
    assert corr[0] > corr[1]


def test_ready_made_pairs_from_files_and_folders(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "e").mkdir()
    (tmp_path / "o").mkdir()
    for name in ("x.mrc", "y.mrc"):
        write_mrc(tmp_path / "e" / name, rng.normal(size=(20, 24)).astype(np.float32))
        write_mrc(tmp_path / "o" / name, rng.normal(size=(20, 24)).astype(np.float32))
    write_mrc(tmp_path / "o" / "only_odd.mrc", np.zeros((20, 24), np.float32))
    pairs = pairs_from_folders(tmp_path / "e", tmp_path / "o")
    assert [p.name for p in pairs] == ["x", "y"]
    same = pairs_from_files([tmp_path / "e"], [tmp_path / "o"])
    assert len(same) == 2
    with pytest.raises(InputError, match="1 even files but 2 odd"):
        pairs_from_files(
            [tmp_path / "e" / "x.mrc"], [tmp_path / "o" / "x.mrc", tmp_path / "o" / "y.mrc"]
        )
    write_mrc(tmp_path / "small.mrc", np.zeros((10, 10), np.float32))
    with pytest.raises(InputError, match="halves must match"):
        pairs_from_files([tmp_path / "e" / "x.mrc"], [tmp_path / "small.mrc"])
    pair = pair_from_arrays(np.ones((8, 8)), np.zeros((8, 8)), name="layers")
    assert pair.shape == (8, 8)
    with pytest.raises(InputError, match="differ in shape"):
        pair_from_arrays(np.ones((8, 8)), np.zeros((8, 9)))


def test_single_images_split_stacks(tmp_path):
    write_mrc(tmp_path / "s.mrcs", np.zeros((3, 16, 16), np.float32))
    images = read_single_images([tmp_path / "s.mrcs", np.ones((16, 16))])
    assert len(images) == 4
    assert all(im.odd is None for im in images)
