"""Training settings (training/config.py) and time keeping (training/clock.py): no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.training.clock import TrainClock
from napari_cryodenoise.training.config import (
    TOPAZ_DEFAULTS,
    TrainConfig,
    check_config,
    default_checkpoint,
    merge_resumed,
    with_defaults,
)


def test_config_roundtrip_ignores_unknown_keys():
    config = TrainConfig(arch="unet-fast", steps=5, lr=3e-3)
    assert TrainConfig.from_dict({**config.to_dict(), "unknown": 1}) == config
    assert TrainConfig(**TOPAZ_DEFAULTS).optimizer == "adagrad"


def test_check_config_names():
    check_config(TrainConfig(optimizer="AdamW", loss="l1", lr_schedule="constant"))
    for bad, match in (
        (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'; use adam, adamw"),
        (dict(loss="huber"), "unknown loss 'huber'; use l2 or l1"),
        (dict(lr_schedule="step"), "unknown lr schedule 'step'; use cosine or constant"),
    ):
        with pytest.raises(InputError, match=match):
            check_config(TrainConfig(**bad))


def test_default_checkpoint():
    assert default_checkpoint(TrainConfig()) is None
    assert default_checkpoint(TrainConfig(output="/m/best.pt")) == Path("/m/best.ckpt.pt")
    assert default_checkpoint(TrainConfig(output="x.pt", checkpoint="c.pt")) == Path("c.pt")


def test_with_defaults_for_data_and_device():
    cpu2 = with_defaults(TrainConfig(), 2, gpu=False)
    assert (cpu2.init, cpu2.lr, cpu2.crop, cpu2.batch_size) == ("unet", 1e-4, 192, 4)
    gpu3 = with_defaults(TrainConfig(), 3, gpu=True)
    assert (gpu3.init, gpu3.crop, gpu3.batch_size) == ("unet-3d", 96, 8)
    scratch = with_defaults(TrainConfig(arch="unet-fast"), 2, gpu=True)
    assert (scratch.init, scratch.lr, scratch.crop) == (None, 1e-3, 256)
    given = with_defaults(TrainConfig(arch="affine", lr=0.5, crop=20, batch_size=1), 2, False)
    assert (given.lr, given.crop, given.batch_size) == (0.5, 20, 1)


def test_merge_resumed_fills_only_open_settings():
    before = {"arch": "unet-fast", "init": None, "lr": 0.01, "crop": 64, "batch_size": 2}
    merged = merge_resumed(TrainConfig(crop=32, steps=9), before)
    assert (merged.arch, merged.lr, merged.crop, merged.batch_size) == ("unet-fast", 0.01, 32, 2)
    assert merged.steps == 9


def test_training_names_import_without_torch():
    code = (
        "import sys\n"
        "from napari_cryodenoise.training import TrainConfig, TrainStatus, TrainResult\n"
        "from napari_cryodenoise.training.config import default_checkpoint\n"
        "from napari_cryodenoise.training import ImagePair, parse_frame_range\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clock_by_steps():
    clock = TrainClock(target_steps=10, budget_s=None)
    assert clock.elapsed() == 0.0
    clock.start(4)  # resumed at step 4
    assert clock.fraction(5, 123.0) == 0.5
    assert not clock.reached(9) and clock.reached(10)
    assert not clock.past_budget(1e9, validating=True)
    clock.step_times += [0.5, 0.5, 2.0]  # median 0.5 s per step
    est = clock.estimate(6, elapsed=1.0)
    assert est.total == 10 and est.eta == pytest.approx(4 * 0.5)
    assert est.steps_per_second == pytest.approx(2.0) and est.recent_rate == pytest.approx(2.0)


def test_clock_by_time_budget():
    clock = TrainClock(target_steps=None, budget_s=60.0)
    clock.start(0)
    assert clock.fraction(3, 15.0) == 0.25
    clock.step_times.append(2.0)
    clock.val_seconds = 5.0
    assert clock.reserve(validating=True) == 7.0 and clock.reserve(validating=False) == 2.0
    assert clock.past_budget(54.0, validating=True) and not clock.past_budget(54.0, False)
    est = clock.estimate(10, elapsed=40.0)
    assert est.eta == 20.0 and est.total == 10 + 10  # 20 s left at 2 s per step
    steps = TrainClock(target_steps=100, budget_s=60.0)  # both: the ETA is capped by the budget
    steps.start(0)
    steps.step_times.append(2.0)
    assert steps.estimate(10, elapsed=50.0).eta == 10.0
