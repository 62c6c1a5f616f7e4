"""The time per training step measured before training (training/step_time.py)."""

from __future__ import annotations

import math

import pytest
import torch

from napari_cryodenoise.errors import Cancelled, InputError
from napari_cryodenoise.training import StepEstimate, TrainConfig, estimate_step_seconds

TINY = dict(arch="unet-fast", crop=32, batch_size=1, device="cpu")


def test_2d_estimate_times_real_steps_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "model.pt"
    config = TrainConfig(
        **TINY,
        output=str(out),
        checkpoint_every=1,
        export_topaz=str(tmp_path / "x.sav"),
        resume=None,
        minutes=8,
    )
    before = torch.get_rng_state()
    est = estimate_step_seconds(config, 2, warmup=1, steps=2)
    assert isinstance(est, StepEstimate)
    assert math.isfinite(est.seconds) and est.seconds > 0
    assert (est.device, est.crop, est.batch_size, est.ndim) == ("cpu", 32, 1, 2)
    assert list(tmp_path.iterdir()) == []  # no model, checkpoint or export
    assert config.output == str(out)  # the caller's settings are untouched
    assert torch.equal(torch.get_rng_state(), before)


def test_3d_estimate_and_masked_mode():
    est = estimate_step_seconds(
        TrainConfig(arch="unet-fast-3d", crop=16, batch_size=1, device="cpu"), 3, steps=1
    )
    assert est.ndim == 3 and est.crop == 16 and est.seconds > 0
    assert "1 x 16^3 px" in est.text()
    masked = estimate_step_seconds(TrainConfig(**TINY, mode="masked"), 2, steps=1)
    assert masked.seconds > 0


def test_a_loss_that_diverges_on_the_synthetic_data_is_still_timed():
    """Random data and a high learning rate may give a NaN loss: the step still took its time."""
    est = estimate_step_seconds(TrainConfig(**{**TINY, "lr": 1e12}), 2, steps=3)
    assert est.seconds > 0


def test_texts():
    est = StepEstimate(0.26, "cpu", 128, 4)
    assert est.text(8, None) == (
        "about 0.26 s per step of 4 x 128 px crops on cpu: ~1846 steps in 8 min"
    )
    assert est.line(8, None) == "~0.26 s per step (cpu, 4 x 128 px) -> ~1846 steps in 8 min"
    assert est.line(None, 500) == "~0.26 s per step (cpu, 4 x 128 px) -> 500 steps in ~2.2 min"
    assert "1000 steps" in est.text()  # training's default without a budget


def test_errors_are_one_line_and_cancel_stops():
    with pytest.raises(InputError, match="unknown optimizer"):
        estimate_step_seconds(TrainConfig(**TINY, optimizer="lion"))
    with pytest.raises(InputError, match="3D"):
        estimate_step_seconds(TrainConfig(**{**TINY, "arch": "unet-fast-3d"}), 2)
    with pytest.raises(Cancelled):
        estimate_step_seconds(TrainConfig(**TINY), cancel=lambda: True)


def test_missing_pretrained_weights_are_not_downloaded(monkeypatch):
    from napari_cryodenoise.models import zoo

    monkeypatch.setattr(zoo, "find_weights", lambda name: None)

    def no_download(*a, **k):
        raise AssertionError("an estimate must not download weights")

    monkeypatch.setattr(zoo, "fetch_weights", no_download)
    monkeypatch.setattr(zoo, "weights_path", no_download)
    est = estimate_step_seconds(
        TrainConfig(init="unet-small", crop=32, batch_size=1, device="cpu"), steps=1
    )
    assert est.seconds > 0 and est.crop == 32
