"""The settings of a training run: :class:`TrainConfig`, its checks and its defaults.

Torch-free, so the CLI and the napari shell can build and check a configuration (and
name the files it will write) before anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError

__all__ = [
    "LOSSES",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "TOPAZ_DEFAULTS",
    "LossName",
    "TrainConfig",
    "check_config",
    "default_checkpoint",
    "merge_resumed",
    "with_defaults",
]

LossName = Literal["l2", "l1"]

#: Known optimizers (matched without regard to case), losses and learning-rate schedules.
OPTIMIZERS = ("adam", "adamw", "adagrad", "sgd")
LOSSES = ("l2", "l1")
LR_SCHEDULES = ("cosine", "constant")
PRECISIONS = ("auto", "fp32", "bf16")
PAIRINGS = ("auto", "fixed", "random")

#: Settings a resumed run takes from its checkpoint when they are left as None.
RESUMED_KEYS = ("arch", "init", "lr", "crop", "batch_size", "optimizer", "loss")


@dataclass
class TrainConfig:
    """Everything that defines a training run (plain values; stored in checkpoints).

    Attributes
    ----------
    arch : str, optional
        Network to train from scratch: ``"unet-fast"`` (small half-resolution
        U-Net, fast on a CPU), ``"unet-fast-3d"``, ``"unet"``, ``"unet-small"``,
        ``"unet-v0.2.1"``, ``"unet-3d"``, ``"fcnn"``, ``"affine"``.
    init : str, optional
        Fine-tune instead: a pretrained alias (``"unet"``, ``"unet-3d"`` ...)
        or a model file. Overrides ``arch``. With neither ``arch`` nor
        ``init``, the pretrained ``unet`` (2D) or ``unet-3d`` (3D) is
        fine-tuned: on simulated movies this beat every from-scratch network
        for budgets up to at least 10 CPU minutes.
    mode : {"noise2noise", "masked"}
        Even/odd pairs, or blind-spot training on single images.
    steps : int, optional
        Stop at this total step count (a resumed run counts its earlier steps).
    minutes : float, optional
        Stop after this many minutes of this session. With neither ``steps``
        nor ``minutes``, 1000 steps.
    crop : int, optional
        Crop side in px (default: 2D 192 on a CPU, 256 on a GPU; 3D 48 / 96). The
        unet sees 164 px around a pixel: 192 px crops beat 128 px ones by 0.3 dB in the
        same CPU time (bench_training.py).
    batch_size : int, optional
        Crops per step (default 4 on a CPU, 8 on a GPU).
    optimizer : {"adam", "adamw", "adagrad", "sgd"}, optional
        Default adam (a resumed run: the checkpoint's).
    lr : float, optional
        Peak learning rate (default 1e-4 when fine-tuning, 1e-3 from scratch).
    lr_schedule : {"cosine", "constant"}
        Cosine decay to 5% over the run (by steps, or by time with ``minutes``)
        after a linear warm-up of ``warmup_steps``.
    warmup_steps : int
    weight_decay : float
    loss : {"l2", "l1"}, optional
        Default l2 (a resumed run: the checkpoint's).
    val_fraction : float
        Share held out for validation (whole pairs when there are enough,
        else a strip of every pair); 0 disables validation.
    val_every : int
        Validate every this many steps (and at the end).
    val_max_pixels : int
        Cap on validation pixels (fixed, evenly spread tiles).
    augment, swap : bool
        Random flips/rotations; random source/target swap.
    mask_grid : int
        Masked mode: one hidden pixel per ``mask_grid``-cell.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
    threads : int, optional
        CPU threads for torch.
    seed : int
    output : str, optional
        The trained model in the native format: during the run the one with the
        lowest validation loss so far (rewritten whenever it improves), at the end
        the final one unless it ran away (see ``Trainer.keep_final``).
    checkpoint : str, optional
        Resumable checkpoint, written every ``checkpoint_every`` steps, on
        cancel and at the end. Default: ``<output stem>.ckpt.pt`` next to the output.
    checkpoint_every : int, optional
    resume : str, optional
        Checkpoint to continue from.
    export_topaz : str, optional
        Also write the kept model as a Topaz-style state dict (``.sav``).
    snapshot_every : int, optional
        Steps between ``on_snapshot`` calls (default 50 when a callback is given).
    precision : {"auto", "fp32", "bf16"}
        Arithmetic of the forward and backward passes (the weights and the optimizer
        stay fp32): ``"bf16"`` autocasts to bfloat16, about twice the steps per second
        on CPUs with AVX-512 BF16/AMX and on recent GPUs; ``"auto"`` uses it where the
        hardware has it natively, else fp32.
    ema : float
        Decay of an exponential moving average of the weights (e.g. 0.999; 0 = off).
        Validation, the saved model and the result use the averaged weights.
    pairing : {"auto", "fixed", "random"}
        For pairs made from movies (which keep their frames in groups): ``"random"``
        draws a fresh random partition of the frame groups into two halves for every
        crop, so the network sees many independent noise pairs instead of one even/odd
        split; ``"fixed"`` always uses the even/odd sums; ``"auto"`` is random where
        groups exist.
    input_share : float
        With random pairing: the share of the frames summed into the network's input
        (the target gets the rest), rounded to whole frame groups. 0.5 trains on
        half-dose inputs; the default 0.625 (5 of 8 groups) brings the input's dose
        closer to the full-dose sum that is denoised later (measured: +0.1 dB over
        halves at 40 e/A^2, no change at 15; 0.75 makes the target so noisy that runs
        vary by 0.6 dB).
    crop_start : int, optional
        Crop side at the start of a crop schedule: crops grow linearly (on the
        network's grid) from ``crop_start`` to ``crop`` over the run.

    """

    arch: str | None = None
    init: str | None = None
    mode: Literal["noise2noise", "masked"] = "noise2noise"
    steps: int | None = None
    minutes: float | None = None
    crop: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    lr_schedule: str = "cosine"
    warmup_steps: int = 20
    weight_decay: float = 0.0
    loss: LossName | None = None
    val_fraction: float = 0.1
    val_every: int = 100
    val_max_pixels: int = 2**20
    augment: bool = True
    swap: bool = True
    mask_grid: int = 4
    device: str = "auto"
    threads: int | None = None
    seed: int = 0
    output: str | None = None
    checkpoint: str | None = None
    checkpoint_every: int | None = None
    resume: str | None = None
    export_topaz: str | None = None
    snapshot_every: int | None = None
    precision: str = "auto"
    ema: float = 0.0
    pairing: str = "auto"
    input_share: float = 0.625
    crop_start: int | None = None

    @property
    def target_steps(self) -> int | None:
        """The step count to stop at: ``steps``, else None with ``minutes``, else 1000."""
        if self.steps:
            return int(self.steps)
        return None if self.minutes else 1000

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for checkpoints and model metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


#: Topaz-Denoise's own 2D training defaults, for comparison (``TrainConfig(**TOPAZ_DEFAULTS)``).
TOPAZ_DEFAULTS: dict[str, Any] = dict(
    init="unet",
    optimizer="adagrad",
    lr=1e-3,
    lr_schedule="constant",
    warmup_steps=0,
    crop=800,
    batch_size=4,
    loss="l2",
    val_fraction=0.1,
    precision="fp32",
    pairing="fixed",
)


def check_config(config: TrainConfig) -> None:
    """Check the names in ``config`` (optimizer, loss, learning-rate schedule).

    Raises
    ------
    InputError
        One line naming the unknown value and the known ones.

    """
    if config.optimizer is not None and config.optimizer.lower() not in OPTIMIZERS:
        raise InputError(
            f"unknown optimizer {config.optimizer!r}; use adam, adamw, adagrad or sgd"
        )
    if config.loss is not None and config.loss not in LOSSES:
        raise InputError(f"unknown loss {config.loss!r}; use l2 or l1")
    if config.lr_schedule not in LR_SCHEDULES:
        raise InputError(f"unknown lr schedule {config.lr_schedule!r}; use cosine or constant")
    if config.precision not in PRECISIONS:
        raise InputError(
            f"unknown training precision {config.precision!r}; use auto, fp32 or bf16"
        )
    if config.pairing not in PAIRINGS:
        raise InputError(f"unknown pairing {config.pairing!r}; use auto, fixed or random")
    if not 0.0 <= float(config.ema) < 1.0:
        raise InputError(f"--ema must be in [0, 1) (0 = off), got {config.ema}")
    if not 0.0 < float(config.input_share) < 1.0:
        raise InputError(f"--input-share must be in (0, 1), got {config.input_share}")
    if config.crop_start is not None and config.crop_start < 8:
        raise InputError(f"--crop-start must be at least 8 px, got {config.crop_start}")


def default_checkpoint(config: TrainConfig) -> Path | None:
    """The checkpoint file: ``config.checkpoint``, else ``<output stem>.ckpt.pt``, else None."""
    if config.checkpoint:
        return Path(config.checkpoint)
    if config.output:
        out = Path(config.output)
        return out.with_name(out.name.removesuffix(out.suffix) + ".ckpt.pt")
    return None


def merge_resumed(config: TrainConfig, before: dict[str, Any]) -> TrainConfig:
    """Fill the settings of :data:`RESUMED_KEYS` left as None from a checkpoint's config."""
    values = config.to_dict()
    for key in RESUMED_KEYS:
        if values[key] is None:
            values[key] = before.get(key)
    return TrainConfig.from_dict(values)


def with_defaults(config: TrainConfig, ndim: int, gpu: bool) -> TrainConfig:
    """Fill the settings left as None for ``ndim``-D data on a GPU (or not)."""
    values = config.to_dict()
    if not config.arch and not config.init:
        values["init"] = "unet" if ndim == 2 else "unet-3d"
    fine_tune = bool(values["init"])
    if values["lr"] is None:
        values["lr"] = 1e-4 if fine_tune else 1e-3
    if values["crop"] is None:
        values["crop"] = (256 if gpu else 192) if ndim == 2 else (96 if gpu else 48)
    if values["batch_size"] is None:
        values["batch_size"] = 8 if gpu else 4
    values["optimizer"] = values["optimizer"] or "adam"
    values["loss"] = values["loss"] or "l2"
    return TrainConfig.from_dict(values)
