"""What the Train widget's workers run: build pairs, train, preview (no Qt, no layers).

The widget reads its form and the layers on the main thread into a frozen
:class:`TrainData` (read-only arrays, paths) and a
:class:`~napari_cryodenoise.training.TrainConfig`; :func:`run_training` then
builds the even/odd pairs (reading movies and files happens here, in the
worker) and calls the training core exactly as ``cryodenoise train`` does.
:func:`compute_preview` denoises a small region with a snapshot of the network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.eer import DEFAULT_EER_GROUPING
from ..training import (
    ImagePair,
    MovieReader,
    TrainConfig,
    TrainingCancelled,
    TrainResult,
    TrainStatus,
    pair_from_arrays,
    pair_from_movie,
    pairs_from_files,
    pairs_from_movies,
    parse_frame_range,
    train,
)
from ..training.clock import format_duration
from ..training.existing import existing_output
from ..types import CancelFn, ProgressFn
from .compute import Prepared

SOURCE_LAYERS = "even/odd layers"
SOURCE_MOVIE = "movie layer (frames)"
SOURCE_MOVIE_FILES = "movie files"
SOURCE_HALF_FILES = "even/odd files or folders"
SOURCE_SINGLE = "single layer (blind-spot)"
SOURCES = (SOURCE_LAYERS, SOURCE_MOVIE, SOURCE_MOVIE_FILES, SOURCE_HALF_FILES, SOURCE_SINGLE)

#: Network choices: (label, value); ``init:`` fine-tunes, ``arch:`` trains from scratch.
NETWORKS = (
    ("fine-tune pretrained unet", "init:"),
    ("fine-tune pretrained unet-small", "init:unet-small"),
    ("from scratch: unet-fast", "arch:unet-fast"),
    ("from scratch: unet-small", "arch:unet-small"),
    ("from scratch: unet", "arch:unet"),
)

#: Largest preview region side (2D / 3D models), px.
PREVIEW_MAX = 512
PREVIEW_MAX_3D = 128
PREVIEW_MIN = 64

MODELS_DIR = Path.home() / "cryodenoise-models"


@dataclass(frozen=True)
class TrainData:
    """Where the training images come from; plain values, safe to hand to a worker.

    Attributes
    ----------
    kind : str
        One of :data:`SOURCES`.
    arrays : tuple of numpy.ndarray
        Read-only layer data: ``(even, odd)``, ``(movie,)`` or ``(image,)``.
    paths, odd_paths : tuple of Path
        Movie files, or even and odd half-sum files (one folder each is matched by name).
    frames : str or None
        Movie frame range ``"A:B"``.
    align : bool
        Correct global drift before summing the halves.
    gain : Path or None
        Gain reference multiplied into every movie frame.
    eer_grouping : int
        EER movie files: raw frames summed into each fraction.
    volume : bool
        3D layers are volumes (tomograms), not stacks of 2D images.
    name : str
        Label for the pairs and the default model file name.

    """

    kind: str
    arrays: tuple[Any, ...] = ()
    paths: tuple[Path, ...] = ()
    odd_paths: tuple[Path, ...] = ()
    frames: str | None = None
    align: bool = False
    gain: Path | None = None
    eer_grouping: int = DEFAULT_EER_GROUPING
    volume: bool = False
    name: str = "data"

    @property
    def masked(self) -> bool:
        """Blind-spot training on single images."""
        return self.kind == SOURCE_SINGLE

    def check(self) -> None:
        """Cheap checks before a worker starts (frame range, shapes, file lists).

        Raises
        ------
        InputError
            With a message that says what to change.

        """
        if self.kind in (SOURCE_MOVIE, SOURCE_MOVIE_FILES):
            parse_frame_range(self.frames)
        if self.kind == SOURCE_MOVIE:
            MovieReader(self.arrays[0]).indices(self.frames)
        elif self.kind == SOURCE_LAYERS:
            even, odd = self.arrays
            if even is odd:
                raise InputError("choose two different layers for the even and the odd half")
            if even.shape != odd.shape:
                raise InputError(
                    f"the even layer is {tuple(even.shape)} but the odd layer is "
                    f"{tuple(odd.shape)}; the two halves must have the same shape"
                )
        elif self.kind == SOURCE_MOVIE_FILES and not self.paths:
            raise InputError("choose one or more movie files (.mrcs, .mrc, .tif)")
        elif self.kind == SOURCE_HALF_FILES and (not self.paths or not self.odd_paths):
            raise InputError(
                "choose the even and the odd half sums: files in the same order, or one "
                "folder each (matched by file name)"
            )


def _split(array: Any, volume: bool) -> list[Any]:
    """A 2D image or volume as itself; a stack as its slices."""
    if array.ndim == 2 or volume:
        return [array]
    if array.ndim == 3:
        return [array[i] for i in range(array.shape[0])]
    raise InputError(f"expected a 2D image, a stack or a volume, got shape {tuple(array.shape)}")


def build_pairs(
    data: TrainData, *, progress: ProgressFn | None = None, cancel: CancelFn | None = None
) -> list[ImagePair]:
    """Even/odd pairs (or single images, ``odd`` None) for the training core.

    Movies and files are read here, so call it in a worker.
    """
    kind = data.kind
    if kind == SOURCE_LAYERS:
        evens, odds = (_split(a, data.volume) for a in data.arrays)
        n = len(evens)
        return [
            pair_from_arrays(e, o, name=data.name if n == 1 else f"{data.name}_{i}")
            for i, (e, o) in enumerate(zip(evens, odds, strict=True))
        ]
    if kind == SOURCE_MOVIE:
        pair = pair_from_movie(
            data.arrays[0],
            frames=data.frames,
            align=data.align,
            gain=data.gain,
            name=data.name,
            progress=progress,
            cancel=cancel,
        )
        return [pair]
    if kind == SOURCE_MOVIE_FILES:
        return pairs_from_movies(
            list(data.paths),
            frames=data.frames,
            align=data.align,
            gain=data.gain,
            eer_grouping=data.eer_grouping,
            progress=progress,
            cancel=cancel,
        )
    if kind == SOURCE_HALF_FILES:
        return pairs_from_files(list(data.paths), list(data.odd_paths))
    if kind == SOURCE_SINGLE:
        images = _split(data.arrays[0], data.volume)
        return [ImagePair(im, None, name=f"{data.name}_{i}") for i, im in enumerate(images)]
    raise InputError(f"unknown data source {kind!r}")


def run_training(
    data: TrainData,
    config: TrainConfig,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    on_step: Callable[[TrainStatus], None] | None = None,
    on_snapshot: Callable[[Any], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> TrainResult:
    """Build the pairs and train; what the widget's worker runs.

    Returns
    -------
    TrainResult
        Also when cancelled (then ``result.cancelled`` is True and the
        checkpoint and the best model so far are on disk).

    Raises
    ------
    napari_cryodenoise.errors.Cancelled
        When cancelled while reading the data (before any training).
    InputError
        Unusable data or settings (the message says what to change).

    """
    if on_stage is not None:
        on_stage(_stage_text(data))
    pairs = build_pairs(data, progress=progress, cancel=cancel)
    if config.output:
        Path(config.output).expanduser().parent.mkdir(parents=True, exist_ok=True)
    if on_stage is not None:
        on_stage(f"training on {len(pairs)} image{'s' if len(pairs) != 1 else ''}...")
    try:
        return train(
            pairs,
            config,
            progress=progress,
            cancel=cancel,
            on_step=on_step,
            on_snapshot=on_snapshot,
        )
    except TrainingCancelled as err:
        return err.result


def _stage_text(data: TrainData) -> str:
    if data.kind == SOURCE_MOVIE:
        return f"summing the even/odd frames of {data.name}{' (aligning)' if data.align else ''}"
    if data.kind == SOURCE_MOVIE_FILES:
        n = len(data.paths)
        return f"summing even/odd frames of {n} movie{'s' if n != 1 else ''}..."
    if data.kind == SOURCE_HALF_FILES:
        return "reading the even/odd half sums..."
    return "preparing the training images..."


# -- settings ------------------------------------------------------------------------------
def network_fields(choice: str) -> dict[str, str | None]:
    """``arch``/``init`` of :class:`TrainConfig` for a :data:`NETWORKS` value."""
    how, _, name = choice.partition(":")
    if how == "init":
        return {"init": name or None, "arch": None}
    if how == "arch" and name:
        return {"arch": name, "init": None}
    raise InputError(f"unknown network choice {choice!r}")


def parse_lr(text: str) -> float | None:
    """Learning rate from a text field; blank means the core's default."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            f"learning rate {text!r}: type a number such as 1e-4, or leave it blank for the "
            "default (1e-4 fine-tuning, 1e-3 from scratch)"
        ) from None
    if not (math.isfinite(value) and 0 < value < 1):
        raise InputError(f"learning rate {text}: use a value between 0 and 1, e.g. 1e-4")
    return value


def safe_name(text: str) -> str:
    """A file-name-safe version of a layer or file name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._")
    return name or "model"


def default_model_path(name: str, folder: Path | None = None) -> Path:
    """``~/cryodenoise-models/<name>_n2n.pt``, numbered so that no model or checkpoint exists."""
    folder = Path(folder) if folder is not None else MODELS_DIR
    stem = f"{safe_name(name)}_n2n"
    path, k = folder / f"{stem}.pt", 2
    while existing_output(TrainConfig(output=str(path))) is not None:
        path = folder / f"{stem}_{k}.pt"
        k += 1
    return path


# -- status text -------------------------------------------------------------------------
def status_text(status: TrainStatus) -> str:
    """One line: step, losses, speed and ETA."""
    total = f"/{status.total_steps}" if status.total_steps else ""
    parts = [f"step {status.step}{total}", f"loss {status.train_loss_avg:.4g}"]
    if status.best_val_loss is not None:
        parts.append(f"best val {status.best_val_loss:.4g}")
    if status.steps_per_second > 0:
        parts.append(f"{1.0 / status.steps_per_second:.2f} s/step")
    if status.eta is not None:
        parts.append(f"ETA {format_duration(status.eta)}")
    return " · ".join(parts)


def result_text(result: TrainResult) -> str:
    """What a finished (or cancelled) run left behind."""
    head = (
        f"cancelled at step {result.steps}"
        if result.cancelled
        else f"done: {result.steps} steps in {format_duration(result.elapsed)}"
    )
    parts = [head]
    if result.best_val_loss is not None:
        parts.append(
            f"kept the network of step {result.best_step} "
            f"(validation loss {result.best_val_loss:.4g})"
        )
    if result.model_path is not None:
        verb = "best model kept in" if result.cancelled else "model saved to"
        parts.append(f"{verb} {result.model_path}")
    if result.checkpoint_path is not None:
        parts.append(f"resumable checkpoint {result.checkpoint_path.name}")
    return "; ".join(parts)


# -- preview ---------------------------------------------------------------------------------
def preview_region(
    plane_shape: Sequence[int],
    box: tuple[tuple[float, float], tuple[float, float]] | None,
    cap: int = PREVIEW_MAX,
) -> tuple[slice, slice]:
    """The visible box clipped to the image and cut to at most ``cap`` px around its centre.

    ``box`` is ``((y0, y1), (x0, x1))`` in data pixels, or None for the whole plane.
    """
    out = []
    for axis, n in enumerate(plane_shape[-2:]):
        n = int(n)
        lo, hi = (0.0, float(n)) if box is None else box[axis]
        lo, hi = max(0.0, lo), min(float(n), hi)
        if hi <= lo:  # the image is off screen: its centre
            lo, hi = 0.0, float(n)
        size = int(min(n, cap, max(PREVIEW_MIN, round(hi - lo))))
        start = int(round((lo + hi) / 2 - size / 2))
        start = min(max(start, 0), n - size)
        out.append(slice(start, start + size))
    return out[0], out[1]


def compute_preview(
    prepared: Prepared,
    model: Any,
    region: tuple[slice, slice],
    *,
    plane: int | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Denoise ``region`` of a prepared image (or of slice ``plane`` of a volume, 3D model).

    Exactly what the whole image would give there (the engine's region API
    reads the surrounding context itself).
    """
    from ..engine import denoise_region

    full: tuple[slice, ...] = region
    volume = int(getattr(model, "ndim", 2)) == 3
    if volume:
        if prepared.image.ndim != 3 or plane is None:
            raise InputError("a 3D network needs a volume to preview on")
        full = (slice(plane, plane + 1), *region)
    out = denoise_region(
        prepared.image, model, full, stats=prepared.stats, device=device, precision="fp32"
    )
    out = np.asarray(out, np.float32)
    return out[0] if volume else out
