"""Training denoisers: Noise2Noise on even/odd pairs, or blind-spot on single images.

The one entry point is :func:`train_noise2noise` (and :func:`train_masked`
for single exposures). It is used by the ``cryodenoise train`` command and by
the napari training widget, which runs it in a worker thread:

* ``on_step(status)`` is called after every step with a :class:`TrainStatus`
  (step, losses, seconds, ETA, messages) for a live loss plot;
* ``on_snapshot(model)`` receives, every ``config.snapshot_every`` steps, an
  independent CPU copy of the current network in eval mode, safe to run in
  another thread for a preview;
* ``progress(done, total)`` and ``cancel()`` follow the package's
  conventions. Cancelling writes a checkpoint (if a path is known), keeps the
  best model and raises :class:`TrainingCancelled` carrying the
  :class:`TrainResult`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..errors import Cancelled, InputError
from .checkpoints import (
    build_network,
    load_network,
    load_training_checkpoint,
    save_network,
    save_training_checkpoint,
)
from .masked import blind_spot
from .pairs import ImagePair, PairSource
from .sampling import CropSampler, split_validation

__all__ = [
    "TOPAZ_DEFAULTS",
    "TrainConfig",
    "TrainResult",
    "TrainStatus",
    "TrainingCancelled",
    "train",
    "train_masked",
    "train_noise2noise",
    "validation_loss",
]

LossName = Literal["l2", "l1"]


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
        Crop side in px (default: 2D 128 on a CPU, 256 on a GPU; 3D 48 / 96).
    batch_size : int, optional
        Crops per step (default 4 on a CPU, 8 on a GPU).
    optimizer : {"adam", "adamw", "adagrad", "sgd"}
    lr : float, optional
        Peak learning rate (default 1e-4 when fine-tuning, 1e-3 from scratch).
    lr_schedule : {"cosine", "constant"}
        Cosine decay to 5% over the run (by steps, or by time with ``minutes``)
        after a linear warm-up of ``warmup_steps``.
    warmup_steps : int
    weight_decay : float
    loss : {"l2", "l1"}
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
        Best model (lowest validation loss) in the native format, rewritten
        whenever it improves.
    checkpoint : str, optional
        Resumable checkpoint, written every ``checkpoint_every`` steps, on
        cancel and at the end. Default: ``<output stem>.ckpt.pt`` next to the output.
    checkpoint_every : int, optional
    resume : str, optional
        Checkpoint to continue from.
    export_topaz : str, optional
        Also write the best model as a Topaz-style state dict (``.sav``).
    snapshot_every : int, optional
        Steps between ``on_snapshot`` calls (default 50 when a callback is given).

    """

    arch: str | None = None
    init: str | None = None
    mode: Literal["noise2noise", "masked"] = "noise2noise"
    steps: int | None = None
    minutes: float | None = None
    crop: int | None = None
    batch_size: int | None = None
    optimizer: str = "adam"
    lr: float | None = None
    lr_schedule: str = "cosine"
    warmup_steps: int = 20
    weight_decay: float = 0.0
    loss: LossName = "l2"
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
)


@dataclass
class TrainStatus:
    """What ``on_step`` receives after every training step.

    Attributes
    ----------
    step : int
        Steps done (including those before a resume).
    total_steps : int or None
        Planned total (estimated from the speed when training for ``minutes``).
    train_loss : float
        This step's loss.
    train_loss_avg : float
        Mean loss since the previous validation.
    val_loss : float or None
        Validation loss measured at this step, else None.
    best_val_loss : float or None
        Lowest validation loss so far.
    elapsed : float
        Seconds of training in this session.
    eta : float or None
        Estimated seconds left.
    steps_per_second : float
    lr : float
        Current learning rate.
    message : str or None
        Human-readable news (CPU warning, new best model, checkpoint written).

    """

    step: int
    total_steps: int | None
    train_loss: float
    train_loss_avg: float
    val_loss: float | None
    best_val_loss: float | None
    elapsed: float
    eta: float | None
    steps_per_second: float
    lr: float
    message: str | None = None


@dataclass
class TrainResult:
    """Outcome of a training run.

    Attributes
    ----------
    model : torch.nn.Module
        Best network (lowest validation loss; the last one without
        validation), CPU, eval mode.
    best_step : int
    best_val_loss : float or None
    steps : int
        Steps done in total.
    elapsed : float
        Seconds of training in this session.
    history : list of dict
        One entry per step: ``step``, ``train_loss``, ``lr``, ``elapsed`` and,
        where validated, ``val_loss``.
    model_path, checkpoint_path, topaz_path : Path or None
        Files written.
    device : str
    cancelled : bool
    messages : list of str
    config : dict
        The settings used, with defaults filled in (:meth:`TrainConfig.to_dict`).

    """

    model: nn.Module
    best_step: int
    best_val_loss: float | None
    steps: int
    elapsed: float
    history: list[dict[str, float]] = field(default_factory=list)
    model_path: Path | None = None
    checkpoint_path: Path | None = None
    topaz_path: Path | None = None
    device: str = "cpu"
    cancelled: bool = False
    messages: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def val_history(self) -> list[tuple[int, float]]:
        """(step, validation loss) pairs."""
        return [(int(h["step"]), h["val_loss"]) for h in self.history if "val_loss" in h]


class TrainingCancelled(Cancelled):
    """Training stopped by ``cancel()``; ``result`` has the best model and the files written."""

    def __init__(self, message: str, result: TrainResult) -> None:
        super().__init__(message)
        self.result = result


# ----------------------------------------------------------------------------- helpers


def _loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-pixel loss (no reduction)."""
    if name == "l2":
        return lambda y, t: (y - t).square()
    if name == "l1":
        return lambda y, t: (y - t).abs()
    raise InputError(f"unknown loss {name!r}; use l2 or l1")


def _optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    name = config.optimizer.lower()
    wd = config.weight_decay
    if name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=config.lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=wd)
    raise InputError(f"unknown optimizer {config.optimizer!r}; use adam, adamw, adagrad or sgd")


def _lr_factor(config: TrainConfig, step: int, fraction: float) -> float:
    """Learning-rate multiplier at ``step`` when ``fraction`` of the run is done."""
    warm = 1.0
    if config.warmup_steps > 0 and step < config.warmup_steps:
        warm = 0.1 + 0.9 * step / config.warmup_steps
    if config.lr_schedule == "constant":
        return warm
    if config.lr_schedule != "cosine":
        raise InputError(f"unknown lr schedule {config.lr_schedule!r}; use cosine or constant")
    fraction = min(max(fraction, 0.0), 1.0)
    return warm * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * fraction)))


def validation_loss(
    model: nn.Module,
    sampler: CropSampler,
    *,
    loss: str = "l2",
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    mask_grid: int = 4,
    seed: int = 0,
) -> float | None:
    """Mean per-pixel loss over every validation pixel (None without validation tiles).

    The sum of the per-pixel losses over all tiles is divided by the number of
    scored pixels, so the value does not depend on how tiles are batched.
    Noise2Noise: the network maps each tile's even half to its odd half.
    Masked: a fixed (seeded) blind-spot mask, scored at the hidden pixels.
    """
    if not sampler.val_tiles:
        return None
    fn = _loss_fn(loss)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    total = 0.0
    count = 0
    gen = torch.Generator().manual_seed(seed + 7919)
    try:
        with torch.no_grad():
            for src, tgt in sampler.val_batches(batch_size):
                src, tgt = src.to(device), tgt.to(device)
                if sampler.masked:
                    src, mask = blind_spot(src, mask_grid, gen)
                    per = fn(model(src).float(), tgt) * mask
                    count += int(mask.sum().item())
                else:
                    per = fn(model(src).float(), tgt)
                    count += per.numel()
                total += float(per.double().sum().item())
    finally:
        model.train(was_training)
    return total / max(count, 1)


def _cpu_copy(model: nn.Module) -> nn.Module:
    clone = copy.deepcopy(model).to("cpu").float().eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _default_checkpoint(config: TrainConfig) -> Path | None:
    if config.checkpoint:
        return Path(config.checkpoint)
    if config.output:
        out = Path(config.output)
        return out.with_name(out.name.removesuffix(out.suffix) + ".ckpt.pt")
    return None


def _resolve_device(spec: str) -> torch.device:
    try:
        from ..engine.device import resolve_device
    except ImportError:  # pragma: no cover - engine not installed
        return torch.device("cuda" if spec != "cpu" and torch.cuda.is_available() else "cpu")
    return resolve_device(spec)


# ----------------------------------------------------------------------------- training


def train_noise2noise(
    pairs: PairSource,
    config: TrainConfig | None = None,
    *,
    val_pairs: PairSource | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    on_step: Callable[[TrainStatus], None] | None = None,
    on_snapshot: Callable[[nn.Module], None] | None = None,
) -> TrainResult:
    """Train (or fine-tune) a denoiser with Noise2Noise on even/odd pairs.

    Parameters
    ----------
    pairs : sequence of ImagePair
        Training pairs (2D images or 3D volumes), e.g. from
        :func:`~napari_cryodenoise.training.pairs.pairs_from_movies`.
    config : TrainConfig, optional
        Settings; defaults throughout when None.
    val_pairs : sequence of ImagePair, optional
        Explicit validation pairs (else ``config.val_fraction`` of ``pairs``).
    progress : callable, optional
        ``progress(step, total_steps)``.
    cancel : callable, optional
        Returns True to stop: a checkpoint is written and
        :class:`TrainingCancelled` raised (its ``result`` holds the best model).
    on_step : callable, optional
        Receives a :class:`TrainStatus` after every step.
    on_snapshot : callable, optional
        Receives a CPU copy of the current network (eval mode) every
        ``config.snapshot_every`` steps.

    Returns
    -------
    TrainResult

    """
    config = config or TrainConfig()
    if config.mode != "noise2noise":
        config = TrainConfig.from_dict({**config.to_dict(), "mode": "noise2noise"})
    if any(p.odd is None for p in pairs):
        raise InputError("Noise2Noise needs even/odd pairs; use train_masked for single images")
    return _train(pairs, config, val_pairs, progress, cancel, on_step, on_snapshot)


def train_masked(
    images: Sequence[ImagePair | np.ndarray],
    config: TrainConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    on_step: Callable[[TrainStatus], None] | None = None,
    on_snapshot: Callable[[nn.Module], None] | None = None,
) -> TrainResult:
    """Blind-spot (Noise2Self-style) training on single exposures; see :func:`train_noise2noise`.

    ``images`` are arrays or :class:`ImagePair` objects whose ``odd`` is None
    (:func:`~napari_cryodenoise.training.pairs.read_single_images`).
    """
    config = TrainConfig.from_dict({**(config or TrainConfig()).to_dict(), "mode": "masked"})
    singles = [
        ImagePair(im, None, name=f"image{i}")
        if isinstance(im, np.ndarray)
        else ImagePair(im.even, None, name=im.name, files=im.files[:1])
        for i, im in enumerate(images)
    ]
    return _train(singles, config, None, progress, cancel, on_step, on_snapshot)


def train(pairs: PairSource, config: TrainConfig, **kwargs: Any) -> TrainResult:
    """Dispatch on ``config.mode`` to :func:`train_noise2noise` or :func:`train_masked`."""
    if config.mode == "masked":
        kwargs.pop("val_pairs", None)
        return train_masked(pairs, config, **kwargs)
    return train_noise2noise(pairs, config, **kwargs)


def _make_model(config: TrainConfig, ndim: int) -> nn.Module:
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


def _with_defaults(config: TrainConfig, ndim: int, device: torch.device) -> TrainConfig:
    """Fill the settings left as None for this data and device."""
    values = config.to_dict()
    if not config.arch and not config.init:
        values["init"] = "unet" if ndim == 2 else "unet-3d"
    fine_tune = bool(values["init"])
    gpu = device.type != "cpu"
    if values["lr"] is None:
        values["lr"] = 1e-4 if fine_tune else 1e-3
    if values["crop"] is None:
        values["crop"] = (256 if gpu else 128) if ndim == 2 else (96 if gpu else 48)
    if values["batch_size"] is None:
        values["batch_size"] = 8 if gpu else 4
    return TrainConfig.from_dict(values)


class _Run:
    """State of one training session (kept together for checkpoints)."""

    def __init__(self, config: TrainConfig, model: nn.Module, device: torch.device) -> None:
        self.config = config
        self.model = model
        self.device = device
        self.optimizer = _optimizer(config, [p for p in model.parameters() if p.requires_grad])
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_step = 0
        self.best_val: float | None = None
        self.prior_elapsed = 0.0
        self.messages: list[str] = []

    def training_state(self, sampler: CropSampler, session_elapsed: float) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "best_state_dict": self.best_state,
            "best_step": self.best_step,
            "best_val_loss": self.best_val,
            "elapsed": self.prior_elapsed + session_elapsed,
            "config": self.config.to_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_sampler": sampler.get_state(),
        }

    def restore(self, state: dict[str, Any], sampler: CropSampler) -> None:
        self.step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # the new config's lr wins
            group["initial_lr"] = self.config.lr
        self.history = list(state.get("history") or [])
        self.best_state = state.get("best_state_dict")
        self.best_step = int(state.get("best_step", 0))
        self.best_val = state.get("best_val_loss")
        self.prior_elapsed = float(state.get("elapsed", 0.0))
        if state.get("rng_torch") is not None:
            torch.set_rng_state(state["rng_torch"])
        if state.get("rng_sampler") is not None:
            sampler.set_state(state["rng_sampler"])


def _train(
    pairs: Sequence[ImagePair],
    config: TrainConfig,
    val_pairs: PairSource | None,
    progress: Callable[[int, int], None] | None,
    cancel: Callable[[], bool] | None,
    on_step: Callable[[TrainStatus], None] | None,
    on_snapshot: Callable[[nn.Module], None] | None,
) -> TrainResult:
    if not pairs:
        raise InputError("no training images")
    ndim = pairs[0].ndim
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = _resolve_device(config.device)
    resume_state = None
    if config.resume:
        model, resume_state = load_training_checkpoint(config.resume)
        before = resume_state.get("config") or {}
        values = config.to_dict()
        for key in ("arch", "init", "lr", "crop", "batch_size"):
            if values[key] is None:
                values[key] = before.get(key)
        config = TrainConfig.from_dict(values)
    config = _with_defaults(config, ndim, device)
    torch.manual_seed(config.seed)
    if resume_state is not None:
        if getattr(model, "ndim", ndim) != ndim:
            raise InputError(
                f"{config.resume}: a {model.ndim}D network cannot train on {ndim}D data"
            )
    else:
        model = _make_model(config, ndim)
    from ..models import FAST_ARCHS

    if config.export_topaz and getattr(model, "arch", None) in FAST_ARCHS:
        raise InputError(
            f"--export-topaz: {model.arch} has no Topaz equivalent; train a Topaz architecture "
            "(--arch unet / unet-small, or --init unet) to export a Topaz state dict"
        )
    model.to(device).train()
    for p in model.parameters():
        p.requires_grad_(True)
    crop = int(config.crop)
    all_pairs, train_regions, val_regions = split_validation(
        pairs, config.val_fraction, crop, val_pairs
    )
    sampler = CropSampler(
        all_pairs,
        train_regions,
        val_regions,
        crop=crop,
        multiple=int(getattr(model, "grid", 1)),
        augment=config.augment,
        swap=config.swap and config.mode != "masked",
        seed=config.seed,
        val_max_pixels=config.val_max_pixels,
    )
    run = _Run(config, model, device)
    if resume_state is not None:
        run.restore(resume_state, sampler)
    fn = _loss_fn(config.loss)
    mask_gen = torch.Generator().manual_seed(config.seed + 1)
    if resume_state is not None and resume_state.get("rng_mask") is not None:
        mask_gen.set_state(resume_state["rng_mask"])

    ckpt_path = _default_checkpoint(config)
    out_path = Path(config.output) if config.output else None
    budget_s = config.minutes * 60.0 if config.minutes else None
    target_steps = config.steps if config.steps else (None if budget_s else 1000)
    if target_steps is not None and target_steps <= run.step and resume_state is not None:
        raise InputError(
            f"{config.resume}: the checkpoint is already at step {run.step}; ask for more "
            f"steps (--steps > {run.step}) or for --minutes"
        )
    metadata = {
        "trained_with": "napari-cryodenoise",
        "mode": config.mode,
        "loss": config.loss,
        "init": config.init or "",
        "ndim": ndim,
        "pairs": [p.name for p in pairs][:100],
    }
    messages: list[str] = run.messages
    if device.type == "cpu":
        messages.append(
            f"training on the CPU ({torch.get_num_threads()} threads): this is slow; a CUDA GPU "
            "is typically 20-100x faster. The ETA is shown after the first steps."
        )

    def save_ckpt() -> Path | None:
        if ckpt_path is None:
            return None
        state = run.training_state(sampler, time.perf_counter() - start)
        state["rng_mask"] = mask_gen.get_state()
        return save_training_checkpoint(ckpt_path, model, state, metadata=metadata)

    def best_model() -> nn.Module:
        final = _cpu_copy(model)
        if run.best_state is not None:
            final.load_state_dict(run.best_state)
        return final

    def write_best() -> None:
        if out_path is not None:
            save_network(
                best_model(),
                out_path,
                metadata={**metadata, "step": run.best_step, "val_loss": run.best_val},
            )

    def result(cancelled: bool, elapsed: float, topaz: Path | None = None) -> TrainResult:
        return TrainResult(
            model=best_model(),
            best_step=run.best_step if run.best_state else run.step,
            best_val_loss=run.best_val,
            steps=run.step,
            elapsed=elapsed,
            history=run.history,
            model_path=out_path if out_path is not None and out_path.exists() else None,
            checkpoint_path=ckpt_path if ckpt_path is not None and ckpt_path.exists() else None,
            topaz_path=topaz,
            device=str(device),
            cancelled=cancelled,
            messages=list(messages),
            config=config.to_dict(),
        )

    def validate() -> tuple[float | None, str | None]:
        val = validation_loss(
            model,
            sampler,
            loss=config.loss,
            device=device,
            batch_size=config.batch_size,
            mask_grid=config.mask_grid,
            seed=config.seed,
        )
        if val is None:
            return None, None
        if run.best_val is None or val < run.best_val:
            run.best_val = val
            run.best_step = run.step
            run.best_state = _state_copy(model)
            write_best()
            return val, f"step {run.step}: new best validation loss {val:.5f}"
        return val, None

    val_seconds = [0.0]
    if sampler.val_tiles and run.best_val is None:
        t_val = time.perf_counter()
        validate()  # the starting point (matters when fine-tuning a pretrained net)
        val_seconds[0] = time.perf_counter() - t_val
    snapshot_every = config.snapshot_every or (50 if on_snapshot else 0)
    start = time.perf_counter()
    start_step = run.step
    step_times: list[float] = []
    recent: list[float] = []
    pending = list(messages)

    def _reserve() -> float:
        """Seconds the next step plus a final validation will take."""
        step = float(np.median(step_times[-20:])) if step_times else 0.0
        return step + (val_seconds[0] if sampler.val_tiles else 0.0)

    while True:
        elapsed = time.perf_counter() - start
        if target_steps is not None and run.step >= target_steps:
            break
        if budget_s is not None and elapsed + _reserve() > budget_s:
            break  # the next step and the final validation would end past the budget
        if cancel is not None and cancel():
            path = save_ckpt()
            if run.best_state is None:
                write_best()
            res = result(True, elapsed)
            raise TrainingCancelled(
                f"training cancelled at step {run.step}"
                + (f"; checkpoint {path}" if path else ""),
                res,
            )
        t0 = time.perf_counter()
        if target_steps is not None:
            fraction = run.step / target_steps
        else:
            fraction = elapsed / budget_s
        lr = config.lr * _lr_factor(config, run.step, fraction)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        src, tgt = sampler.sample(config.batch_size)
        src, tgt = src.to(device, non_blocking=True), tgt.to(device, non_blocking=True)
        if config.mode == "masked":
            src, mask = blind_spot(src, config.mask_grid, mask_gen)
            per = fn(model(src).float(), tgt) * mask
            loss = per.sum() / mask.sum().clamp_min(1.0)
        else:
            loss = fn(model(src).float(), tgt).mean()
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        value = float(loss.item())
        if not math.isfinite(value):
            raise InputError(
                f"training diverged at step {run.step + 1} (loss {value}); lower the learning "
                f"rate (now {config.lr:g})"
            )
        run.step += 1
        step_times.append(time.perf_counter() - t0)
        recent.append(value)
        entry: dict[str, float] = {
            "step": run.step,
            "train_loss": value,
            "lr": lr,
            "elapsed": run.prior_elapsed + time.perf_counter() - start,
        }
        val = None
        is_last = (target_steps is not None and run.step >= target_steps) or (
            budget_s is not None and time.perf_counter() - start + _reserve() > budget_s
        )
        if sampler.val_tiles and (run.step % max(1, config.val_every) == 0 or is_last):
            t_val = time.perf_counter()
            val, note = validate()
            val_seconds[0] = time.perf_counter() - t_val
            entry["val_loss"] = val
            if note:
                pending.append(note)
        run.history.append(entry)
        if config.checkpoint_every and run.step % config.checkpoint_every == 0:
            path = save_ckpt()
            if path is not None:
                pending.append(f"step {run.step}: checkpoint {path}")
        elapsed = time.perf_counter() - start
        done_here = run.step - start_step
        sps = done_here / max(elapsed, 1e-9) if done_here else 0.0
        recent_rate = 1.0 / max(float(np.median(step_times[-20:])), 1e-9)
        if target_steps is not None:
            total = target_steps
            eta = (target_steps - run.step) / recent_rate
            if budget_s is not None:
                eta = min(eta, max(budget_s - elapsed, 0.0))
        else:
            eta = max(budget_s - elapsed, 0.0)
            total = run.step + int(eta * recent_rate)
        if done_here == 3 and device.type == "cpu":
            pending.append(
                f"CPU speed: {1.0 / recent_rate:.2f} s per step of {config.batch_size} x "
                f"{sampler.crop}px crops; about {eta / 60:.1f} min to go"
            )
        if snapshot_every and on_snapshot is not None and run.step % snapshot_every == 0:
            on_snapshot(_cpu_copy(model))
        if progress is not None:
            progress(run.step, max(total, run.step))
        if on_step is not None:
            on_step(
                TrainStatus(
                    step=run.step,
                    total_steps=total,
                    train_loss=value,
                    train_loss_avg=float(np.mean(recent)),
                    val_loss=val,
                    best_val_loss=run.best_val,
                    elapsed=run.prior_elapsed + elapsed,
                    eta=eta,
                    steps_per_second=sps,
                    lr=lr,
                    message="\n".join(pending) if pending else None,
                )
            )
        if val is not None:
            recent = []
        messages.extend(m for m in pending if m not in messages)
        pending = []
    elapsed = time.perf_counter() - start
    save_ckpt()
    write_best()
    topaz = None
    if config.export_topaz:
        topaz = export_topaz(best_model(), config.export_topaz)
    if on_snapshot is not None:
        on_snapshot(best_model())
    return result(False, elapsed, topaz)


def export_topaz(model: nn.Module, path: str | Path) -> Path:
    """Write ``model`` as a Topaz-compatible state dict (Topaz U-Nets, fcnn, affine only)."""
    from ..models import FAST_ARCHS

    if getattr(model, "arch", None) in FAST_ARCHS:
        raise InputError(
            f"{model.arch} has no Topaz equivalent; train with --arch unet/unet-small (or "
            "--init unet) to export a Topaz state dict"
        )
    from ..models import save_topaz_state_dict

    return save_topaz_state_dict(model, path)
