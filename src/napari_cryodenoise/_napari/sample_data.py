"""napari sample data: a synthetic micrograph, its movie and its even/odd halves."""

from __future__ import annotations

from functools import lru_cache

from ..io import ImageInfo
from ..simulate import SimulatedMovie, simulate_movie
from .layers import layer_kwargs

SAMPLE_SHAPE = (768, 768)
SAMPLE_SEED = 2026


@lru_cache(maxsize=1)
def _movie() -> SimulatedMovie:
    return simulate_movie(SAMPLE_SHAPE, n_frames=16, seed=SAMPLE_SEED)


def _info(name: str, shape: tuple[int, ...], kind: str, px: float) -> ImageInfo:
    return ImageInfo(
        path=None, kind=kind, shape=shape, voxel_size=(px, px, px), voxel_size_is_placeholder=False
    )


def _layer(data, name: str, kind: str = "image") -> tuple:
    movie = _movie()
    kwargs = layer_kwargs(data, _info(name, data.shape, kind, movie.pixel_size), name=name)
    kwargs["metadata"]["cryodenoise"]["simulation"] = movie.params
    return data, kwargs, "image"


def synthetic_micrograph() -> list[tuple]:
    """A simulated 768x768 micrograph (sum of 16 frames) and its noise-free ground truth."""
    movie = _movie()
    clean = _layer(movie.clean, "synthetic ground truth")
    clean[1]["visible"] = False
    return [clean, _layer(movie.total, "synthetic micrograph")]


def synthetic_movie() -> list[tuple]:
    """The 16 frames of the simulated movie (scroll the frame axis)."""
    return [_layer(_movie().frames, "synthetic movie", kind="movie")]


def synthetic_even_odd() -> list[tuple]:
    """Sums of the even and of the odd frames: a Noise2Noise training pair."""
    movie = _movie()
    return [_layer(movie.even, "synthetic even"), _layer(movie.odd, "synthetic odd")]
