"""Training levers (issue 15): frame groups, random partitions, EMA, bf16, crop schedule."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.training import ImagePair, TrainConfig, pair_from_movie
from napari_cryodenoise.training.ema import WeightAverage
from napari_cryodenoise.training.mixed import training_dtype
from napari_cryodenoise.training.pairs import group_count, pairs_from_movies
from napari_cryodenoise.training.sampling import CropSampler, split_validation
from napari_cryodenoise.training.trainer import Trainer

FAST = dict(arch="unet-fast", crop=32, batch_size=2, val_every=2, warmup_steps=0, device="cpu")


def movie(frames=8, shape=(64, 64), seed=0):
    rng = np.random.default_rng(seed)
    clean = rng.uniform(1, 3, size=shape)
    return rng.poisson(clean, size=(frames, *shape)).astype(np.float32)


# -- frame groups ------------------------------------------------------------------------


def test_group_count_is_even_and_needs_four_frames():
    assert [group_count(n, 8) for n in (2, 3, 4, 5, 8, 40)] == [0, 0, 4, 4, 8, 8]
    assert group_count(40, 7) == 6 and group_count(40, 0) == 0


def test_movie_pair_keeps_interleaved_frame_groups():
    frames = movie(frames=10)
    pair = pair_from_movie(frames, frame_groups=4)
    assert pair.groups.shape == (4, 64, 64)
    # frame i in group i % 4; even/odd halves are the sums of the even/odd groups
    np.testing.assert_allclose(pair.groups[1], frames[1] + frames[5] + frames[9])
    np.testing.assert_allclose(pair.even, frames[0::2].sum(0))
    np.testing.assert_allclose(pair.odd, frames[1::2].sum(0))
    # without groups: the same halves
    plain = pair_from_movie(frames, frame_groups=0)
    assert plain.groups is None
    np.testing.assert_allclose(plain.even, pair.even)


def test_group_memory_budget_drops_groups_of_later_movies():
    movies = [movie(seed=i) for i in range(3)]
    per = 8 * 64 * 64 * 4
    pairs = pairs_from_movies(movies, group_memory=int(1.5 * per))
    assert [p.groups is not None for p in pairs] == [True, False, False]


def test_groups_must_fit_the_halves():
    a = np.zeros((8, 8), np.float32)
    with pytest.raises(InputError, match="frame groups"):
        ImagePair(a, a, groups=np.zeros((3, 8, 8), np.float32))


# -- random partitions -------------------------------------------------------------------


def sampler_for(pair, pairing, seed=0, crop=32):
    pairs, train, val = split_validation([pair], 0.0, crop)
    return CropSampler(pairs, train, val, crop=crop, seed=seed, augment=False, swap=False,
                       pairing=pairing)  # fmt: skip


def test_random_partitions_draw_different_balanced_halves():
    pair = pair_from_movie(movie(frames=8), frame_groups=8)
    sampler = sampler_for(pair, "random", crop=64)  # the whole image: no position to find
    (mean_e, std_e), (mean_o, std_o) = pair.stats("even"), pair.stats("odd")
    sums = {}
    for mask in range(256):
        members = tuple(g for g in range(8) if mask >> g & 1)
        if len(members) == 4:
            sums[members] = pair.groups[list(members)].sum(0)
    seen = set()
    for _ in range(12):
        src, tgt = sampler.sample(1)
        a = src[0, 0].numpy() * std_e + mean_e
        c = tgt[0, 0].numpy() * std_o + mean_o
        found = [m for m, v in sums.items() if np.allclose(v, a, atol=1e-3)]
        assert len(found) == 1
        rest = tuple(g for g in range(8) if g not in found[0])
        np.testing.assert_allclose(c, sums[rest], atol=1e-3)  # the complement
        seen.add(found[0])
    assert len(seen) > 3  # fresh partitions, not one fixed split


def test_fixed_pairing_ignores_groups():
    pair = pair_from_movie(movie(frames=8), frame_groups=8)
    plain = ImagePair(pair.even, pair.odd)
    a = sampler_for(pair, "fixed", seed=3).sample(2)
    b = sampler_for(plain, "fixed", seed=3).sample(2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_auto_pairing_is_random_for_movies_and_fixed_for_half_sums():
    pair = pair_from_movie(movie(frames=8), frame_groups=8)
    config = TrainConfig(**FAST, steps=1, pairing="auto")
    assert Trainer([pair], config).sampler.pairing == "random"
    plain = ImagePair(pair.even, pair.odd)
    assert Trainer([plain], config).sampler.pairing == "fixed"


# -- EMA -----------------------------------------------------------------------------------


def test_weight_average_follows_the_weights_and_restores_them():
    net = torch.nn.Linear(2, 1)
    ema = WeightAverage(net, 0.5)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update()  # first update: decay min(0.5, 2/11)
    expected = start + (1 - 2 / 11) * 1.0
    torch.testing.assert_close(ema.shadow[0], expected)
    with ema.applied():
        torch.testing.assert_close(net.weight, expected)
    torch.testing.assert_close(net.weight, start + 1.0)  # restored


def test_ema_training_saves_the_averaged_weights(tmp_path):
    pair = pair_from_movie(movie(frames=8), frame_groups=8)
    out = tmp_path / "m.pt"
    trainer = Trainer(
        [pair], TrainConfig(**FAST, steps=4, ema=0.9, lr=1e-3, val_fraction=0.25, output=str(out))
    )
    result = trainer.run()
    with trainer.ema.applied():
        averaged = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    live = trainer.model.state_dict()
    assert any(not torch.equal(averaged[k], live[k]) for k in live)
    # the result is the best (validated) averaged network, never the raw last weights
    assert trainer.best_state is not None
    for k, v in result.model.state_dict().items():
        torch.testing.assert_close(v, trainer.best_state[k])


def test_ema_state_survives_a_resume(tmp_path):
    pair = pair_from_movie(movie(frames=8), frame_groups=8)
    ckpt = tmp_path / "c.ckpt.pt"
    cfg = dict(FAST, ema=0.9, lr=1e-3, val_fraction=0.0, seed=4, lr_schedule="constant")
    full = Trainer([pair], TrainConfig(**cfg, steps=4)).run()
    Trainer([pair], TrainConfig(**cfg, steps=2, checkpoint=str(ckpt))).run()
    resumed = Trainer([pair], TrainConfig(**cfg, steps=4, resume=str(ckpt))).run()
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v)


# -- bf16 and the crop schedule ------------------------------------------------------------


def test_training_dtype_rules():
    cpu = torch.device("cpu")
    assert training_dtype("fp32", cpu) is None
    assert training_dtype("bf16", cpu) is torch.bfloat16
    assert training_dtype("auto", cpu) in (None, torch.bfloat16)
    with pytest.raises(InputError, match="precision"):
        training_dtype("fp8", cpu)


def test_bf16_step_keeps_fp32_weights_and_learns():
    pair = pair_from_movie(movie(frames=8), frame_groups=8)
    trainer = Trainer([pair], TrainConfig(**FAST, steps=3, precision="bf16", lr=1e-3))
    assert trainer.amp_dtype is torch.bfloat16
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss, _ = trainer.step()
    assert np.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    after = list(trainer.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_crop_schedule_grows_on_the_grid():
    pair = pair_from_movie(movie(frames=8, shape=(96, 96)), frame_groups=8)
    trainer = Trainer([pair], TrainConfig(**{**FAST, "crop": 64}, steps=4, crop_start=32,
                                          val_fraction=0.0))  # fmt: skip
    sizes = []
    for _ in range(4):
        trainer.step()
        sizes.append(trainer.sampler.crop)
    grid = int(trainer.model.grid)
    assert sizes == sorted(sizes) and sizes[0] == 32 and sizes[-1] <= 64
    assert all(s % grid == 0 for s in sizes)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(precision="fp8"), "precision"),
        (dict(pairing="odd"), "pairing"),
        (dict(ema=1.0), "ema"),
        (dict(crop_start=4), "crop-start"),
        (dict(input_share=1.0), "input-share"),
    ],
)
def test_bad_lever_settings_are_one_line(bad, message):
    from napari_cryodenoise.training.config import check_config

    with pytest.raises(InputError, match=message):
        check_config(TrainConfig(**bad))


def test_cli_takes_the_levers(tmp_path):
    from napari_cryodenoise.io import write_mrc

    path = tmp_path / "m.mrcs"
    write_mrc(path, movie(frames=8, shape=(96, 96)))
    out = tmp_path / "net.pt"
    args = [sys.executable, "-m", "napari_cryodenoise", "train", "--movies", str(path),
            "-o", str(out), "--arch", "unet-fast", "--crop", "64", "--crop-start", "32",
            "--batch-size", "1", "--steps", "2", "--precision", "bf16", "--pairing", "random",
            "--ema", "0.9", "--frame-groups", "4", "--device", "cpu", "--quiet"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.exists()
    bad = subprocess.run(args[:-1] + ["--ema", "2"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "--ema" in bad.stderr


def test_input_share_sums_more_groups_into_the_source_and_never_swaps():
    pair = pair_from_movie(movie(frames=8), frame_groups=8)
    pairs, train, val = split_validation([pair], 0.0, 64)
    sampler = CropSampler(pairs, train, val, crop=64, seed=1, augment=False, swap=True,
                          pairing="random", input_share=0.75)  # fmt: skip
    (m6, s6), (m2, s2) = pair.partition_stats(0.75), pair.partition_stats(0.25)
    for _ in range(6):
        src, tgt = sampler.sample(1)
        a = src[0, 0].numpy() * s6 + m6
        c = tgt[0, 0].numpy() * s2 + m2
        # 6 of the 8 groups in the source, the other 2 in the target, every time
        np.testing.assert_allclose(a + c, pair.groups.sum(0), rtol=1e-4, atol=1e-2)
        assert a.mean() > 2 * c.mean()


def test_fixed_halves_still_swap_under_an_unequal_input_share():
    pair = pair_from_movie(movie(frames=8), frame_groups=8)
    pairs, train, val = split_validation([pair], 0.0, 64)
    sampler = CropSampler(pairs, train, val, crop=64, seed=1, augment=False, swap=True,
                          pairing="fixed", input_share=0.625)  # fmt: skip
    even = (np.asarray(pair.even) - pair.stats("even")[0]) / pair.stats("even")[1]
    firsts = {bool(np.allclose(sampler.sample(1)[0][0, 0].numpy(), even, atol=1e-4))
              for _ in range(12)}  # fmt: skip
    assert firsts == {True, False}  # even -> odd and odd -> even both occur


def test_partition_stats_match_the_sums_they_describe():
    rng = np.random.default_rng(2)
    clean = rng.uniform(1, 4, size=(128, 128))
    frames = rng.poisson(clean, size=(16, 128, 128)).astype(np.float32)
    pair = pair_from_movie(frames)
    for share, k in ((0.5, 4), (0.75, 6), (0.25, 2)):
        total = pair.groups[:k].sum(0)
        mean, std = pair.partition_stats(share)
        assert mean == pytest.approx(total.mean(), rel=0.02)
        assert std == pytest.approx(total.std(), rel=0.1)
    assert pair.partition_stats(0.5)[1] == pytest.approx(pair.stats("even")[1], rel=0.05)
