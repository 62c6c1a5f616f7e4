"""What denoising one file means: read its header, choose 2D or 3D models, resolve binning.

:func:`plan_file` makes every decision before any pixel is computed and refuses, with one
:class:`~napari_cryodenoise.errors.InputError` naming the file, what cannot work: a 2D
model chosen for a volume (:func:`explicit_2d_on_volume`), binning that leaves too few
pixels (:func:`check_binned_size`), a target pixel size without the header's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.image_info import ImageInfo
from ..options import AUTO, DenoiseOptions, FileOptions, auto_bin_text

__all__ = [
    "DEFAULT_2D",
    "DEFAULT_3D",
    "MIN_BINNED_SIDE",
    "Plan",
    "check_binned_size",
    "explicit_2d_on_volume",
    "plan_file",
]

#: The model for micrographs and stacks when none is chosen.
DEFAULT_2D = "unet"
#: The model for volumes when none (or only a 2D one, by default) is chosen.
DEFAULT_3D = "unet-3d"
#: Smallest side, in pixels, an image may have after ``--bin`` / ``--pixel-size``.
MIN_BINNED_SIDE = 16


@dataclass
class Plan:
    """What :func:`~.files.denoise_file` and :func:`~.files.denoise_planes` run.

    Attributes
    ----------
    data : numpy.ndarray
        The input (memory-mapped when possible).
    info : ImageInfo
        Its header facts.
    models : list
        The loaded networks to average (2D or 3D).
    per_slice : bool
        A 3D file denoised slice by slice with 2D models.
    engine_kw : dict
        Keyword arguments of the engine call (binning resolved).
    note : str
        For the per-file log line, e.g. the automatic bin factor.

    """

    data: np.ndarray
    info: ImageInfo
    models: list[Any]
    per_slice: bool
    engine_kw: dict[str, Any]
    note: str = ""

    def output_voxel_size(self, out_shape: tuple[int, ...]) -> tuple[float, float, float]:
        """Voxel size ``(z, y, x)`` of the written grid (binning changes it).

        A binned micrograph's z spacing is its x spacing (as headers of 2D images
        carry it); a stack's z is the slice spacing, which binning keeps.
        """
        vz, vy, vx = self.info.voxel_size
        if tuple(out_shape) != tuple(self.info.shape):
            scale = [a / b for a, b in zip(self.info.shape, out_shape, strict=True)]
            if self.per_slice:
                scale = [1.0, *scale[1:]]
            if len(scale) == 2:
                vy, vx = vy * scale[0], vx * scale[1]
                vz = vx
            else:
                vz, vy, vx = vz * scale[0], vy * scale[1], vx * scale[2]
        return vz, vy, vx

    def output_start(self, out_shape: tuple[int, ...]) -> tuple[tuple[int, int, int], str]:
        """MRC ``(nzstart, nystart, nxstart)`` of the written grid, and a note if dropped.

        See :meth:`~napari_cryodenoise.io.image_info.ImageInfo.start_for`; a stack
        denoised slice by slice keeps its z.
        """
        return self.info.start_for(out_shape, keep_z=self.per_slice)


def plan_file(
    in_path: Path, models: object, settings: FileOptions, models_3d: object = None
) -> Plan:
    """Read the header, pick 2D or 3D models and resolve binning (raises InputError).

    Parameters
    ----------
    in_path : Path
        The input image, stack or volume.
    models : module, alias, path or a sequence of them
        2D models (micrographs and stacks), or 3D ones.
    settings : FileOptions
        The run's options (``stack``/``volume`` force the layout of 3D files).
    models_3d : optional
        Models for volumes (default: ``models`` if they are 3D, else :data:`DEFAULT_3D`
        unless ``settings.explicit_model``).

    """
    from ..engine import load_models
    from ..io import read_image

    if not in_path.exists():
        raise InputError(f"{in_path}: no such file")
    data, info = read_image(in_path, mmap=True)
    kind = info.kind
    mods = load_models(models)
    as_volume = kind == "volume" or settings.volume
    note = ""
    if data.ndim == 3 and as_volume and not settings.stack:
        if int(mods[0].ndim) != 3:
            if models_3d is None and settings.explicit_model:
                raise explicit_2d_on_volume(in_path, mods)
            if models_3d is None:
                note = f"a volume: the default 3D model {DEFAULT_3D} was used"
            mods = load_models(models_3d if models_3d is not None else DEFAULT_3D)
        if int(mods[0].ndim) != 3:
            raise InputError(
                f"{in_path} is a volume: give a 3D model (--model unet-3d) "
                "or use --stack to denoise it slice by slice"
            )
        per_slice = False
    else:
        if int(mods[0].ndim) != 2:
            raise InputError(f"{in_path}: a {kind} needs 2D models, got 3D ones")
        per_slice = data.ndim == 3
    pixel = info.known_pixel_size
    if settings.pixel_size and pixel is None:
        raise InputError(
            f"{in_path}: the header has no pixel size, so --pixel-size cannot be "
            "used; use --bin instead"
        )
    try:
        bin_factor = settings.resolve_bin(pixel)
    except InputError as err:
        raise InputError(f"{in_path}: {err}") from None
    if settings.bin_factor == AUTO and not settings.pixel_size:
        auto = f"bin {auto_bin_text(pixel, int(bin_factor))}"
        note = f"{note}; {auto}" if note else auto
    if abs(bin_factor - 1.0) < 1e-6:
        bin_factor = 1.0
    else:
        plane = data.shape[1:] if per_slice else data.shape
        check_binned_size(in_path, plane, bin_factor, mods, settings)
    return Plan(data, info, mods, per_slice, settings.engine_kwargs(bin_factor), note)


def check_binned_size(
    path: Path, shape: Sequence[int], factor: float, models: Sequence, settings: DenoiseOptions
) -> None:
    """Refuse binning that leaves fewer than :data:`MIN_BINNED_SIDE` px along an axis.

    ``models`` is accepted for a future per-network minimum; the engine pads smaller
    images to the networks' grid itself.
    """
    from ..engine.filters import bin_shape

    need = MIN_BINNED_SIDE
    binned = bin_shape(tuple(int(n) for n in shape), float(factor))
    if min(binned) >= need:
        return
    largest = math.floor(min(shape) / need * 100) / 100
    option = (
        f"--pixel-size {settings.pixel_size:g} (binning by {factor:g})"
        if settings.pixel_size
        else f"--bin {factor:g}"
    )
    size = " x ".join(str(n) for n in shape[::-1])
    after = " x ".join(str(n) for n in binned[::-1])
    hint = f"bin by at most {largest:g}" if largest >= 1 else "do not bin it"
    raise InputError(
        f"{path}: {option} would shrink {size} px to {after} px; the result needs at least "
        f"{need} px per side ({hint})"
    )


def explicit_2d_on_volume(path: Path, models: Sequence) -> InputError:
    """The error for a chosen 2D model on a volume (the choice is never silently swapped)."""
    names = "+".join(str(getattr(m, "name", type(m).__name__)) for m in models)
    return InputError(
        f"{path} is a volume, and the chosen model {names} is 2D: add --stack to denoise it "
        "slice by slice with that model, or choose a 3D model (e.g. --model unet-3d)"
    )
