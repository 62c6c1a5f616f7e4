"""The training loop: a :class:`Trainer` holds one session's state and runs its steps.

Building a trainer does the set-up (settings with defaults, network, device, data
sampler, optimizer, resumed state); :meth:`Trainer.run` then validates the starting
point and repeats :meth:`Trainer.step` until the step count or the time budget is
reached, validating (:meth:`Trainer.validate`) every ``val_every`` steps and at the
end, writing the best model whenever it improves and a checkpoint
(:meth:`Trainer.checkpoint`) every ``checkpoint_every`` steps, on cancel and at the end.
The public entry points are in :mod:`.noise2noise`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..types import CancelFn, ProgressFn
from .checkpoints import export_topaz, save_network, save_training_checkpoint
from .clock import TrainClock, format_duration
from .config import TrainConfig, check_config, default_checkpoint
from .data_print import DATA_KEY, data_fingerprint
from .ema import WeightAverage
from .mixed import training_dtype
from .network import cpu_copy, resolve_device, setup_network, state_copy
from .notes import resume_notes, setup_notes
from .objective import pixel_losses
from .optim import loss_fn, lr_factor, make_optimizer
from .pair import ImagePair, PairSource
from .results import TrainingCancelled, TrainingDiverged, TrainResult, TrainStatus
from .sampling import CropSampler, split_validation
from .validation import FINAL_TOLERANCE, final_is_kept, validation_loss

__all__ = ["SnapshotFn", "StatusFn", "Trainer"]

#: ``on_step(status)`` after every step.
StatusFn = Callable[[TrainStatus], None]
#: ``on_snapshot(model)``: an independent CPU copy of the network in eval mode.
SnapshotFn = Callable[[nn.Module], None]


class Trainer:
    """One training session (Noise2Noise or blind-spot), its state kept as attributes.

    Parameters
    ----------
    pairs : sequence of ImagePair
        Training images (``odd`` None for masked training).
    config : TrainConfig
        Settings; those left as None are filled in for the data and the device.
    val_pairs : sequence of ImagePair, optional
        Explicit validation pairs (else ``config.val_fraction`` of ``pairs``).
    progress, cancel, on_step, on_snapshot : callable, optional
        As in :func:`~napari_cryodenoise.training.train_noise2noise`.

    Attributes
    ----------
    config : TrainConfig
        The settings with defaults filled in (and those left open taken from a
        resumed checkpoint).
    model : torch.nn.Module
        The network being trained, on ``device``, in train mode.
    global_step : int
        Steps done, counting those before a resume.
    history : list of dict
        One entry per step (see :class:`TrainResult`).
    best_state, best_step, best_val : the network to keep and its validation loss: during
        the run the lowest so far, at the end the final one unless it is more than
        :data:`FINAL_TOLERANCE` above that (see :meth:`keep_final`).

    Raises
    ------
    InputError
        No images, unknown names in the settings, a network that does not fit the data,
        a checkpoint already at the requested step count.

    """

    def __init__(
        self,
        pairs: Sequence[ImagePair],
        config: TrainConfig,
        *,
        val_pairs: PairSource | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        on_step: StatusFn | None = None,
        on_snapshot: SnapshotFn | None = None,
    ) -> None:
        if not pairs:
            raise InputError("no training images")
        check_config(config)
        self.progress = progress
        self.cancel = cancel
        self.on_step = on_step
        self.on_snapshot = on_snapshot
        self.pairs = pairs
        self.ndim = ndim = pairs[0].ndim
        if config.threads:
            torch.set_num_threads(int(config.threads))
        self.device = device = resolve_device(config.device)
        config, model, resume_state = setup_network(config, ndim, device)
        self.config = config
        self.model = model
        model.to(device).train()
        for p in model.parameters():
            p.requires_grad_(True)
        self.amp_dtype = training_dtype(config.precision, device)
        # what "auto" became is what the result, the checkpoint and the model record
        self.config = config = replace(
            config,
            precision="fp32" if self.amp_dtype is None else "bf16",
            pairing=self._pairing(config),
        )
        self.sampler = self._sampler(val_pairs)
        self.optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])
        self.ema = WeightAverage(model, float(config.ema)) if config.ema else None
        self.global_step = 0
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_step = 0
        self._written: tuple[int, float | None] | None = None  # (step, val) at the output
        self.best_val: float | None = None
        self.prior_elapsed = 0.0
        self.messages: list[str] = setup_notes(config, pairs, self.sampler)
        self.data_print = data_fingerprint(pairs)  # recorded in checkpoints
        if resume_state is not None:
            self._restore(resume_state)
            self.messages += resume_notes(config, resume_state, self.data_print)
        self.loss = loss_fn(config.loss)
        self.mask_gen = torch.Generator().manual_seed(config.seed + 1)
        if resume_state is not None and resume_state.get("rng_mask") is not None:
            self.mask_gen.set_state(resume_state["rng_mask"])
        self.checkpoint_path = default_checkpoint(config)
        self.output_path = Path(config.output) if config.output else None
        budget_s = config.minutes * 60.0 if config.minutes else None
        self.clock = TrainClock(config.target_steps, budget_s)
        self.metadata = {
            "trained_with": "napari-cryodenoise",
            "mode": config.mode,
            "loss": config.loss,
            "init": config.init or "",
            "ndim": ndim,
            "pairs": [p.name for p in pairs][:100],
        }
        if device.type == "cpu":
            self.messages.append(
                f"training on the CPU ({torch.get_num_threads()} threads): this is slow; a "
                "CUDA GPU is typically 20-100x faster. The ETA is shown after the first steps."
            )
        self._recent: list[float] = []  # training losses since the last validation
        self._pending: list[str] = []

    # -- set-up --------------------------------------------------------------------------

    def _sampler(self, val_pairs: PairSource | None) -> CropSampler:
        config = self.config
        crop = int(config.crop)
        all_pairs, train_regions, val_regions = split_validation(
            self.pairs, config.val_fraction, crop, val_pairs
        )
        return CropSampler(
            all_pairs,
            train_regions,
            val_regions,
            crop=crop,
            multiple=int(getattr(self.model, "grid", 1)),
            augment=config.augment,
            swap=config.swap and config.mode != "masked",
            seed=config.seed,
            val_max_pixels=config.val_max_pixels,
            pairing=config.pairing,
            input_share=config.input_share,
        )

    def _pairing(self, config: TrainConfig) -> str:
        """``config.pairing`` with ``"auto"`` resolved: random where pairs keep frame groups."""
        pairing = config.pairing
        if pairing == "auto":
            pairing = "random" if any(p.groups is not None for p in self.pairs) else "fixed"
        return pairing

    def _restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's training state (the new config's lr wins)."""
        self.global_step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:
            group["initial_lr"] = self.config.lr
        self.history = list(state.get("history") or [])
        self.best_state = state.get("best_state_dict")
        self.best_step = int(state.get("best_step", 0))
        self.best_val = state.get("best_val_loss")
        self.prior_elapsed = float(state.get("elapsed", 0.0))
        if state.get("rng_torch") is not None:
            torch.set_rng_state(state["rng_torch"])
        if state.get("rng_sampler") is not None:
            self.sampler.set_state(state["rng_sampler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])

    # -- the steps -----------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since :meth:`run` started the loop (0 before)."""
        return self.clock.elapsed()

    def step(self, elapsed: float | None = None) -> tuple[float, float]:
        """One optimisation step on a fresh batch.

        Parameters
        ----------
        elapsed : float, optional
            Seconds of this session (for a time-budgeted learning-rate schedule);
            default: now.

        Returns
        -------
        loss, lr : float
            This step's training loss and learning rate.

        Raises
        ------
        InputError
            When the loss is not finite (diverged).

        """
        config = self.config
        elapsed = self.elapsed() if elapsed is None else elapsed
        fraction = self.clock.fraction(self.global_step, elapsed)
        lr = config.lr * lr_factor(config, self.global_step, fraction)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if config.crop_start:
            self.sampler.set_crop(
                round(config.crop_start + (config.crop - config.crop_start) * fraction)
            )
        src, tgt = self.sampler.sample(config.batch_size)
        src = src.to(self.device, non_blocking=True)
        tgt = tgt.to(self.device, non_blocking=True)
        per, mask = pixel_losses(
            self.model, src, tgt, self.loss, masked=config.mode == "masked",
            mask_grid=config.mask_grid, generator=self.mask_gen, device=self.device,
            dtype=self.amp_dtype,
        )  # fmt: skip
        loss = per.mean() if mask is None else (per * mask).sum() / mask.sum().clamp_min(1.0)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update()
        value = float(loss.item())
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"training diverged at step {self.global_step + 1} (loss {value}); lower the "
                f"learning rate (now {config.lr:g})"
            )
        self.global_step += 1
        return value, lr

    def validate(self) -> tuple[float | None, str | None]:
        """Validation loss now; a new best is kept and written to the output.

        Returns
        -------
        val_loss : float or None
            None without validation tiles.
        note : str or None
            A message when the loss is a new best.

        """
        config = self.config
        t0 = time.perf_counter()
        with self.averaged():
            val = validation_loss(
                self.model,
                self.sampler,
                loss=config.loss,
                device=self.device,
                batch_size=config.batch_size,
                mask_grid=config.mask_grid,
                seed=config.seed,
                autocast_dtype=self.amp_dtype,
            )
            if val is None:
                return None, None
            improved = self.best_val is None or val < self.best_val
            if improved:
                self.best_state = state_copy(self.model)
        note = None
        if improved:
            self.best_val = val
            self.best_step = self.global_step
            self.write_best()
            note = f"step {self.global_step}: new best validation loss {val:.5f}"
        self.clock.val_seconds = time.perf_counter() - t0
        return val, note

    def averaged(self):
        """Context in which ``self.model`` holds the averaged weights (EMA on; else as is)."""
        return self.ema.applied() if self.ema is not None else nullcontext()

    def training_state(self) -> dict[str, Any]:
        """Everything a resumed run needs besides the weights (see :meth:`checkpoint`)."""
        return {
            "step": self.global_step,
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "best_state_dict": self.best_state,
            "best_step": self.best_step,
            "best_val_loss": self.best_val,
            "elapsed": self.prior_elapsed + self.elapsed(),
            "config": self.config.to_dict(),
            DATA_KEY: self.data_print,
            "rng_torch": torch.get_rng_state(),
            "rng_sampler": self.sampler.get_state(),
            "rng_mask": self.mask_gen.get_state(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def checkpoint(self) -> Path | None:
        """Write the resumable checkpoint (None when no checkpoint path is known)."""
        if self.checkpoint_path is None:
            return None
        return save_training_checkpoint(
            self.checkpoint_path, self.model, self.training_state(), metadata=self.metadata
        )

    def best_model(self) -> nn.Module:
        """CPU copy of the best network so far (the current one before any validation)."""
        with self.averaged():
            final = cpu_copy(self.model)
        if self.best_state is not None:
            final.load_state_dict(self.best_state)
        return final

    def write_best(self) -> None:
        """Write the best network to ``config.output`` (if given)."""
        if self.output_path is not None:
            save_network(
                self.best_model(),
                self.output_path,
                metadata={**self.metadata, "step": self.best_step, "val_loss": self.best_val},
            )
            self._written = (self.best_step, self.best_val)

    def result(self, cancelled: bool, elapsed: float, topaz: Path | None = None) -> TrainResult:
        """The outcome so far."""
        out, ckpt = self.output_path, self.checkpoint_path
        return TrainResult(
            model=self.best_model(),
            best_step=self.best_step if self.best_state else self.global_step,
            best_val_loss=self.best_val,
            steps=self.global_step,
            elapsed=elapsed,
            history=self.history,
            model_path=out if out is not None and out.exists() else None,
            checkpoint_path=ckpt if ckpt is not None and ckpt.exists() else None,
            topaz_path=topaz,
            device=str(self.device),
            cancelled=cancelled,
            messages=list(self.messages),
            config=self.config.to_dict(),
        )

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> TrainResult:
        """Train until the step count or the time budget is reached.

        Raises
        ------
        TrainingCancelled
            When ``cancel()`` returns True (a checkpoint is written first).

        """
        if self.sampler.val_tiles and self.best_val is None:
            self.validate()  # the starting point (matters when fine-tuning a pretrained net)
        self.clock.start(self.global_step)
        self._pending = list(self.messages)
        while True:
            elapsed = self.elapsed()
            if self._finished(elapsed):
                break
            if self.cancel is not None and self.cancel():
                self._stop(elapsed)
            t0 = time.perf_counter()
            value, lr = self.step(elapsed)
            self.clock.step_times.append(time.perf_counter() - t0)
            self._after_step(value, lr)
        return self._finish()

    def _finished(self, elapsed: float) -> bool:
        """Step target reached, or no time left for another step and a final validation."""
        validating = bool(self.sampler.val_tiles)
        return self.clock.reached(self.global_step) or self.clock.past_budget(elapsed, validating)

    def _stop(self, elapsed: float) -> None:
        path = self.checkpoint()
        if self.best_state is None:
            self.write_best()
        raise TrainingCancelled(
            f"training cancelled at step {self.global_step}"
            + (f"; checkpoint {path}" if path else ""),
            self.result(True, elapsed),
        )

    def _after_step(self, value: float, lr: float) -> None:
        """Record the step: validate and checkpoint when due, report to the callbacks."""
        config = self.config
        self._recent.append(value)
        entry: dict[str, float] = {
            "step": self.global_step,
            "train_loss": value,
            "lr": lr,
            "elapsed": self.prior_elapsed + self.elapsed(),
        }
        val = None
        is_last = self._finished(self.elapsed())
        if self.sampler.val_tiles and (
            self.global_step % max(1, config.val_every) == 0 or is_last
        ):
            val, note = self.validate()
            entry["val_loss"] = val
            if note:
                self._pending.append(note)
        self.history.append(entry)
        if config.checkpoint_every and self.global_step % config.checkpoint_every == 0:
            path = self.checkpoint()
            if path is not None:
                self._pending.append(f"step {self.global_step}: checkpoint {path}")
        self._report(value, lr, val)
        if val is not None:
            self._recent = []
        self.messages.extend(m for m in self._pending if m not in self.messages)
        self._pending = []

    def _report(self, value: float, lr: float, val: float | None) -> None:
        """ETA, CPU speed note, snapshot, ``progress`` and ``on_step``."""
        config = self.config
        elapsed = self.elapsed()
        est = self.clock.estimate(self.global_step, elapsed)
        total, eta = est.total, est.eta
        if self.global_step - self.clock.start_step == 3 and self.device.type == "cpu":
            self._pending.append(
                f"CPU speed: {1.0 / est.recent_rate:.2f} s per step of {config.batch_size} x "
                f"{self.sampler.crop}px crops; about {format_duration(eta)} to go"
            )
        snapshot_every = config.snapshot_every or (50 if self.on_snapshot else 0)
        if snapshot_every and self.on_snapshot is not None:
            if self.global_step % snapshot_every == 0:
                with self.averaged():
                    self.on_snapshot(cpu_copy(self.model))
        if self.progress is not None:
            self.progress(self.global_step, max(total, self.global_step))
        if self.on_step is not None:
            self.on_step(
                TrainStatus(
                    step=self.global_step,
                    total_steps=total,
                    train_loss=value,
                    train_loss_avg=float(np.mean(self._recent)),
                    val_loss=val,
                    best_val_loss=self.best_val,
                    elapsed=self.prior_elapsed + elapsed,
                    eta=eta,
                    steps_per_second=est.steps_per_second,
                    lr=lr,
                    message="\n".join(self._pending) if self._pending else None,
                )
            )

    def keep_final(self) -> bool:
        """Keep the final weights unless they diverged (see :func:`final_is_kept`)."""
        last = self.history[-1].get("val_loss") if self.history else None
        if last is None and self.history and self.sampler.val_tiles:
            last, _ = self.validate()  # the loop ended a step before its last validation
        if self.best_state is None or last is None or self.best_val is None:
            return False
        if not final_is_kept(self.best_val, last):
            self.messages.append(f"kept step {self.best_step}: the final network's validation "
                                 f"loss is over {FINAL_TOLERANCE:.1%} worse")  # fmt: skip
            return False
        with self.averaged():
            self.best_state = state_copy(self.model)
        self.best_val, self.best_step = float(last), self.global_step
        return True

    def _finish(self) -> TrainResult:
        """Final checkpoint, kept model, Topaz export and last snapshot."""
        self.keep_final()
        elapsed = self.elapsed()
        self.checkpoint()
        if self._written != (self.best_step, self.best_val):  # else the output holds it
            self.write_best()
        topaz = None
        if self.config.export_topaz:
            topaz = export_topaz(self.best_model(), self.config.export_topaz)
        if self.on_snapshot is not None:
            self.on_snapshot(self.best_model())
        return self.result(False, elapsed, topaz)
