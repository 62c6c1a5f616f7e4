"""The one frozen options object for denoising, and the pixel-size -> bin rule (no Qt, no torch).

:class:`DenoiseOptions` holds everything that decides the denoised pixels and how they
are computed (device, precision, tiling, filters, binning, layout). It is a plain,
hashable, picklable value: the command line builds one from its arguments, a batch
sends it to Dask workers, and the napari widget's
:class:`~napari_cryodenoise._napari.settings.DenoiseSettings` extends it with the
model and the view mode. :class:`FileOptions` adds what a run does with its output
files (format, existing outputs, whether the user chose the model).

The binning rule
----------------
The general pretrained 2D models (``unet``, ``unet-small``, ``fcnn``, ...)
were trained on micrographs of roughly 2-3 Angstrom per pixel. Sub-Angstrom
data from modern detectors therefore denoise best (and 5-20x faster) after
Fourier binning towards that range. :func:`auto_bin` picks the integer
factor whose binned pixel size is nearest :data:`AUTO_TARGET` = 2.4 A: in the
trained range, on its finer side, because binning too far throws away detail
that cannot be recovered while binning too little only costs time. Examples:
0.67 A/px -> 4 (2.68 A/px), 0.854 -> 3 (2.56), 1.0 -> 2 (2.0), 1.5 -> 2 (3.0),
1.7 and anything >= 2 A/px -> 1; an unknown pixel size -> 1.

:func:`bin_to_pixel_size` is the explicit variant (``--pixel-size``): the
exact, possibly fractional, factor that reaches a target pixel size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from .errors import InputError

__all__ = [
    "AUTO",
    "AUTO_TARGET",
    "FORMATS",
    "GAUSSIAN_MAX",
    "LOWPASS_MAX",
    "MAX_AUTO_BIN",
    "PRECISIONS",
    "DenoiseOptions",
    "FileOptions",
    "auto_bin",
    "auto_bin_text",
    "bin_to_pixel_size",
    "check_gaussian",
    "check_lowpass",
    "resolve_bin",
]

#: Compute precisions the engine accepts.
PRECISIONS = ("fp32", "bf16", "fp16")
#: Output formats of :class:`FileOptions`.
FORMATS = ("mrc", "tiff", "png")

#: Largest Gaussian pre-filter sigma in pixels: wider blurs away any micrograph.
GAUSSIAN_MAX = 100.0
#: Largest low-pass factor: 1000 keeps only the lowest thousandth of the spectrum.
LOWPASS_MAX = 1000.0


def check_gaussian(value: float) -> str | None:
    """Why ``value`` is not a usable Gaussian sigma in pixels (None if it is)."""
    if not math.isfinite(value) or not 0 <= value <= GAUSSIAN_MAX:
        return (
            f"the Gaussian sigma must be from 0 to {GAUSSIAN_MAX:g} pixels (0 = off), "
            f"got {value:g}"
        )
    return None


def check_lowpass(value: float) -> str | None:
    """Why ``value`` is not a usable low-pass factor (None if it is)."""
    if not math.isfinite(value) or not 1 <= value <= LOWPASS_MAX:
        return (
            f"the low-pass factor must be from 1 to {LOWPASS_MAX:g} (keeps frequencies up to "
            f"1/(2*F) cycles/px; 1 keeps all), got {value:g}"
        )
    return None


#: The value that asks for :func:`auto_bin` (``--bin auto``, the widget's default).
AUTO = "auto"
#: Pixel size (Angstrom) that :func:`auto_bin` bins towards.
AUTO_TARGET = 2.4
#: The largest factor :func:`auto_bin` chooses.
MAX_AUTO_BIN = 16


def _known(pixel_size: float | None) -> bool:
    return pixel_size is not None and math.isfinite(pixel_size) and pixel_size > 0


def auto_bin(
    pixel_size: float | None, target: float = AUTO_TARGET, max_factor: int = MAX_AUTO_BIN
) -> int:
    """Integer binning factor that brings ``pixel_size`` nearest to ``target`` Angstrom.

    Parameters
    ----------
    pixel_size : float or None
        The input's pixel size in Angstrom; None (or 0, NaN) when the header
        has none, which gives 1 (nothing to reason from: no binning).
    target : float
        Pixel size to aim for (the middle-fine part of the general models'
        2-3 A training range).
    max_factor : int
        Upper bound on the factor.

    Returns
    -------
    int
        The factor, >= 1 (ties go to the smaller factor).

    """
    if not _known(pixel_size):
        return 1
    px = float(pixel_size)  # type: ignore[arg-type]
    return min(range(1, int(max_factor) + 1), key=lambda n: (abs(px * n - target), n))


def auto_bin_text(pixel_size: float | None, factor: int | None = None) -> str:
    """Human-readable choice: ``"auto (x4 -> 2.68 A/px)"``, ``"auto (x1: no pixel size)"``."""
    if not _known(pixel_size):
        return "auto (x1: no pixel size)"
    n = auto_bin(pixel_size) if factor is None else int(factor)
    return f"auto (x{n} -> {float(pixel_size) * n:.2f} A/px)"  # type: ignore[arg-type]


def bin_to_pixel_size(pixel_size: float | None, target_pixel_size: float) -> float:
    """The exact factor ``target / pixel_size`` (1.0 when they match).

    Raises
    ------
    InputError
        If the pixel size is unknown or finer binning (upsampling) would be needed.

    """
    if not _known(pixel_size):
        raise InputError("a target pixel size needs the input's pixel size")
    factor = float(target_pixel_size) / float(pixel_size)  # type: ignore[arg-type]
    if factor < 1 - 1e-6:
        raise InputError(
            f"target pixel size {target_pixel_size} A is finer than the input's "
            f"{pixel_size} A (only binning is supported)"
        )
    return 1.0 if abs(factor - 1) < 1e-6 else factor


def resolve_bin(
    bin_factor: float | str | None = 1,
    pixel_size: float | None = None,
    target_pixel_size: float | None = None,
) -> float:
    """The factor to bin by: explicit, :data:`AUTO` or from a target pixel size.

    Parameters
    ----------
    bin_factor : float, "auto" or None
        An explicit factor (None = 1), or ``"auto"`` for :func:`auto_bin`.
    pixel_size : float, optional
        The input's pixel size (Angstrom); None when unknown.
    target_pixel_size : float, optional
        When given, wins over ``bin_factor`` (:func:`bin_to_pixel_size`).

    """
    if target_pixel_size is not None:
        return bin_to_pixel_size(pixel_size, target_pixel_size)
    if isinstance(bin_factor, str):
        if bin_factor.strip().lower() != AUTO:
            raise InputError(f"bin factor must be a number or 'auto', got {bin_factor!r}")
        return float(auto_bin(pixel_size))
    factor = float(bin_factor or 1)
    if not (factor > 0 and math.isfinite(factor)):
        raise InputError(f"bin factor must be a positive number, got {bin_factor!r}")
    return 1.0 if abs(factor - 1) < 1e-6 else factor


@dataclass(frozen=True)
class DenoiseOptions:
    """Everything that decides the denoised pixels, and how they are computed.

    Attributes
    ----------
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    precision : str
        ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    patch_size, padding, batch_size : int or None
        Engine tiling (None: automatic; the default padding makes tiling exact).
    bin_factor : float or "auto"
        Fourier binning before denoising (1: none; :data:`AUTO`: :func:`auto_bin`
        from the input's pixel size).
    pixel_size : float or None
        Target pixel size in Angstrom: bin to it instead (:func:`bin_to_pixel_size`).
    restore_size : bool
        Fourier-pad a binned result back to the input grid.
    gaussian : float
        Gaussian pre-filter sigma in (binned) pixels, 0 = off.
    lowpass : float or None
        Hard Fourier low-pass factor, None = off.
    normalize : bool
        Return standardised values instead of the input's units.
    threads : int or None
        CPU threads for torch (None: torch's default).
    stack, volume : bool
        Force 3D files to be denoised slice by slice (``stack``) or as volumes.
    ensemble : bool
        Self-ensemble: average the network over the 8 rotations/mirrors of the image
        plane (8x the compute; :mod:`napari_cryodenoise.engine.ensemble`).

    """

    device: str = "auto"
    precision: str = "fp32"
    patch_size: int | None = None
    padding: int | None = None
    batch_size: int | None = None
    bin_factor: float | str = 1.0
    pixel_size: float | None = None
    restore_size: bool = False
    gaussian: float = 0.0
    lowpass: float | None = None
    normalize: bool = False
    threads: int | None = None
    stack: bool = False
    volume: bool = False
    ensemble: bool = False

    @property
    def lowpass_factor(self) -> float | None:
        """The engine's ``lowpass`` argument (None when off)."""
        return float(self.lowpass) if self.lowpass else None

    @property
    def binned(self) -> bool:
        """Whether binning was asked for (a factor other than 1, auto, or a pixel size)."""
        return self.bin_factor != 1 or self.pixel_size is not None

    def resolve_bin(self, input_pixel_size: float | None) -> float:
        """The factor to bin an input of this pixel size by (:func:`resolve_bin`)."""
        return resolve_bin(self.bin_factor, input_pixel_size, self.pixel_size)

    def engine_kwargs(self, bin_factor: float) -> dict[str, Any]:
        """Keyword arguments of the engine's ``denoise*`` functions, for a resolved factor."""
        return dict(
            device=self.device,
            precision=self.precision,
            patch_size=self.patch_size,
            padding=self.padding,
            batch_size=self.batch_size,
            normalize=self.normalize,
            gaussian=self.gaussian,
            lowpass=self.lowpass_factor,
            bin_factor=bin_factor,
            restore_size=self.restore_size,
            threads=self.threads,
            ensemble=self.ensemble,
        )

    def with_(self, **changes: Any) -> Any:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class FileOptions(DenoiseOptions):
    """:class:`DenoiseOptions` plus what a run does with its output files.

    Attributes
    ----------
    fmt : str
        Output format, one of :data:`FORMATS`.
    overwrite, skip_existing : bool
        Replace existing outputs; or keep complete ones (an incomplete one is redone).
    explicit_model : bool
        The user chose the models, so a 2D choice is never swapped for the default
        3D model on a volume (an error says why instead).

    """

    fmt: str = "mrc"
    overwrite: bool = False
    skip_existing: bool = False
    explicit_model: bool = False
