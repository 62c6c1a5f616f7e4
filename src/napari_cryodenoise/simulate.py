"""Synthetic cryo-EM movies with ground truth.

The image model follows the weak-phase approximation used in cryo-EM:

1. A 3D density (a procedural "protein" made of Gaussian blobs, or an EMDB
   map) is projected at random orientations and positions; the projections,
   scaled to a peak phase shift, form the specimen's phase ``phi(x)``.
2. The microscope's contrast transfer function (defocus, voltage, spherical
   aberration, amplitude contrast, B-factor envelope) turns phase into
   intensity: ``I = 1 + 2 * IFFT(CTF * FFT(phi))``.
3. Vitreous ice of slowly varying thickness attenuates the beam
   (``exp(-t / mean_free_path)``), which also gives a gentle illumination
   gradient as in real micrographs.
4. Each frame collects Poisson-distributed electron counts with expectation
   ``dose_per_frame * pixel_size**2 * I``, optionally shifted by stage drift.

The expectation of the summed movie is the noise-free ground truth; the sums
of even and odd frames are the two independent halves that Noise2Noise
training uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["ParticleModel", "SimulatedMovie", "electron_wavelength", "ctf_2d", "simulate_movie"]


def electron_wavelength(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Angstrom for an accelerating voltage in kV."""
    v = voltage_kv * 1e3
    return 12.2643 / np.sqrt(v * (1.0 + 0.978466e-6 * v))


def ctf_2d(
    shape: tuple[int, int],
    pixel_size: float,
    *,
    defocus_um: float = 1.5,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    b_factor: float = 50.0,
) -> np.ndarray:
    """Phase-contrast transfer function on the ``numpy.fft.rfft2`` grid.

    Parameters
    ----------
    shape : tuple of int
        Real-space image shape ``(ny, nx)``.
    pixel_size : float
        Angstrom per pixel.
    defocus_um : float
        Underfocus in micrometres (positive = underfocus, as usual).
    voltage_kv, cs_mm, amplitude_contrast : float
        Microscope parameters.
    b_factor : float
        Envelope ``exp(-B k^2 / 4)`` in Angstrom^2.

    Returns
    -------
    numpy.ndarray
        ``-(sqrt(1 - A^2) sin(chi) + A cos(chi)) * envelope``, shape ``(ny, nx // 2 + 1)``.

    """
    lam = electron_wavelength(voltage_kv)
    ky = np.fft.fftfreq(shape[0], d=pixel_size)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=pixel_size)[None, :]
    k2 = kx**2 + ky**2
    defocus = defocus_um * 1e4
    cs = cs_mm * 1e7
    chi = np.pi * lam * defocus * k2 - 0.5 * np.pi * cs * lam**3 * k2**2
    w = amplitude_contrast
    ctf = -(np.sqrt(1.0 - w**2) * np.sin(chi) + w * np.cos(chi))
    return ctf * np.exp(-b_factor * k2 / 4.0)


def _random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed random rotation matrices, shape ``(n, 3, 3)``."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


@dataclass
class ParticleModel:
    """A 3D density to project: Gaussian blobs, or a voxel map.

    Use :meth:`procedural` for a built-in asymmetric particle, or
    :meth:`from_map` for an EMDB map.
    """

    diameter: float  # Angstrom
    blobs: np.ndarray | None = None  # (K, 3) centres in Angstrom
    blob_sigma: float = 0.0  # Angstrom
    blob_weight: np.ndarray | None = None  # (K,)
    volume: np.ndarray | None = None  # (Z, Y, X) density
    voxel_size: float = 1.0  # Angstrom, for ``volume``

    @classmethod
    def procedural(
        cls, diameter: float = 150.0, n_blobs: int = 160, seed: int = 7
    ) -> ParticleModel:
        """An asymmetric, protein-like particle: a few lobes of Gaussian blobs."""
        rng = np.random.default_rng(seed)
        radius = diameter / 2.0
        lobes = rng.normal(size=(4, 3))
        lobes *= (0.45 * radius) / np.linalg.norm(lobes, axis=1, keepdims=True)
        lobes[0] *= 0.2  # a central core
        owner = rng.integers(0, len(lobes), n_blobs)
        blobs = lobes[owner] + rng.normal(scale=0.18 * radius, size=(n_blobs, 3))
        # keep blobs inside the particle's radius
        norms = np.linalg.norm(blobs, axis=1, keepdims=True)
        blobs = np.where(norms > 0.8 * radius, blobs * (0.8 * radius / norms), blobs)
        weight = rng.uniform(0.6, 1.0, n_blobs)
        return cls(diameter=diameter, blobs=blobs, blob_sigma=0.045 * diameter, blob_weight=weight)

    @classmethod
    def from_map(cls, path: str | os.PathLike) -> ParticleModel:
        """Load a density map (MRC/EMDB ``.map``) as the particle."""
        from .io import read_image

        data, info = read_image(path)
        if data.ndim != 3:
            raise ValueError(f"{path}: a 3D density map is needed, got shape {data.shape}")
        volume = np.asarray(data, dtype=np.float32)
        volume = np.clip(volume - np.median(volume), 0, None)
        diameter = max(volume.shape) * info.pixel_size
        return cls(diameter=diameter, volume=volume, voxel_size=info.pixel_size)

    def project(self, rotation: np.ndarray, pixel_size: float) -> np.ndarray:
        """Projection along z after ``rotation``, on a square grid of ``pixel_size``.

        Returns an array of odd side length centred on the particle, peak 1.
        """
        half = int(np.ceil(0.6 * self.diameter / pixel_size)) + 2
        coords = (np.arange(-half, half + 1) * pixel_size).astype(np.float32)
        if self.volume is None:
            assert self.blobs is not None and self.blob_weight is not None
            centres = self.blobs @ rotation.T  # rotate blob centres
            s2 = 2.0 * self.blob_sigma**2
            gy = np.exp(-((coords[None, :] - centres[:, 1:2]) ** 2) / s2)  # (K, n)
            gx = np.exp(-((coords[None, :] - centres[:, 0:1]) ** 2) / s2)
            proj = np.einsum("k,ky,kx->yx", self.blob_weight, gy, gx)
        else:
            vol = self.volume
            centre = (np.array(vol.shape) - 1) / 2.0
            # rotate the map about its centre, then project along z and resample
            offset = centre - rotation.T @ centre
            rotated = ndimage.affine_transform(vol, rotation.T, offset=offset, order=1)
            proj = rotated.sum(axis=0)
            zoom = self.voxel_size / pixel_size
            proj = ndimage.zoom(proj, zoom, order=1)
            out = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
            h = min(proj.shape[0], out.shape[0])
            w = min(proj.shape[1], out.shape[1])
            cy, cx = (proj.shape[0] - h) // 2, (proj.shape[1] - w) // 2
            oy, ox = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
            out[oy : oy + h, ox : ox + w] = proj[cy : cy + h, cx : cx + w]
            proj = out
        peak = float(proj.max())
        return (proj / peak if peak > 0 else proj).astype(np.float32)


@dataclass
class SimulatedMovie:
    """A synthetic movie with its ground truth.

    Attributes
    ----------
    frames : numpy.ndarray
        ``(F, H, W)`` float32 electron counts per frame (integers).
    clean : numpy.ndarray
        ``(H, W)`` float32 expected counts of the full sum (noise-free ground truth).
    pixel_size : float
        Angstrom per pixel.
    particle_xy : numpy.ndarray
        ``(N, 2)`` particle centres ``(x, y)`` in pixels.
    drift : numpy.ndarray
        ``(F, 2)`` applied shift ``(y, x)`` of each frame in pixels.
    params : dict
        The parameters used.

    """

    frames: np.ndarray
    clean: np.ndarray
    pixel_size: float
    particle_xy: np.ndarray
    drift: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def even(self) -> np.ndarray:
        """Sum of the even frames (0, 2, 4, ...)."""
        return self.frames[0::2].sum(axis=0, dtype=np.float32)

    @cached_property
    def odd(self) -> np.ndarray:
        """Sum of the odd frames (1, 3, 5, ...)."""
        return self.frames[1::2].sum(axis=0, dtype=np.float32)

    @cached_property
    def total(self) -> np.ndarray:
        """Sum of all frames (the usual micrograph)."""
        return self.frames.sum(axis=0, dtype=np.float32)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.frames.shape[0])

    @property
    def clean_even(self) -> np.ndarray:
        """Ground truth of the even half sum."""
        return self.clean * (len(range(0, self.n_frames, 2)) / self.n_frames)

    @property
    def clean_odd(self) -> np.ndarray:
        """Ground truth of the odd half sum."""
        return self.clean * (len(range(1, self.n_frames, 2)) / self.n_frames)


def _place_particles(
    shape: tuple[int, int], n: int, min_dist: float, margin: float, rng: np.random.Generator
) -> np.ndarray:
    """Random non-overlapping centres ``(x, y)``; fewer than ``n`` if they do not fit."""
    placed: list[tuple[float, float]] = []
    for _ in range(n * 50):
        if len(placed) == n:
            break
        x = rng.uniform(margin, shape[1] - margin) if shape[1] > 2 * margin else shape[1] / 2
        y = rng.uniform(margin, shape[0] - margin) if shape[0] > 2 * margin else shape[0] / 2
        if all((x - px) ** 2 + (y - py) ** 2 >= min_dist**2 for px, py in placed):
            placed.append((x, y))
    return np.array(placed, dtype=np.float64).reshape(-1, 2)


def _smooth_field(shape: tuple[int, int], scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """A zero-mean, unit-std random field varying over ``scale_px`` pixels."""
    noise = rng.normal(size=shape)
    field_ = ndimage.gaussian_filter(noise, sigma=scale_px, mode="wrap")
    field_ -= field_.mean()
    std = field_.std()
    return field_ / std if std > 0 else field_


def _fourier_shift(image: np.ndarray, shift_yx: tuple[float, float]) -> np.ndarray:
    spectrum = np.fft.rfft2(image)
    shifted = ndimage.fourier_shift(spectrum, shift_yx, n=image.shape[1], axis=-1)
    return np.fft.irfft2(shifted, s=image.shape)


def simulate_movie(
    shape: tuple[int, int] = (512, 512),
    n_frames: int = 16,
    dose: float = 40.0,
    pixel_size: float = 1.5,
    *,
    n_particles: int | None = None,
    particle: ParticleModel | str | os.PathLike | None = None,
    phase_contrast: float = 0.2,
    defocus_um: float = 1.5,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    b_factor: float = 50.0,
    ice_thickness: float = 400.0,
    ice_variation: float = 0.1,
    drift: float = 0.0,
    seed: int | None = None,
) -> SimulatedMovie:
    """Simulate a dose-fractionated cryo-EM movie of randomly oriented particles.

    Parameters
    ----------
    shape : tuple of int
        Frame size ``(H, W)`` in pixels.
    n_frames : int
        Number of frames (dose fractions).
    dose : float
        Total exposure in electrons per square Angstrom.
    pixel_size : float
        Angstrom per pixel.
    n_particles : int, optional
        How many particles; by default about 30% of the area is covered.
    particle : ParticleModel, path or None
        The particle: a model, an EMDB/MRC density map path, or None for the
        built-in procedural particle (150 A across).
    phase_contrast : float
        Peak phase shift (radians) of a particle's projection.
    defocus_um, voltage_kv, cs_mm, amplitude_contrast, b_factor : float
        Microscope and CTF parameters.
    ice_thickness : float
        Mean ice thickness in Angstrom (mean free path taken as 3500 A).
    ice_variation : float
        Relative thickness variation over the field.
    drift : float
        Total stage drift over the exposure in pixels (linear, random direction).
    seed : int, optional
        Random seed; the same seed gives the same movie.

    Returns
    -------
    SimulatedMovie
        Frames, halves, sum, ground truth and metadata.

    """
    if n_frames < 2:
        raise ValueError("n_frames must be at least 2 (even and odd halves)")
    if dose <= 0 or pixel_size <= 0:
        raise ValueError("dose and pixel_size must be positive")
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    if particle is None:
        model = ParticleModel.procedural()
    elif isinstance(particle, ParticleModel):
        model = particle
    else:
        model = ParticleModel.from_map(Path(particle))
    diameter_px = model.diameter / pixel_size
    if n_particles is None:
        n_particles = max(1, int(0.3 * shape[0] * shape[1] / (np.pi * (diameter_px / 2) ** 2)))
    centres = _place_particles(shape, n_particles, 0.9 * diameter_px, 0.3 * diameter_px, rng)

    # specimen phase: projections at random orientations
    phase = np.zeros(shape, np.float32)
    for (x, y), rot in zip(centres, _random_rotations(len(centres), rng), strict=True):
        proj = model.project(rot, pixel_size) * phase_contrast
        half = proj.shape[0] // 2
        ix, iy = int(round(x)), int(round(y))
        y0, y1 = max(iy - half, 0), min(iy + half + 1, shape[0])
        x0, x1 = max(ix - half, 0), min(ix + half + 1, shape[1])
        py, px = y0 - iy + half, x0 - ix + half
        phase[y0:y1, x0:x1] += proj[py : py + y1 - y0, px : px + x1 - x0]

    ctf = ctf_2d(
        shape,
        pixel_size,
        defocus_um=defocus_um,
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        amplitude_contrast=amplitude_contrast,
        b_factor=b_factor,
    )
    contrast = np.fft.irfft2(np.fft.rfft2(phase) * ctf, s=shape)
    intensity = 1.0 + 2.0 * contrast
    thickness = ice_thickness * (1.0 + ice_variation * _smooth_field(shape, max(shape) / 6, rng))
    intensity *= np.exp(-np.clip(thickness, 0, None) / 3500.0)
    intensity = np.clip(intensity, 0.0, None)

    per_frame = intensity * (dose / n_frames) * pixel_size**2
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction)
    steps = np.linspace(0.0, 1.0, n_frames)[:, None] * (drift * direction)[None, :]
    frames = np.empty((n_frames, *shape), np.float32)
    for i in range(n_frames):
        expected = per_frame if drift == 0 else _fourier_shift(per_frame, tuple(steps[i]))
        frames[i] = rng.poisson(np.clip(expected, 0, None))
    params = dict(
        shape=shape,
        n_frames=n_frames,
        dose=dose,
        pixel_size=pixel_size,
        n_particles=len(centres),
        particle_diameter=model.diameter,
        phase_contrast=phase_contrast,
        defocus_um=defocus_um,
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        amplitude_contrast=amplitude_contrast,
        b_factor=b_factor,
        ice_thickness=ice_thickness,
        ice_variation=ice_variation,
        drift=drift,
        seed=seed,
    )
    return SimulatedMovie(
        frames=frames,
        clean=(per_frame * n_frames).astype(np.float32),
        pixel_size=pixel_size,
        particle_xy=centres,
        drift=steps,
        params=params,
    )
