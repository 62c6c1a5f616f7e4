"""Read the Train form into frozen inputs: :class:`TrainData` and a :class:`TrainConfig`.

Runs on the main thread: layers become read-only arrays, file fields paths;
bad choices raise :class:`~napari_cryodenoise.errors.InputError` with one line.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from napari.layers import Image

from ....errors import InputError
from ....training import TrainConfig
from ...compute import read_only
from ...measure import full_resolution, is_volume, layer_pixel_size
from ...train_jobs import (
    SOURCE_HALF_FILES,
    SOURCE_LAYERS,
    SOURCE_MOVIE,
    SOURCE_MOVIE_FILES,
    SOURCE_SINGLE,
    TrainData,
    network_fields,
    parse_lr,
)

if TYPE_CHECKING:
    from .form import TrainForm


def path_or_none(value: object) -> Path | None:
    """A path from a file field, or None when it is empty."""
    text = str(value or "").strip()
    return None if text in ("", ".") else Path(text).expanduser()


def paths(value: object) -> tuple[Path, ...]:
    """The paths of a multi-file field (empty entries dropped)."""
    return tuple(Path(p).expanduser() for p in (value or ()) if str(p).strip() not in ("", "."))


def _missing_layer_hint(kind: str) -> str:
    if kind == SOURCE_LAYERS:
        return (
            "choose the even and the odd layer (two sums of alternate movie frames; try "
            "File > Open Sample > Cryo-EM Denoise > Synthetic even/odd frame sums)"
        )
    if kind == SOURCE_MOVIE:
        return "open a movie (a stack of frames, e.g. .mrcs or .tif) or choose 'movie files'"
    return "choose an image layer (blind-spot training learns from single exposures)"


def even_base(name: str) -> str:
    """An even half's layer name without its tag: ``mic01_EVN`` -> ``mic01`` ('' if all tag)."""
    return re.sub(r"[\s_-]*(even|evn)$", "", name, flags=re.I)


def data_name(form: TrainForm) -> str:
    """A name for the data (the default model file is named after it)."""
    kind = form.source.value
    if kind == SOURCE_LAYERS and form.even.value is not None:
        return even_base(form.even.value.name) or "pair"
    layer = {SOURCE_MOVIE: form.movie.value, SOURCE_SINGLE: form.single.value}.get(kind)
    if layer is not None:
        return layer.name
    files = paths(form.movie_files.value if kind == SOURCE_MOVIE_FILES else form.even_files.value)
    return files[0].stem if files else "model"


def source_layers(form: TrainForm) -> tuple[Image | None, ...]:
    """The layers the chosen data source reads (none for file sources)."""
    return {
        SOURCE_LAYERS: (form.even.value, form.odd.value),
        SOURCE_MOVIE: (form.movie.value,),
        SOURCE_SINGLE: (form.single.value,),
    }.get(form.source.value, ())


def read_data(form: TrainForm) -> TrainData:
    """The data selection as frozen, checked :class:`TrainData` (main thread)."""
    kind = form.source.value
    name = data_name(form)
    if kind in (SOURCE_LAYERS, SOURCE_MOVIE, SOURCE_SINGLE):
        layers = source_layers(form)
        if any(layer is None for layer in layers):
            raise InputError(_missing_layer_hint(kind))
        arrays = tuple(read_only(full_resolution(layer)) for layer in layers)
        data = TrainData(kind, arrays=arrays, volume=is_volume(layers[0]), name=name)
    elif kind == SOURCE_HALF_FILES:
        data = TrainData(
            kind,
            paths=paths(form.even_files.value),
            odd_paths=paths(form.odd_files.value),
            name=name,
        )
    else:
        data = TrainData(kind, paths=paths(form.movie_files.value), name=name)
    if kind in (SOURCE_MOVIE, SOURCE_MOVIE_FILES):
        gain = path_or_none(form.gain.value)
        if gain is not None and not gain.is_file():
            raise InputError(f"gain reference {gain}: no such file")
        frames = form.frames.value.strip() or None
        data = replace(
            data,
            frames=frames,
            align=bool(form.align.value),
            gain=gain,
            eer_grouping=int(form.eer_grouping.value),
        )
    data.check()
    if kind == SOURCE_LAYERS:
        _check_pixel_sizes(*source_layers(form))
    return data


def _check_pixel_sizes(even: Image, odd: Image) -> None:
    """Refuse halves whose known pixel sizes differ (not two halves of one exposure)."""
    (a, a_known), (b, b_known) = layer_pixel_size(even), layer_pixel_size(odd)
    if a_known and b_known and not math.isclose(a, b, rel_tol=0.01):
        raise InputError(
            f"the even layer {even.name!r} has {a:g} A pixels but the odd layer {odd.name!r} "
            f"{b:g} A; the two halves of one exposure have the same pixel size: choose its "
            "odd half"
        )


def read_config(form: TrainForm, data: TrainData) -> TrainConfig:
    """The settings as a :class:`TrainConfig` (raises InputError for bad values)."""
    value = float(form.budget.value)
    steps = form.budget_unit.value == "steps"
    output = path_or_none(form.output.value)
    if output is None or output.is_dir():
        raise InputError("choose a file to save the model to (save model as ..., a .pt file)")
    if output.suffix.lower() not in (".pt", ".pth"):
        output = output.with_name(output.name + ".pt")
    every = int(form.preview_every.value)
    return TrainConfig(
        **network_fields(form.network.value),
        mode="masked" if data.masked else "noise2noise",
        steps=max(1, int(round(value))) if steps else None,
        minutes=None if steps else value,
        crop=int(form.crop.value) or None,
        batch_size=int(form.batch.value) or None,
        lr=parse_lr(form.lr.value),
        device=str(form.device.value),
        precision=str(form.precision.value),
        output=str(output),
        checkpoint_every=int(form.checkpoint_every.value) or None,
        val_every=int(form.val_every.value),
        snapshot_every=every or None,
    )
