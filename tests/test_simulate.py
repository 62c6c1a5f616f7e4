import numpy as np
import pytest

from napari_cryodenoise.simulate import ParticleModel, ctf_2d, electron_wavelength, simulate_movie


@pytest.fixture(scope="module")
def movie():
    return simulate_movie((128, 160), n_frames=8, dose=40.0, pixel_size=2.0, seed=3)


def test_shapes_and_halves(movie):
    assert movie.frames.shape == (8, 128, 160)
    np.testing.assert_allclose(movie.even + movie.odd, movie.total, rtol=0, atol=1e-3)
    np.testing.assert_allclose(movie.clean_even + movie.clean_odd, movie.clean, rtol=1e-6)


def test_poisson_statistics_per_frame(movie):
    expected = movie.clean / movie.n_frames
    residual = movie.frames - expected[None]
    # Poisson: variance equals the mean, frame by frame
    ratio = (residual**2).mean(axis=(1, 2)) / expected.mean()
    np.testing.assert_allclose(ratio, 1.0, atol=0.05)
    np.testing.assert_allclose(movie.frames.mean(axis=(1, 2)), expected.mean(), rtol=0.01)
    assert np.all(movie.frames == np.round(movie.frames))


def test_dose_sets_counts(movie):
    # mean counts per pixel ~ dose * pixel_size^2, attenuated by the ice
    assert 0.8 * 40 * 4 < movie.total.mean() < 40 * 4


def test_reproducible_by_seed():
    a = simulate_movie((64, 64), n_frames=4, seed=5)
    b = simulate_movie((64, 64), n_frames=4, seed=5)
    np.testing.assert_array_equal(a.frames, b.frames)


def test_particles_are_in_the_ground_truth(movie):
    assert len(movie.particle_xy) >= 1
    x, y = movie.particle_xy[0].round().astype(int)
    local = movie.clean[max(y - 5, 0) : y + 5, max(x - 5, 0) : x + 5]
    assert local.std() > 0.5 * movie.clean.std()


def test_drift_moves_frames():
    m = simulate_movie((96, 96), n_frames=4, drift=6.0, seed=1)
    assert np.abs(m.drift[-1]).max() > 1 and np.allclose(m.drift[0], 0)


def test_ctf_physics():
    assert electron_wavelength(300) == pytest.approx(0.01969, abs=1e-4)
    ctf = ctf_2d((64, 64), 1.0, amplitude_contrast=0.1, b_factor=0)
    assert ctf[0, 0] == pytest.approx(-0.1)  # only amplitude contrast at k=0


def test_emdb_map_particle(tmp_path):
    from napari_cryodenoise.io import write_mrc

    vol = np.zeros((16, 16, 16), np.float32)
    vol[6:10, 4:12, 7:9] = 1
    path = write_mrc(tmp_path / "m.map", vol, voxel_size=5.0)
    model = ParticleModel.from_map(path)
    proj = model.project(np.eye(3), 5.0)
    assert proj.max() == pytest.approx(1.0)
    m = simulate_movie((64, 64), n_frames=2, particle=path, pixel_size=5.0, seed=0)
    assert m.frames.shape == (2, 64, 64)


def test_fourier_shift_is_an_exact_translation():
    from scipy import ndimage

    from napari_cryodenoise.simulate import _fourier_shift

    a = np.random.default_rng(0).random((32, 40))
    shifted = _fourier_shift(a, (2.0, 5.0))
    np.testing.assert_allclose(
        shifted, ndimage.shift(a, (2, 5), mode="grid-wrap", order=0), atol=1e-12
    )
