"""Denoising methods to compare: ``raw``, ``gaussian:SIGMA``, ``lowpass:FACTOR`` and models.

A method specification is what a user types: ``raw``, ``gaussian:2`` (pixels),
``lowpass:4`` (Topaz's ``--lowpass``: keep ``|f| <= 0.5/FACTOR`` cycles/px), a
pretrained model alias or a model file, or several models joined by ``+`` (their
outputs averaged). :func:`parse_method` turns one into a :class:`Method`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..options import check_gaussian, check_lowpass
from ..types import ProgressFn

__all__ = ["Method", "parse_method", "parse_methods"]


@dataclass
class Method:
    """A way to turn a noisy image into a cleaner one.

    Attributes
    ----------
    spec : str
        What the user typed (``raw``, ``gaussian:2``, ``lowpass:4``, ``unet``,
        ``path/to/model.pt``, ``unet+fcnn``).
    kind : str
        ``"raw"``, ``"gaussian"``, ``"lowpass"`` or ``"model"``.
    value : float
        Sigma (gaussian) or factor (lowpass).
    models : list of str
        Model aliases or paths (kind ``"model"``).

    """

    spec: str
    kind: str
    value: float = 0.0
    models: list[str] = field(default_factory=list)
    _loaded: list[Any] | None = field(default=None, repr=False)

    def apply(
        self,
        image: np.ndarray,
        *,
        device: str = "auto",
        precision: str = "fp32",
        progress: ProgressFn | None = None,
    ) -> np.ndarray:
        """Return the method's output for ``image`` (float32, same shape)."""
        if self.kind == "raw":
            return np.asarray(image, dtype=np.float32)
        if self.kind == "gaussian":
            from ..engine.filters import gaussian_filter

            # the engine's filter pads with zeros: filter about the mean so the
            # borders do not darken, as Topaz does on its normalised images
            data = np.asarray(image, dtype=np.float32)
            mean = float(data.mean(dtype=np.float64))
            return gaussian_filter(data - mean, self.value) + np.float32(mean)
        if self.kind == "lowpass":
            from ..engine.filters import fourier_lowpass

            return fourier_lowpass(np.asarray(image, dtype=np.float32), self.value)
        from ..engine import denoise
        from ..models import load_model

        if self._loaded is None:
            self._loaded = [load_model(name) for name in self.models]
        return denoise(image, self._loaded, device=device, precision=precision, progress=progress)


def parse_method(spec: str) -> Method:
    """Parse one method specification (see the module docstring)."""
    text = spec.strip()
    if not text:
        raise InputError("empty method name")
    low = text.lower()
    if low == "raw":
        return Method(text, "raw")
    for kind in ("gaussian", "lowpass"):
        if low.startswith(kind + ":") or low == kind:
            _, _, number = text.partition(":")
            try:
                value = float(number)
            except ValueError:
                raise InputError(
                    f"method {text!r}: expected {kind}:NUMBER, e.g. {kind}:2"
                ) from None
            problem = check_gaussian(value) if kind == "gaussian" else check_lowpass(value)
            if problem or value <= 0:
                problem = problem or "the number must be > 0"
                raise InputError(f"method {text!r}: {problem}")
            return Method(text, kind, value)
    models = [part.strip() for part in text.split("+")]
    if any(not part for part in models):
        raise InputError(f"method {text!r}: empty model name in an ensemble")
    return Method(text, "model", models=models)


def parse_methods(text: str | Sequence[str]) -> list[Method]:
    """Parse a comma-separated list (or several lists) of methods, keeping order, no repeats."""
    parts = [text] if isinstance(text, str) else list(text)
    specs = [s for part in parts for s in part.split(",") if s.strip()]
    if not specs:
        raise InputError("no methods given")
    seen: dict[str, Method] = {}
    for s in specs:
        seen.setdefault(s.strip(), parse_method(s))
    return list(seen.values())
