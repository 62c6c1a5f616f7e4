"""The unit of training data: :class:`ImagePair`, two noisy observations of one field.

Torch-free; the halves may be memory maps (read crop by crop by the sampler).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

__all__ = ["ImagePair", "PairSource"]


@dataclass
class ImagePair:
    """Two independent noisy observations of one field (2D image or 3D volume).

    Attributes
    ----------
    even, odd : numpy.ndarray
        Same shape, ``(H, W)`` or ``(D, H, W)``; any real dtype (converted to
        float32 crop by crop). ``odd`` is None for a single image (masked /
        blind-spot training).
    name : str
        Label (movie or file stem).
    shifts : numpy.ndarray or None
        ``(F, 2)`` shifts ``(dy, dx)`` applied to the chosen frames when they
        were aligned.
    files : tuple of str
        The files the halves were read from (even, odd), or the single image's file;
        empty for arrays. Errors about the pixels name them.
    groups : numpy.ndarray or None
        ``(G, *shape)`` sums of the movie's frames in ``G`` interleaved groups (frame
        ``i`` in group ``i % G``; ``G`` even, so ``even`` is the sum of the even groups),
        for pairs made from movies; lets training draw a fresh partition of the frames
        into two halves for every crop (``TrainConfig.pairing``). None otherwise.
    pixel_size : float or None
        In-plane pixel size in Angstrom from the file header; None when unknown (arrays,
        a placeholder value, formats read without it). Recorded with the training data
        in checkpoints (:mod:`.data_print`).
    shared_stats : bool
        False (default): each half is normalised with its own mean and standard deviation
        (:meth:`stats`). True: both are normalised with the ``even`` half's, e.g. for a
        supervised pair whose ``odd`` is a noise-free target at the input's scale
        (``ImagePair(noisy, clean, shared_stats=True)``), so the normalised target is
        exactly the signal part of the normalised input.

    """

    even: np.ndarray
    odd: np.ndarray | None
    name: str = ""
    shifts: np.ndarray | None = None
    files: tuple[str, ...] = ()
    groups: np.ndarray | None = None
    pixel_size: float | None = None
    shared_stats: bool = False
    _stats: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.odd is not None and self.even.shape != self.odd.shape:
            raise InputError(
                f"{self.name or 'pair'}: even and odd halves differ in shape "
                f"({self.even.shape} vs {self.odd.shape})"
            )
        if self.groups is not None and (
            self.groups.shape[1:] != self.even.shape
            or len(self.groups) < 2
            or len(self.groups) % 2
        ):
            raise InputError(
                f"{self.name or 'pair'}: frame groups of shape {self.groups.shape} do not fit "
                f"halves of shape {self.even.shape} (an even number >= 2 of groups is needed)"
            )
        if self.even.ndim not in (2, 3):
            raise InputError(
                f"{self.name or 'pair'}: expected a 2D image or a 3D volume, got shape "
                f"{self.even.shape}"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """Image shape."""
        return tuple(self.even.shape)

    @property
    def ndim(self) -> int:
        """2 for images, 3 for volumes."""
        return self.even.ndim

    def stats(self, which: str) -> tuple[float, float]:
        """Mean and standard deviation of ``"even"`` or ``"odd"`` (cached).

        Computed by the engine's :func:`~napari_cryodenoise.engine.image_stats` (float64,
        streamed in blocks), as inference normalises an image. With ``shared_stats``,
        ``"odd"`` gives the ``"even"`` half's.
        """
        if which == "odd" and self.shared_stats and self.odd is not None:
            which = "even"
        if which not in self._stats:
            arr = self.even if which == "even" else self.odd
            if arr is None:
                raise ValueError("this pair has no odd half")
            from ..engine import image_stats

            try:
                self._stats[which] = image_stats(arr)
            except InputError as err:
                raise InputError(f"{self._label(which)}: {err}") from None
        return self._stats[which]

    def partition_stats(self, share: float) -> tuple[float, float]:
        """Mean and standard deviation of the sum of a ``share`` of the frames (cached).

        From the halves: their covariance is a quarter of the signal variance of the
        whole sum, and what is left of their variance is noise, which scales with the
        dose while the signal variance scales with its square. ``share`` 0.5 is a half.
        """
        key = f"share:{share:.6f}"
        if key not in self._stats:
            if self.odd is None:
                raise ValueError("this pair has no odd half")
            step = max(1, int(np.ceil((np.prod(self.shape) / 4_000_000) ** (1 / self.ndim))))
            sub = (slice(None, None, step),) * self.ndim
            e = np.asarray(self.even[sub], np.float64)
            o = np.asarray(self.odd[sub], np.float64)
            e_mean, o_mean = float(e.mean()), float(o.mean())
            cov = float(np.mean((e - e_mean) * (o - o_mean)))
            var = 0.5 * (float(e.var()) + float(o.var()))
            signal = max(0.0, 4.0 * cov)  # of the whole sum
            noise = max(0.0, 2.0 * (var - max(cov, 0.0)))  # of the whole sum
            mean = (e_mean + o_mean) * share
            std = float(np.sqrt(share * share * signal + share * noise))
            self._stats[key] = (mean, std)
        return self._stats[key]

    def _label(self, which: str) -> str:
        index = 1 if which == "odd" and len(self.files) > 1 else 0
        if self.files:
            return self.files[index]
        name = self.name or "image"
        return f"{name} ({which} half)" if self.odd is not None else name


#: What the trainer consumes: a sequence of pairs.
PairSource = Sequence[ImagePair]
