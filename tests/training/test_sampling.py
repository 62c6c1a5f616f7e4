"""Training crops and validation tiles (training/sampling.py), tested directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_cryodenoise.errors import ImageTooSmallError, InputError
from napari_cryodenoise.training.pair import ImagePair
from napari_cryodenoise.training.sampling import CropSampler, Region, split_validation


def _pairs(n=2, shape=(64, 48), seed=0):
    rng = np.random.default_rng(seed)
    return [
        ImagePair(
            rng.normal(3.0, 2.0, size=shape).astype(np.float32),
            rng.normal(-1.0, 0.5, size=shape).astype(np.float32),
            name=f"p{i}",
        )
        for i in range(n)
    ]


def test_region_shape_and_slices():
    r = Region(1, ((10, 30), (5, 25)))
    assert r.shape == (20, 20)
    assert r.slices() == (slice(10, 30), slice(5, 25))
    assert r.slices((2, 3), (4, 5)) == (slice(12, 16), slice(8, 13))


def test_split_validation_strip_whole_pairs_explicit_and_none():
    pairs = _pairs(2)
    all_pairs, train, val = split_validation(pairs, 0.25, 16)
    assert all_pairs == pairs
    assert [r.box for r in train] == [((0, 48), (0, 48))] * 2  # 64 rows - a 16-row strip
    assert [r.box for r in val] == [((48, 64), (0, 48))] * 2
    many = _pairs(10)
    _, train, val = split_validation(many, 0.2, 16)
    assert sorted(r.pair for r in val) == [3, 6]  # evenly spread, whole pairs
    assert len(train) == 8
    extra = _pairs(1, seed=1)
    all_pairs, train, val = split_validation(pairs, 0.5, 16, extra)
    assert len(all_pairs) == 3 and [r.pair for r in val] == [2] and len(train) == 2
    assert split_validation(pairs, 0.0, 16)[2] == []
    with pytest.raises(InputError, match=r"val_fraction must be in \[0, 1\)"):
        split_validation(pairs, 1.0, 16)
    with pytest.raises(InputError, match="no training pairs"):
        split_validation([], 0.1, 16)


def test_crop_size_rules():
    pairs = _pairs(1, shape=(40, 40))
    all_pairs, train, val = split_validation(pairs, 0.0, 64)
    assert CropSampler(all_pairs, train, val, crop=64).crop == 40  # clipped to the image
    assert CropSampler(all_pairs, train, val, crop=64, multiple=16).crop == 32
    assert CropSampler(all_pairs, train, val, crop=20, multiple=16).crop == 16
    tiny = _pairs(1, shape=(6, 40))
    with pytest.raises(ImageTooSmallError, match="smallest usable region is 6 px"):
        CropSampler(tiny, *split_validation(tiny, 0.0, 32)[1:], crop=32)
    with pytest.raises(InputError, match="no training data left"):
        CropSampler(pairs, [Region(0, ((0, 0), (0, 40)))], [], crop=16)


def test_samples_are_normalised_seeded_and_resumable():
    pairs = _pairs(2)
    args = split_validation(pairs, 0.0, 32)
    a = CropSampler(*args, crop=32, seed=7)
    b = CropSampler(*args, crop=32, seed=7)
    src, tgt = a.sample(64)
    assert src.shape == tgt.shape == (64, 1, 32, 32) and src.dtype == torch.float32
    torch.testing.assert_close(src, b.sample(64)[0], rtol=0, atol=0)  # same seed, same crops
    # each half normalised by its own mean and std (the halves differ in both)
    for x in (src, tgt):
        assert abs(float(x.mean())) < 0.1 and abs(float(x.std()) - 1.0) < 0.1
    state = a.get_state()
    first = a.sample(3)
    a.set_state(state)
    again = a.sample(3)
    for x, y in zip(first, again, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_no_augment_no_swap_keeps_crops_in_place():
    rng = np.random.default_rng(2)
    even = rng.normal(size=(32, 32)).astype(np.float32)
    pair = ImagePair(even, -even, name="neg")
    args = split_validation([pair], 0.0, 32)
    sampler = CropSampler(*args, crop=32, augment=False, swap=False)
    src, tgt = sampler.sample(2)
    expect = (even - even.mean()) / even.std()
    np.testing.assert_allclose(src[0, 0].numpy(), expect, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tgt, -src)


def test_shared_stats_normalise_the_target_with_the_input_statistics():
    """A supervised pair: the clean target at the input's scale stays its signal part."""
    rng = np.random.default_rng(3)
    clean = rng.normal(5.0, 1.0, size=(32, 32)).astype(np.float32)
    noisy = clean + rng.normal(0.0, 3.0, size=clean.shape).astype(np.float32)
    own = ImagePair(noisy, clean)
    shared = ImagePair(noisy, clean, shared_stats=True)
    assert own.stats("odd") != own.stats("even")
    assert shared.stats("odd") == shared.stats("even") == own.stats("even")
    args = split_validation([shared], 0.0, 32)
    src, tgt = CropSampler(*args, crop=32, augment=False, swap=False).sample(1)
    mean, std = own.stats("even")
    np.testing.assert_allclose(tgt[0, 0].numpy(), (clean - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(src[0, 0].numpy(), (noisy - mean) / std, rtol=1e-5, atol=1e-5)


def test_masked_sampler_targets_are_the_sources():
    single = [ImagePair(p.even, None, name=p.name) for p in _pairs(2)]
    args = split_validation(single, 0.25, 16)
    sampler = CropSampler(*args, crop=16)
    assert sampler.masked
    src, tgt = sampler.sample(4)
    torch.testing.assert_close(src, tgt, rtol=0, atol=0)
    for vsrc, vtgt in sampler.val_batches(3):
        assert vsrc is vtgt or torch.equal(vsrc, vtgt)


def test_validation_tiles_and_batches():
    pairs = _pairs(2)
    args = split_validation(pairs, 0.25, 16)
    sampler = CropSampler(*args, crop=16, val_max_pixels=10**9)
    assert len(sampler.val_tiles) == 2 * 3  # 16 x 48 strips in 16 x 16 tiles
    assert sampler.val_pixels == 6 * 16 * 16
    batches = list(sampler.val_batches(4))
    assert [b[0].shape[0] for b in batches] == [4, 2]
    capped = CropSampler(*args, crop=16, val_max_pixels=3 * 256)
    assert len(capped.val_tiles) == 3 and capped.val_pixels == 3 * 256


def test_constant_image_is_reported():
    flat = ImagePair(np.ones((32, 32), np.float32), np.ones((32, 32), np.float32), name="flat")
    sampler = CropSampler(*split_validation([flat], 0.0, 16), crop=16)
    with pytest.raises(InputError, match=r"flat: image is constant"):
        sampler.sample(1)
