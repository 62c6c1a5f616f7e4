"""The options that every engine entry point takes, as one frozen object (no torch needed).

:class:`EngineOptions` holds how to run the networks (device, precision, tile geometry,
memory, threads) and what to apply around them (Gaussian pre-filter, normalised output).
What to do to the image before (binning, low-pass) and the callbacks (progress, cancel)
are per call and stay separate. The user-level denoising options
(``napari_cryodenoise.options``) map onto this object; :meth:`EngineOptions.as_kwargs`
gives the keyword arguments of :func:`~napari_cryodenoise.engine.denoise` and friends.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["EngineOptions"]


@dataclass(frozen=True)
class EngineOptions:
    """How the engine runs the networks over an image.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    precision : {"fp32", "bf16", "fp16"}
        Compute precision (fp16 falls back to bf16 on the CPU).
    patch_size : int, optional
        Output pixels per tile and axis (rounded up to the grid); default: the
        largest that fits the memory budget.
    padding : int, optional
        Context per tile side (rounded up to the grid); default: the models'
        receptive radius, which makes tiling exact.
    batch_size : int, optional
        Tiles per forward pass (default 1 on the CPU, from memory on GPUs).
    normalize : bool
        Return the result in normalised units instead of the input's.
    gaussian : float
        Gaussian pre-filter sigma in pixels (0: none).
    memory_limit : int, optional
        Bytes of activations per tile (default: from free memory, at most 1 GiB on CPU).
    threads : int, optional
        Torch intra-op threads.
    fast : bool
        Use the lean U-Net evaluator for Topaz-topology U-Nets (same result).
    ensemble : bool
        Self-ensemble: average the models over the 8 rotations/mirrors of the image
        plane (:mod:`.ensemble`; 8x the compute).

    Raises
    ------
    InputError
        For a negative ``gaussian``.

    """

    device: str | torch.device = "auto"
    precision: str | torch.dtype = "fp32"
    patch_size: int | None = None
    padding: int | None = None
    batch_size: int | None = None
    normalize: bool = False
    gaussian: float = 0.0
    memory_limit: int | None = None
    threads: int | None = None
    fast: bool = True
    ensemble: bool = False

    def __post_init__(self) -> None:
        gaussian = float(self.gaussian or 0.0)
        if gaussian < 0:
            raise InputError(f"gaussian sigma must be >= 0, got {self.gaussian}")
        object.__setattr__(self, "gaussian", gaussian)
        object.__setattr__(self, "normalize", bool(self.normalize))
        object.__setattr__(self, "ensemble", bool(self.ensemble))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names (the keyword arguments the entry points forward)."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def pick(cls, values: Mapping[str, Any]) -> EngineOptions:
        """Options from the entries of ``values`` that are option names (others ignored)."""
        return cls(**{k: values[k] for k in cls.names() if k in values})

    @classmethod
    def take(cls, kwargs: MutableMapping[str, Any]) -> EngineOptions:
        """Options from ``kwargs``, removing their entries from it (the rest stays)."""
        return cls(**{k: kwargs.pop(k) for k in cls.names() if k in kwargs})

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments for the engine's entry points."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
