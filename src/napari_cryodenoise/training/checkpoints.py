"""Saving and loading trained networks and resumable training checkpoints.

A trained network is written in the package's native format through
:func:`napari_cryodenoise.models.save_model`. A training checkpoint is the
same native file with one more key, ``"training"``, holding the optimizer
state, the step, the random states, the best weights so far and the loss
history; :func:`napari_cryodenoise.models.load_model` reads it as the model at
that step, and :func:`load_training_checkpoint` restores everything.
All files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..models import build_model, load_model, save_model
from ..models.checkpoint import FORMAT, atomic_torch_save, model_arch

__all__ = [
    "CHECKPOINT_KEY",
    "build_network",
    "export_topaz",
    "load_network",
    "load_training_checkpoint",
    "save_network",
    "save_training_checkpoint",
]

#: Key of the training state inside a native model file.
CHECKPOINT_KEY = "training"


def build_network(arch: str, **options: Any) -> nn.Module:
    """Build a fresh network of any architecture that ``models.build_model`` knows.

    Raises
    ------
    InputError
        For an unknown architecture (the message lists the known ones).

    """
    try:
        return build_model(arch, **options)
    except ValueError as err:
        raise InputError(str(err)) from err


def _payload(model: nn.Module, state_dict: dict | None, metadata: dict | None) -> dict[str, Any]:
    arch, options = model_arch(model)
    meta = dict(metadata or {})
    meta.setdefault("name", getattr(model, "name", arch))
    state = state_dict if state_dict is not None else model.state_dict()
    return {
        "format": FORMAT,
        "arch": arch,
        "options": options,
        "state_dict": {k: v.detach().to("cpu", torch.float32).clone() for k, v in state.items()},
        "metadata": meta,
    }


def save_network(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    metadata: dict | None = None,
    state_dict: dict | None = None,
) -> Path:
    """Write ``model`` (or ``state_dict`` for its architecture) natively, atomically."""
    if state_dict is None:
        return save_model(model, path, metadata=metadata)
    path = Path(path)
    atomic_torch_save(_payload(model, state_dict, metadata), path)
    return path


def load_network(path_or_alias: str | os.PathLike) -> nn.Module:
    """Load a network by alias or file; same as :func:`~napari_cryodenoise.models.load_model`."""
    return load_model(path_or_alias)


def save_training_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    training: dict[str, Any],
    *,
    metadata: dict | None = None,
) -> Path:
    """Write a resumable checkpoint (native model file plus a ``"training"`` entry)."""
    payload = _payload(model, None, metadata)
    payload[CHECKPOINT_KEY] = training
    path = Path(path)
    atomic_torch_save(payload, path)
    return path


def load_training_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_training_checkpoint`.

    Returns
    -------
    model : torch.nn.Module
        The network at the checkpoint's step (cpu, fp32).
    training : dict
        Optimizer state, step, random states, best weights, history, config.

    Raises
    ------
    InputError
        If the file is missing or not a training checkpoint.

    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the checkpoint file (MODEL.ckpt.pt)")
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(
            f"{path}: not a readable checkpoint (empty, truncated or not written by "
            "cryodenoise train)"
        ) from err
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or CHECKPOINT_KEY not in obj:
        raise InputError(
            f"{path}: not a training checkpoint (a finished model file has no optimizer state; "
            "to fine-tune it use --init instead of --resume)"
        )
    model = build_network(obj["arch"], **dict(obj.get("options") or {}))
    model.load_state_dict(obj["state_dict"], strict=True)
    meta = dict(obj.get("metadata") or {})
    model.name = str(meta.get("name", path.stem))
    return model.float(), obj[CHECKPOINT_KEY]


def export_topaz(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model`` as a Topaz-compatible state dict (Topaz U-Nets, fcnn, affine only)."""
    from ..models import FAST_ARCHS

    if getattr(model, "arch", None) in FAST_ARCHS:
        raise InputError(
            f"{model.arch} has no Topaz equivalent; train with --arch unet/unet-small (or "
            "--init unet) to export a Topaz state dict"
        )
    from ..models import save_topaz_state_dict

    return save_topaz_state_dict(model, path)
