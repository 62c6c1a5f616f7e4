"""The widgets' and the writer's use of the output guard: saving never touches an input.

Every save action of the plugin (the Denoise widget's "Save denoised as MRC", the MRC
writer behind File > Save, the Train widget's model and checkpoint files) collects the
files its layers were read from and calls :func:`~napari_cryodenoise.io.output_guard.
check_outputs` before any work, so a save aimed at an input (directly, through a
symlink, a hard link or ``..``) is refused with one line and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..io.output_guard import check_outputs
from .layers import METADATA_KEY

__all__ = [
    "check_save",
    "check_training_outputs",
    "files_in",
    "layer_inputs",
    "refuse_existing_models",
]

#: Keys of a layer's ``metadata["cryodenoise"]`` that name files it was made from.
SOURCE_KEYS = ("path", "source_path")


def _facts(layer: Any) -> dict[str, Any]:
    if isinstance(layer, Mapping):
        meta = layer.get("metadata")
    else:
        meta = getattr(layer, "metadata", None)
    facts = (meta or {}).get(METADATA_KEY, {})
    return facts if isinstance(facts, dict) else {}


def layer_inputs(layer: Any) -> list[tuple[str, str]]:
    """Files a layer was made from, as ``(what, path)`` for :func:`check_outputs`.

    Parameters
    ----------
    layer : napari layer or dict
        A layer, or the attribute dict napari hands to a writer.

    Returns
    -------
    list of (str, str)
        Its ``metadata["cryodenoise"]`` ``path`` and ``source_path`` and the file napari
        read it from (``layer.source.path``), each once.

    """
    if layer is None:
        return []
    name = layer.get("name") if isinstance(layer, Mapping) else getattr(layer, "name", None)
    what = f"layer {name!r}" if name else "layer"
    facts = _facts(layer)
    paths = [facts.get(key) for key in SOURCE_KEYS]
    source = None if isinstance(layer, Mapping) else getattr(layer, "source", None)
    paths.append(getattr(source, "path", None))
    seen: list[tuple[str, str]] = []
    for path in paths:
        if path and str(path) not in (p for _, p in seen):
            seen.append((what, str(path)))
    return seen


def files_in(paths: Iterable[str | os.PathLike | None]) -> list[str]:
    """The given files, and the files directly inside the given folders."""
    out: list[str] = []
    for path in paths:
        if path is None or str(path).strip() in ("", "."):
            continue
        p = Path(path).expanduser()
        if p.is_dir():
            try:
                out.extend(str(child) for child in sorted(p.iterdir()) if child.is_file())
            except OSError:
                continue
        else:
            out.append(str(p))
    return out


def check_save(path: str | os.PathLike, *layers: Any, what: str = "save as") -> None:
    """Refuse to save to ``path`` if it is (or links to) a file any of ``layers`` came from.

    Raises
    ------
    napari_cryodenoise.io.output_guard.OutputPathError
        One line naming the output and the input it would overwrite (or the folder).

    """
    inputs = [item for layer in layers for item in layer_inputs(layer)]
    check_outputs([(what, path)], inputs)


def check_training_outputs(config: Any, data: Any, layers: Iterable[Any] = ()) -> None:
    """Refuse a training run whose model or checkpoint files would overwrite an input.

    Parameters
    ----------
    config : napari_cryodenoise.training.TrainConfig
        Its ``output``, checkpoint (given, or the default next to the output) and
        ``export_topaz`` are the outputs; ``init`` and ``resume`` files are inputs.
    data : napari_cryodenoise._napari.train_jobs.TrainData
        Its movie / half-sum files (files in chosen folders too) and gain reference.
    layers : iterable of napari layers
        The layers the data come from (their source files are inputs).

    Raises
    ------
    napari_cryodenoise.io.output_guard.OutputPathError
        One line naming the output and the input it would overwrite.

    """
    from ..training.config import default_checkpoint

    outputs = [
        ("save model as", config.output),
        ("checkpoint", default_checkpoint(config)),
        ("Topaz export", config.export_topaz),
    ]
    inputs: list[tuple[str, Any]] = [item for layer in layers for item in layer_inputs(layer)]
    inputs += [("training file", p) for p in files_in([*data.paths, *data.odd_paths])]
    inputs += [("gain reference", data.gain), ("resume checkpoint", config.resume)]
    if config.init and Path(config.init).expanduser().is_file():
        inputs.append(("initial model", config.init))
    check_outputs(outputs, inputs)


def refuse_existing_models(config: Any) -> None:
    """Refuse a training run whose model, checkpoint or Topaz export file exists already.

    The training core's rule (:func:`~napari_cryodenoise.training.existing.existing_output`),
    as ``cryodenoise train`` applies it: a model can be hours of training and its
    checkpoint the only way to continue it, so neither is replaced unasked (the widget
    has no ``--overwrite``: choose another name or delete the file).

    Raises
    ------
    napari_cryodenoise.errors.InputError
        One line naming the existing file.

    """
    from ..errors import InputError
    from ..training.existing import existing_output

    found = existing_output(config)
    if found is not None:
        raise InputError(found.message(TRAIN_OUTPUT_LABELS[found.kind], TRAIN_OUTPUT_WAYS))


#: What the Train widget calls each output of a training run.
TRAIN_OUTPUT_LABELS = {
    "model": "save model as",
    "checkpoint": "checkpoint",
    "topaz": "Topaz export",
}
#: What a user of the widget can do about an existing one.
TRAIN_OUTPUT_WAYS = (
    "choose another file name in 'save model as'",
    "delete that file to replace it",
)
