"""Noise2Noise / blind-spot training core: losses, validation, checkpoints, resume, cancel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_cryodenoise.errors import Cancelled, InputError
from napari_cryodenoise.models.fast_unet import FastUNet, fast_unet_halo
from napari_cryodenoise.training import (
    CropSampler,
    ImagePair,
    TrainConfig,
    TrainingCancelled,
    load_network,
    load_training_checkpoint,
    split_validation,
    train_masked,
    train_noise2noise,
    validation_loss,
)

FAST = dict(arch="unet-fast", crop=32, batch_size=2, val_every=2, warmup_steps=0, device="cpu")


def cfg(**overrides) -> TrainConfig:
    return TrainConfig(**{**FAST, **overrides})


def _signal(shape, rng):
    from scipy import ndimage

    clean = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    return clean / clean.std()


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    out = []
    for i in range(2):
        clean = _signal((64, 64), rng)
        out.append(
            ImagePair(
                (clean + rng.normal(size=clean.shape)).astype(np.float32),
                (clean + rng.normal(size=clean.shape)).astype(np.float32),
                name=f"p{i}",
            )
        )
    return out


def test_fast_arch_shapes_and_halo():
    model = FastUNet(2)
    for shape in ((1, 1, 37, 50), (2, 1, 16, 16), (1, 1, 1, 1)):
        assert model(torch.zeros(shape)).shape == shape
    assert model.grid == 16 and model.halo == fast_unet_halo(4) == 103
    assert FastUNet(3)(torch.zeros(1, 1, 9, 10, 11)).shape == (1, 1, 9, 10, 11)


def test_fast_arch_halo_is_the_receptive_field():
    torch.manual_seed(0)
    model = FastUNet(2, (4, 4, 4)).double()
    model.pool = torch.nn.AvgPool2d(2)  # same support as max-pooling, non-zero gradients
    with torch.no_grad():
        for p in model.parameters():
            p.abs_().add_(0.01)
    worst = 0
    for off in range(model.grid):
        x = torch.zeros(1, 1, 160, 160, dtype=torch.float64, requires_grad=True)
        c = 80 + off
        model(x)[0, 0, c, c].backward()
        support = np.flatnonzero(x.grad[0, 0].abs().sum(0).numpy())
        worst = max(worst, c - support.min(), support.max() - c)
    assert worst == model.halo == 47


def test_training_reduces_validation_loss(pairs):
    statuses = []
    result = train_noise2noise(
        pairs, cfg(steps=15, lr=3e-3, val_fraction=0.25), on_step=statuses.append
    )
    vals = [v for _, v in result.val_history]
    assert len(result.history) == 15 and result.steps == 15
    assert result.best_val_loss < vals[0] * 0.9  # the untrained net is validated first
    assert statuses[-1].eta == 0 and statuses[-1].step == 15
    assert any(s.message and "CPU" in s.message for s in statuses)
    assert not result.model.training
    assert next(result.model.parameters()).device.type == "cpu"


def test_validation_loss_averages_over_all_pixels(pairs):
    all_pairs, train, val = split_validation(pairs, 0.25, 16)
    assert len(val) == 2 and all(r.shape[0] == 16 for r in val)  # a strip of each pair
    sampler = CropSampler(all_pairs, train, val, crop=12, val_max_pixels=10**9)
    assert len(sampler.val_tiles) == 2 * 5  # 16x64 strips cut into 12x12 tiles (1 x 5)
    model = FastUNet(2).eval()
    by_batch = [validation_loss(model, sampler, batch_size=b) for b in (1, 3, 4, 100)]
    np.testing.assert_allclose(by_batch, by_batch[0], rtol=1e-6)
    total = count = 0.0
    with torch.no_grad():
        for i, sl in sampler.val_tiles:
            src = sampler._read(all_pairs[i], "even", sl)
            tgt = sampler._read(all_pairs[i], "odd", sl)
            out = model(torch.from_numpy(src)[None, None])[0, 0].numpy()
            total += float(((out - tgt) ** 2).sum())
            count += tgt.size
    np.testing.assert_allclose(by_batch[0], total / count, rtol=1e-5)
    # whole pairs are held out when there are enough of them
    many = pairs * 5
    _, train, val = split_validation(many, 0.2, 16)
    assert len(val) == 2 and len(train) == 8
    assert {r.pair for r in val}.isdisjoint({r.pair for r in train})


def test_crops_match_between_halves_and_are_normalised(pairs):
    same = [ImagePair(p.even, p.even.copy(), name=p.name) for p in pairs]
    all_pairs, train, val = split_validation(same, 0.0, 32)
    sampler = CropSampler(all_pairs, train, val, crop=32, seed=1)
    src, tgt = sampler.sample(16)
    assert src.shape == (16, 1, 32, 32)
    torch.testing.assert_close(src, tgt)  # same place, same flips in both halves
    pooled = np.concatenate([(p.even - p.even.mean()) / p.even.std() for p in pairs])
    assert abs(float(src.mean())) < 0.5 and 0.5 < float(src.std()) < 1.5
    assert pooled.std() == pytest.approx(1.0, rel=1e-3)


def test_resume_continues_step_count_with_identical_state(pairs, tmp_path):
    common = dict(steps=6, val_fraction=0.25)
    straight = train_noise2noise(pairs, cfg(**common, checkpoint=str(tmp_path / "a.ckpt.pt")))

    calls = []

    def cancel_at_3() -> bool:
        calls.append(1)
        return len(calls) > 3

    ckpt = tmp_path / "b.ckpt.pt"
    with pytest.raises(TrainingCancelled) as info:
        train_noise2noise(pairs, cfg(**common, checkpoint=str(ckpt)), cancel=cancel_at_3)
    assert isinstance(info.value, Cancelled)
    assert info.value.result.cancelled and info.value.result.steps == 3
    assert info.value.result.checkpoint_path == ckpt and ckpt.is_file()
    model, state = load_training_checkpoint(ckpt)
    assert state["step"] == 3 and len(state["history"]) == 3

    resumed = train_noise2noise(
        pairs,
        cfg(
            **common, checkpoint=str(ckpt), resume=str(ckpt), arch=None, crop=None, batch_size=None
        ),
    )  # arch, crop and batch size left open come from the checkpoint
    assert resumed.steps == 6 and [h["step"] for h in resumed.history] == list(range(1, 7))
    final_a, _ = load_training_checkpoint(tmp_path / "a.ckpt.pt")
    final_b, _ = load_training_checkpoint(ckpt)
    state_a, state_b = final_a.state_dict(), final_b.state_dict()
    assert list(state_a) == list(state_b)
    for k in state_a:
        torch.testing.assert_close(state_a[k], state_b[k], rtol=0, atol=0, msg=k)
    assert resumed.best_val_loss == straight.best_val_loss
    with pytest.raises(InputError, match="already at step 6"):
        train_noise2noise(pairs, cfg(**common, resume=str(ckpt)))


def test_best_model_is_written_and_loads(pairs, tmp_path):
    out = tmp_path / "best.pt"
    snapshots = []
    result = train_noise2noise(
        pairs,
        cfg(steps=2, output=str(out), snapshot_every=1),
        on_snapshot=snapshots.append,
    )
    assert result.model_path == out and out.is_file()
    assert (tmp_path / "best.ckpt.pt").is_file()
    assert len(snapshots) == 3 and not snapshots[0].training  # steps 1, 2 and the final best
    loaded = load_network(out)
    x = torch.randn(1, 1, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), result.model(x))
    assert loaded.metadata["step"] == result.best_step
    from napari_cryodenoise import models

    assert "unet-fast" in models.ARCHITECTURES  # fails (not skips) if the registry is renamed
    assert isinstance(models.load_model(out), FastUNet)


def test_topaz_architecture_loads_with_load_model_and_exports(pairs, tmp_path):
    from napari_cryodenoise.models import load_model

    out, sav = tmp_path / "affine.pt", tmp_path / "affine.sav"
    result = train_noise2noise(
        pairs, cfg(arch="affine", steps=2, output=str(out), export_topaz=str(sav))
    )
    loaded = load_model(out)
    torch.testing.assert_close(loaded.filter.weight, result.model.filter.weight)
    state = torch.load(sav, weights_only=True)
    assert set(state) == {"filter.weight", "filter.bias"}
    # fine-tune from that file
    again = train_noise2noise(pairs, cfg(arch=None, init=str(out), steps=1))
    assert again.model.arch == "affine"
    with pytest.raises(InputError, match="no Topaz equivalent"):
        train_noise2noise(pairs, cfg(steps=1, export_topaz=str(sav)))


def test_masked_mode_runs(pairs):
    result = train_masked([p.even for p in pairs], cfg(steps=3))
    assert result.steps == 3
    assert result.best_val_loss is not None and np.isfinite(result.best_val_loss)


def test_3d_training_step_on_tiny_volumes():
    rng = np.random.default_rng(0)
    vol = [
        ImagePair(
            rng.normal(size=(16, 24, 24)).astype(np.float32),
            rng.normal(size=(16, 24, 24)).astype(np.float32),
            name="tomo",
        )
    ]
    config = TrainConfig(arch="unet-fast-3d", steps=1, crop=16, batch_size=1, device="cpu")
    result = train_noise2noise(vol, config)
    assert result.model.ndim == 3 and result.steps == 1
    with pytest.raises(InputError, match="2D but the training data are volumes"):
        train_noise2noise(vol, TrainConfig(arch="affine", steps=1, crop=16))


def test_bad_settings_are_reported(pairs):
    with pytest.raises(InputError, match="unknown optimizer"):
        train_noise2noise(pairs, cfg(optimizer="rmsprop", steps=1))
    with pytest.raises(InputError, match="unknown architecture"):
        train_noise2noise(pairs, cfg(arch="resnet", steps=1))
    with pytest.raises(InputError, match="needs even/odd pairs"):
        train_noise2noise([ImagePair(pairs[0].even, None)], cfg(steps=1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_training_step(pairs):
    config = TrainConfig(arch="unet-fast", steps=2, crop=32, batch_size=2, device="cuda")
    result = train_noise2noise(pairs, config)
    assert result.device.startswith("cuda")
    assert next(result.model.parameters()).device.type == "cpu"
