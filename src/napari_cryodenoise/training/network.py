"""The network a training session starts from: fresh, fine-tuned or resumed, on its device."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from .checkpoints import build_network, load_network, load_training_checkpoint
from .config import TrainConfig, merge_resumed, with_defaults

__all__ = [
    "check_resumable",
    "cpu_copy",
    "make_model",
    "resolve_device",
    "setup_network",
    "state_copy",
]


def cpu_copy(model: nn.Module) -> nn.Module:
    """An independent CPU, float32, eval-mode copy of ``model`` without gradients."""
    clone = copy.deepcopy(model).to("cpu").float().eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights of ``model`` copied to the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def resolve_device(spec: str) -> torch.device:
    """The torch device for ``"auto"``, ``"cpu"``, ``"cuda[:N]"``, ``"mps"``."""
    try:
        from ..engine.device import resolve_device as engine_resolve
    except ImportError:  # pragma: no cover - engine not installed
        return torch.device("cuda" if spec != "cpu" and torch.cuda.is_available() else "cpu")
    return engine_resolve(spec)


def make_model(config: TrainConfig, ndim: int) -> nn.Module:
    """The network to train: ``config.init`` loaded, else a fresh ``config.arch``.

    Raises
    ------
    InputError
        Unknown architecture, or a network of the wrong dimensionality for the data.

    """
    if config.init:
        model = load_network(config.init)
    else:
        arch = config.arch or ("unet-fast" if ndim == 2 else "unet-fast-3d")
        if arch == "unet-fast" and ndim == 3:
            arch = "unet-fast-3d"
        model = build_network(arch)
    if getattr(model, "ndim", ndim) != ndim:
        what = "volumes" if ndim == 3 else "2D images"
        raise InputError(
            f"network {getattr(model, 'name', '?')} is {model.ndim}D but the training data are "
            f"{what}; choose a {ndim}D architecture (e.g. "
            f"{'unet-fast-3d or --init unet-3d' if ndim == 3 else 'unet-fast or --init unet'})"
        )
    return model.float()


def check_resumable(config: TrainConfig, before: dict[str, Any], model: nn.Module) -> None:
    """Refuse to resume a checkpoint with settings that contradict it.

    The checkpoint fixes the network (``--arch``/``--init`` are not applied to it), the
    optimizer (its state is restored), the loss and the training mode (the best
    validation loss so far is compared with new ones). Settings left as None are taken
    from the checkpoint; lr, crop, batch size and budget may change (see
    :func:`~.notes.resume_notes`).

    Raises
    ------
    InputError
        One line naming the option, the checkpoint's value and what to do.

    """
    ckpt = config.resume
    arch = getattr(model, "arch", None)
    if config.arch and arch and config.arch != arch:
        raise InputError(
            f"--arch {config.arch}: the checkpoint {ckpt} trains a {arch}; leave out --arch "
            "to resume it, or leave out --resume to train a new network"
        )
    old_init = before.get("init") or None
    if config.init and config.init != old_init:
        was = f"--init {old_init}" if old_init else f"--arch {before.get('arch') or arch}"
        raise InputError(
            f"--init {config.init}: the checkpoint {ckpt} was started with {was}; leave out "
            "--init to resume it, or leave out --resume to fine-tune a new network"
        )
    for key, option in (("optimizer", "--optimizer"), ("loss", "--loss")):
        old, new = before.get(key), getattr(config, key)
        if old and new is not None and str(old).lower() != str(new).lower():
            raise InputError(
                f"{option} {new}: the checkpoint {ckpt} was trained with {option} {old}; "
                f"resume with {option} {old}"
            )
    old_mode = before.get("mode")
    if old_mode and old_mode != config.mode:
        names = {"masked": "--single (blind-spot)", "noise2noise": "noise2noise pairs"}
        raise InputError(
            f"--resume {ckpt}: the checkpoint was trained on {names.get(old_mode, old_mode)}, "
            f"not on {names.get(config.mode, config.mode)}; fine-tune its model with --init "
            "instead"
        )


def setup_network(
    config: TrainConfig, ndim: int, device: torch.device
) -> tuple[TrainConfig, nn.Module, dict[str, Any] | None]:
    """Settings with defaults, and the network to train (seeded with ``config.seed``).

    With ``config.resume`` the checkpoint's network is used, and the settings left
    as None (architecture, init, lr, crop, batch size) are taken from it.

    Returns
    -------
    config : TrainConfig
        Complete settings.
    model : torch.nn.Module
        float32, on the CPU.
    resume_state : dict or None
        The checkpoint's training state when resuming.

    Raises
    ------
    InputError
        Unknown architecture, a network that does not fit the data, a Topaz export
        asked of a network Topaz does not have.

    """
    resume_state: dict[str, Any] | None = None
    if config.resume:
        model, resume_state = load_training_checkpoint(config.resume)
        before = resume_state.get("config") or {}
        check_resumable(config, before, model)
        done = int(resume_state["step"])
        if config.target_steps is not None and config.target_steps <= done:
            raise InputError(
                f"{config.resume}: the checkpoint is already at step {done}; ask for more "
                f"steps (--steps > {done}) or for --minutes"
            )
        config = merge_resumed(config, before)
    config = with_defaults(config, ndim, device.type != "cpu")
    torch.manual_seed(config.seed)
    if resume_state is not None:
        if getattr(model, "ndim", ndim) != ndim:
            raise InputError(
                f"{config.resume}: a {model.ndim}D network cannot train on {ndim}D data"
            )
    else:
        model = make_model(config, ndim)
    from ..models import FAST_ARCHS

    if config.export_topaz and getattr(model, "arch", None) in FAST_ARCHS:
        raise InputError(
            f"--export-topaz: {model.arch} has no Topaz equivalent; train a Topaz "
            "architecture (--arch unet / unet-small, or --init unet) to export a Topaz "
            "state dict"
        )
    return config, model, resume_state
