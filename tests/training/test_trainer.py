"""The training loop's steps (training/trainer.py): set-up, step, validate, checkpoint, run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.training import (
    ImagePair,
    TrainConfig,
    load_network,
    load_training_checkpoint,
    train_noise2noise,
)
from napari_cryodenoise.training.trainer import Trainer

FAST = dict(arch="unet-fast", crop=32, batch_size=2, val_every=2, warmup_steps=0, device="cpu")


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    out = []
    for i in range(2):
        clean = rng.normal(size=(64, 64))
        out.append(
            ImagePair(
                (clean + rng.normal(size=clean.shape)).astype(np.float32),
                (clean + rng.normal(size=clean.shape)).astype(np.float32),
                name=f"p{i}",
            )
        )
    return out


def test_setup_fills_defaults_and_states_the_cpu(pairs):
    trainer = Trainer(pairs, TrainConfig(arch="unet-fast", device="cpu", steps=3))
    assert (trainer.config.crop, trainer.config.batch_size, trainer.config.lr) == (192, 4, 1e-3)
    assert trainer.sampler.crop == 48  # clipped to the 64 - 16 rows beside the validation strip
    assert trainer.global_step == 0 and trainer.config.target_steps == 3
    assert trainer.model.training and trainer.checkpoint_path is None
    assert any("training on the CPU" in m for m in trainer.messages)


def test_bad_names_stop_before_any_work(pairs, tmp_path):
    out = tmp_path / "best.pt"
    with pytest.raises(InputError, match="unknown lr schedule"):
        Trainer(pairs, TrainConfig(**FAST, lr_schedule="step", output=str(out)))
    assert not out.exists()
    with pytest.raises(InputError, match="no training images"):
        Trainer([], TrainConfig(**FAST))


def test_step_updates_weights_and_counts(pairs):
    trainer = Trainer(pairs, TrainConfig(**FAST, steps=4, lr_schedule="constant", lr=1e-3))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    loss, lr = trainer.step()
    assert trainer.global_step == 1 and math.isfinite(loss) and lr == 1e-3
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert trainer.history == []  # step() trains; run() records


def test_cosine_schedule_by_steps(pairs):
    trainer = Trainer(pairs, TrainConfig(**FAST, steps=4, lr=1e-3))
    lrs = [trainer.step()[1] for _ in range(4)]
    expect = [1e-3 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / 4))) for s in range(4)]
    np.testing.assert_allclose(lrs, expect)


def test_divergence_is_one_clear_error(pairs):
    trainer = Trainer(pairs, TrainConfig(**FAST, steps=4, lr=1e12, lr_schedule="constant"))
    with pytest.raises(InputError, match=r"training diverged at step \d+ .*lower the learning"):
        for _ in range(4):
            trainer.step()


def test_validate_keeps_and_writes_the_best(pairs, tmp_path):
    out = tmp_path / "best.pt"
    trainer = Trainer(pairs, TrainConfig(**FAST, steps=2, output=str(out), val_fraction=0.25))
    val, note = trainer.validate()
    assert val is not None and trainer.best_val == val and trainer.best_step == 0
    assert note == f"step 0: new best validation loss {val:.5f}"
    assert out.is_file() and load_network(out).metadata["val_loss"] == val
    trainer.best_val = -1.0  # nothing can beat it now
    again, note = trainer.validate()
    assert again == pytest.approx(val) and note is None and trainer.best_val == -1.0
    no_val = Trainer(pairs, TrainConfig(**FAST, steps=2, val_fraction=0.0))
    assert no_val.validate() == (None, None)


def test_checkpoint_holds_the_training_state(pairs, tmp_path):
    ckpt = tmp_path / "c.ckpt.pt"
    trainer = Trainer(pairs, TrainConfig(**FAST, steps=3, checkpoint=str(ckpt)))
    trainer.step()
    trainer.step()
    assert trainer.checkpoint() == ckpt
    model, state = load_training_checkpoint(ckpt)
    assert state["step"] == 2 and state["config"]["crop"] == 32
    assert {"optimizer", "rng_torch", "rng_sampler", "rng_mask"} <= set(state)
    for k, v in trainer.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0)
    assert Trainer(pairs, TrainConfig(**FAST, steps=3)).checkpoint() is None


def test_run_equals_train_noise2noise(pairs):
    config = TrainConfig(**FAST, steps=3, seed=5, val_fraction=0.25)
    by_class = Trainer(pairs, config).run()
    by_function = train_noise2noise(pairs, config)
    assert [h["train_loss"] for h in by_class.history] == [
        h["train_loss"] for h in by_function.history
    ]
    assert by_class.val_history == by_function.val_history
    assert by_class.steps == 3 and not by_class.cancelled


def test_final_weights_are_kept_unless_they_diverged(pairs, tmp_path, monkeypatch):
    from napari_cryodenoise.training import trainer as trainer_module
    from napari_cryodenoise.training.validation import FINAL_TOLERANCE, final_is_kept

    assert final_is_kept(0.994, 0.9942) and final_is_kept(0.994, 0.990)
    assert not final_is_kept(0.994, 0.994 * (1 + 2 * FINAL_TOLERANCE))

    def run(later: float, out=None):
        """Validation says 0.994 before training and ``later`` at every later check."""
        losses = iter([0.994] + [later] * 10)
        monkeypatch.setattr(trainer_module, "validation_loss", lambda *a, **k: next(losses))
        trainer = Trainer(pairs, TrainConfig(**FAST, steps=4, output=out, val_fraction=0.25))
        start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        return trainer, start, trainer.run()

    # the later networks lose by less than the validation's noise: the final one is kept
    out = tmp_path / "kept.pt"
    trainer, start, result = run(0.9942, str(out))
    assert result.best_step == 4 and load_network(out).metadata["step"] == 4
    final = trainer.model.state_dict()
    assert all(torch.equal(result.model.state_dict()[k], final[k].cpu()) for k in final)
    assert not all(torch.equal(final[k], start[k]) for k in start)

    # a run whose validation loss went far up keeps the best network (here the start)
    trainer, start, result = run(2.0)
    assert result.best_step == 0
    assert all(torch.equal(result.model.state_dict()[k], start[k].cpu()) for k in start)
    assert any("kept step 0" in m for m in result.messages)

    # the loop ended a step before its last validation: one more is run for the choice
    losses = iter([0.994, 0.9941])
    monkeypatch.setattr(trainer_module, "validation_loss", lambda *a, **k: next(losses))
    trainer = Trainer(pairs, TrainConfig(**FAST, steps=3, val_fraction=0.25))
    trainer.validate()
    trainer.step()
    trainer.history.append({"step": 1, "train_loss": 1.0})
    assert trainer.keep_final() and (trainer.best_step, trainer.best_val) == (1, 0.9941)


def test_final_network_is_written_once_when_its_validation_was_the_best(
    pairs, tmp_path, monkeypatch
):
    from napari_cryodenoise.training import trainer as trainer_module

    writes = []
    save = trainer_module.save_network
    monkeypatch.setattr(
        trainer_module,
        "save_network",
        lambda model, path, **k: (writes.append(k["metadata"]), save(model, path, **k)),
    )
    losses = iter([0.994, 0.995, 0.990])  # start, step 2, step 4 (the last: a new best)
    monkeypatch.setattr(trainer_module, "validation_loss", lambda *a, **k: next(losses))
    out = tmp_path / "model.pt"
    config = TrainConfig(**FAST, steps=4, output=str(out), val_fraction=0.25)
    result = Trainer(pairs, config).run()
    assert result.best_step == 4 and load_network(out).metadata["step"] == 4
    assert [m["step"] for m in writes] == [0, 4]  # the start, then the final network once


def test_the_cpu_speed_note_says_seconds_left_in_words(pairs):
    """A short run said 'about 0.0 min to go'; the note now says e.g. 'about 2 s to go'."""
    from napari_cryodenoise.training.clock import format_duration

    result = train_noise2noise(pairs, TrainConfig(steps=6, **FAST))
    (note,) = [m for m in result.messages if m.startswith("CPU speed")]
    assert "min to go" not in note and note.endswith(" s to go"), note
    assert [format_duration(s) for s in (0.4, 45, 200, 7500, None)] == [
        "0 s", "45 s", "3 min 20 s", "2 h 05 min", "?"
    ]  # fmt: skip
