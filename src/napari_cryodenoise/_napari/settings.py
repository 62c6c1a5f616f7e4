"""Frozen denoising settings shared by the dock widget, its workers and the live view.

No Qt here: a :class:`DenoiseSettings` is a plain value that a worker thread
may read while the user edits the form, and that names the equivalent
``cryodenoise denoise`` command line. It is the package's one options object,
:class:`~napari_cryodenoise.options.DenoiseOptions`, plus the model and the view mode.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..options import PRECISIONS, DenoiseOptions

MODE_LIVE = "visible region (live)"
MODE_WHOLE = "whole image"
MODES = (MODE_LIVE, MODE_WHOLE)


#: The fields the widget sets, stores in layer metadata and restores from it.
WIDGET_FIELDS = (
    "model",
    "device",
    "precision",
    "patch_size",
    "gaussian",
    "lowpass",
    "bin_factor",
    "mode",
    "ensemble",
)


@dataclass(frozen=True)
class DenoiseSettings(DenoiseOptions):
    """Everything that decides what a denoised pixel is, plus how it is computed.

    The widget's :class:`~napari_cryodenoise.options.DenoiseOptions`: the engine
    options the widget does not set keep their defaults, and only
    :data:`WIDGET_FIELDS` go into layer metadata.

    Attributes
    ----------
    model : str
        A zoo alias (``"unet"``) or a model file path.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda:N"`` or ``"mps"``.
    precision : str
        ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    patch_size : int or None
        Whole-image mode: engine patch size; live mode: tile size. None = auto.
    gaussian : float
        Gaussian pre-filter sigma in (binned) pixels, 0 = off.
    lowpass : float
        Fourier low-pass factor, values <= 1 = off.
    bin_factor : int
        Fourier binning before denoising, 1 = off.
    mode : str
        :data:`MODE_LIVE` or :data:`MODE_WHOLE`.

    """

    # the widget's own meaning: lowpass <= 1 is off, the bin factor is an integer
    lowpass: float = 1.0  # type: ignore[assignment]
    bin_factor: int = 1  # type: ignore[assignment]
    model: str = "unet"
    mode: str = MODE_LIVE

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if int(self.bin_factor) < 1:
            raise ValueError(f"bin factor must be >= 1, got {self.bin_factor}")
        if self.gaussian < 0:
            raise ValueError(f"gaussian sigma must be >= 0, got {self.gaussian}")

    @property
    def model_label(self) -> str:
        """Short model name for layer names: the alias, or the file's stem."""
        text = str(self.model)
        if os.sep in text or "/" in text or text.endswith((".sav", ".pt", ".pth", ".ckpt")):
            return Path(text).stem
        return text

    @property
    def lowpass_factor(self) -> float | None:
        """The engine's ``lowpass`` argument (None when off)."""
        return float(self.lowpass) if self.lowpass and self.lowpass > 1 else None

    def result_key(self) -> tuple:
        """What decides the output values (not where or how fast they are computed)."""
        model = self.model
        if os.path.exists(model):  # a file: its content may change under the same name
            stat = os.stat(model)
            model = f"{os.path.abspath(model)}@{stat.st_mtime_ns}:{stat.st_size}"
        return (
            model,
            self.precision,
            float(self.gaussian),
            self.lowpass_factor,
            int(self.bin_factor),
            bool(self.ensemble),
        )

    def as_metadata(self) -> dict[str, Any]:
        """Plain dict of :data:`WIDGET_FIELDS` for ``layer.metadata`` (JSON-friendly)."""
        out = {name: getattr(self, name) for name in WIDGET_FIELDS}
        out["lowpass"] = self.lowpass_factor
        return out


def cli_command(
    settings: DenoiseSettings,
    input_path: str | os.PathLike | None,
    output_dir: str | os.PathLike | None = None,
    *,
    stack: bool = False,
) -> str:
    """The ``cryodenoise denoise`` command line that computes the same result.

    Like the widget, the command keeps binned results at the binned pixel
    size (the CLI's default; ``--restore-size`` would pad them back).

    Parameters
    ----------
    settings : DenoiseSettings
        The widget's settings.
    input_path : path-like or None
        The input file (``INPUT.mrc`` when the layer has no file).
    output_dir : path-like, optional
        Output folder (the CLI writes ``<folder>/<input stem>.mrc``); by
        default ``denoised/`` next to the input.
    stack : bool
        Denoise a 3D input slice by slice with a 2D model.

    Returns
    -------
    str
        A shell-quoted command line.

    """
    src = Path(input_path) if input_path else Path("INPUT.mrc")
    out = Path(output_dir) if output_dir else src.parent / "denoised"
    args = ["cryodenoise", "denoise", str(src), "-o", str(out), "-m", str(settings.model)]
    if settings.device != "auto":
        args += ["--device", settings.device]
    if settings.precision != "fp32":
        args += ["--precision", settings.precision]
    if settings.patch_size:
        args += ["--patch-size", str(int(settings.patch_size))]
    if settings.bin_factor > 1:
        args += ["--bin", str(int(settings.bin_factor))]
    if settings.lowpass_factor:
        args += ["--lowpass", f"{settings.lowpass_factor:g}"]
    if settings.gaussian > 0:
        args += ["--gaussian", f"{settings.gaussian:g}"]
    if settings.ensemble:
        args += ["--ensemble"]
    if stack:
        args += ["--stack"]
    return shlex.join(args)


def default_output_path(input_path: str | os.PathLike) -> Path:
    """``<stem>_denoised.mrc`` next to the input (never the input itself)."""
    src = Path(input_path)
    return src.with_name(f"{src.stem}_denoised.mrc")
