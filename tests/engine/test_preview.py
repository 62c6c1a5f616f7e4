"""The coarse live preview and its intensity match to full-resolution tiles (no Qt)."""

import numpy as np
import pytest

from napari_cryodenoise.engine import preview as preview_module
from napari_cryodenoise.engine.preview import (
    CoarsePreview,
    PreviewMatch,
    block_mean,
    coarse_preview,
    fourier_gaussian,
    preview_shape,
)


def _block_means(image: np.ndarray, k: int) -> np.ndarray:
    h, w = image.shape[0] // k * k, image.shape[1] // k * k
    return image[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def test_preview_shape_keeps_aspect_and_small_images():
    assert preview_shape((4096, 3000), 512) == (512, 375)
    assert preview_shape((100, 80), 512) == (100, 80)


def test_block_mean_pre_shrinks_by_half_the_factor():
    image = np.arange(64 * 48, dtype=np.float32).reshape(64, 48)
    out = block_mean(image, (8, 6))  # factor 8 -> blocks of 4
    assert out.shape == (16, 12)
    assert out[0, 0] == pytest.approx(image[:4, :4].mean())
    assert block_mean(image, (32, 24)) is image  # factor 2: nothing to pre-shrink


def test_coarse_preview_2d_is_full_size_with_its_detail_and_3d_stays_small(monkeypatch):
    import torch

    from napari_cryodenoise.models import build_model

    torch.manual_seed(0)
    model = build_model("unet-custom", ndim=2, depth=2, first_kernel=3, last_kernel=3, nf=4)
    image = np.random.default_rng(0).normal(size=(200, 180)).astype(np.float32)
    monkeypatch.setattr(preview_module, "PREVIEW_SIZE", 64)
    out = coarse_preview(image, model)
    assert isinstance(out, CoarsePreview) and [a.shape for a in out.levels] == [image.shape]
    assert out.detail is not None and out.detail.shape == image.shape
    assert abs(float(out.detail.mean())) < 0.05 * float(out.levels[0].std()) + 1e-6
    exact = coarse_preview(image[:60, :50], model)
    assert exact.detail is None  # small enough: the preview is the exact result
    model3 = build_model("unet-custom", ndim=3, depth=2, first_kernel=3, last_kernel=3, nf=2)
    monkeypatch.setattr(preview_module, "PREVIEW_SIZE_3D", 16)
    volume = np.random.default_rng(1).normal(size=(32, 40, 36)).astype(np.float32)
    small = coarse_preview(volume, model3, volume=True)
    assert isinstance(small, np.ndarray) and max(small.shape) == 16


def test_fourier_gaussian_keeps_the_mean_and_smooths():
    rng = np.random.default_rng(0)
    image = rng.normal(5.0, 1.0, (64, 48)).astype(np.float32)
    low = fourier_gaussian(image, 3.0)
    assert low.dtype == np.float32 and low.shape == image.shape
    assert abs(float(low.mean()) - float(image.mean())) < 1e-4
    assert low.std() < 0.2 * image.std()
    np.testing.assert_allclose(fourier_gaussian(image, 0), image)


def test_match_recovers_gain_and_offset_and_repaints_only_on_change():
    rng = np.random.default_rng(1)
    large = rng.normal(size=(128, 128)).astype(np.float32)
    detail = rng.normal(size=(128, 128)).astype(np.float32)
    match = PreviewMatch(detail)
    assert match.fit() == (1.0, 0.0)
    ys, xs = slice(0, 64), slice(0, 64)
    shown = large + detail  # the raw preview (gain 1, offset 0)
    tile = large[ys, xs] + 2.0 * detail[ys, xs] + 3.0 + rng.normal(0, 0.1, (64, 64))
    match.add(shown[ys, xs], tile, ys, xs)
    change = match.refit()
    assert change is not None
    assert match.gain == pytest.approx(1.5, abs=0.01)  # half way after one tile
    region = shown[64:, 64:].copy()
    match.apply(region, slice(64, 128), slice(64, 128), change)
    expected = large[64:, 64:] + 1.5 * detail[64:, 64:] + 3.0
    np.testing.assert_allclose(region, expected, atol=0.05)
    shown_again = match.shown(shown[64:, 64:], slice(64, 128), slice(64, 128))
    np.testing.assert_allclose(shown_again, region, atol=1e-4)
    assert match.refit() is None  # nothing new: no repaint
    # more tiles with the same mapping: the gain converges to the fit
    for ys2, xs2 in ((slice(0, 64), slice(64, 128)), (slice(64, 128), slice(0, 64))):
        tile2 = large[ys2, xs2] + 2.0 * detail[ys2, xs2] + 3.0
        match.add(match.shown(shown[ys2, xs2], ys2, xs2), tile2, ys2, xs2)
    assert match.refit() is not None and match.gain == pytest.approx(1.75, abs=0.01)


def test_store_matches_the_preview_to_finished_tiles():
    from napari_cryodenoise._napari.tiles import Job, TileStore

    rng = np.random.default_rng(2)
    shape = (512, 512)
    large = np.add.outer(np.linspace(0, 4, 512), np.zeros(512)).astype(np.float32)
    detail = rng.normal(size=shape).astype(np.float32)
    truth = large + 1.8 * detail - 0.5
    store = TileStore(shape, 128, levels=1)
    store.put(Job("preview", 0), CoarsePreview([large + detail], detail))
    store.put(Job("tile", 0, 1, 1), truth[128:256, 128:256])
    matched = large + 1.4 * detail - 0.5  # half way to gain 1.8 after one tile
    unfinished = np.asarray(store)[300:, 300:]
    np.testing.assert_allclose(unfinished, matched[300:, 300:], atol=0.01)
    # the display level follows the repainted preview
    half = np.asarray(store.layer_data()[1])
    np.testing.assert_allclose(half[200:, 200:], _block_means(matched, 2)[200:, 200:], atol=0.01)
    for iy in range(4):
        for ix in range(4):
            ys, xs = store.grid.slices(iy, ix)
            store.put(Job("tile", 0, iy, ix), truth[ys, xs])
    assert store.is_complete() and not store._match  # the detail band is released
    np.testing.assert_array_equal(np.asarray(store), truth)


def _cached_unet():
    from napari_cryodenoise.models import load_model, zoo

    if zoo.find_weights("unet") is None:
        pytest.skip("pretrained unet weights are not cached (no download in tests)")
    return load_model("unet")


def test_preview_matches_tiles_on_a_simulated_micrograph():
    """After the first tile, the preview around it has the tiles' brightness and contrast.

    Measured on block means of 2 preview pixels (the finest scale the preview
    holds) over a tile the fit has not seen: the means agree within 5 % of the
    display range (raw preview: the same, its large scale already matches) and
    the tile's contrast is within 25 % of the matched preview's (the raw
    preview has about half the tiles' detail contrast). 25 % leaves room for
    the tile-to-tile spread of the local gain (about +-20 % on real data).
    """
    from napari_cryodenoise._napari.compute import LiveContext, compute_job
    from napari_cryodenoise._napari.layers import robust_contrast_limits
    from napari_cryodenoise._napari.settings import DenoiseSettings
    from napari_cryodenoise._napari.tiles import TileStore
    from napari_cryodenoise.simulate import simulate_movie

    model = _cached_unet()
    movie = simulate_movie((1024, 1024), n_frames=8, dose=30.0, pixel_size=2.0, seed=3)
    image = movie.total
    store = TileStore(image.shape, 256)
    ctx = LiveContext(
        data=image,
        data_key=("sim",),
        settings=DenoiseSettings(model="unet"),
        model=model,
        grid=store.grid,
        claims=store.claims,
    )
    store.put(Job("preview", 0), compute_job(ctx, Job("preview", 0)))
    raw = np.array(store)
    lo, hi = robust_contrast_limits(raw)
    store.put(Job("tile", 0, 1, 1), compute_job(ctx, Job("tile", 0, 1, 1)))
    assert store._match[0].tiles == 1
    k = 2 * image.shape[0] // 384
    ratios = {}
    for iy, ix in ((2, 2), (1, 2), (2, 1)):
        ys, xs = store.grid.slices(iy, ix)
        tile = _block_means(compute_job(ctx, Job("tile", 0, iy, ix)), k)
        shown = _block_means(np.array(store[ys, xs]), k)
        before = _block_means(raw[ys, xs], k)
        assert abs(float(tile.mean() - shown.mean())) < 0.05 * (hi - lo)
        ratios[(iy, ix)] = (float(tile.std() / shown.std()), float(tile.std() / before.std()))
    for matched, unmatched in ratios.values():
        assert 0.8 < matched < 1.25, ratios
        assert abs(np.log(matched)) <= abs(np.log(unmatched)) + 0.05, ratios


from napari_cryodenoise._napari.tiles import Job  # noqa: E402


def test_sketch_from_the_raw_plane_or_its_pyramid_matches_the_binned_plane():
    """A sketch shrunk from the raw plane (or its block-mean level) ~ one from the binned plane."""
    import torch

    from napari_cryodenoise.engine import prepare_image
    from napari_cryodenoise.engine.filters import fourier_resize
    from napari_cryodenoise.engine.preview import sketch_input, sketch_preview
    from napari_cryodenoise.engine.pyramid import display_pyramid
    from napari_cryodenoise.models import build_model

    rng = np.random.default_rng(4)
    smooth = fourier_gaussian(rng.normal(size=(1024, 960)).astype(np.float32), 12.0)
    raw = (1000 + 40 * smooth / smooth.std() + rng.normal(0, 10, smooth.shape)).astype(np.uint16)
    binned = prepare_image(raw, bin_factor=2)  # (512, 480)
    exact = fourier_resize(binned, preview_shape(binned.shape, 128))
    for source, block in ((raw, 1), (display_pyramid(raw, 512, 256)[-1], 4)):
        small = sketch_input(source, binned.shape, 128, block=block)
        assert small.shape == exact.shape == (128, 120)
        # block means attenuate the band's edge a little (their shift is undone)
        assert float(np.std(small - exact)) < 0.05 * float(np.std(exact))
        assert float(np.mean(small)) == pytest.approx(float(np.mean(exact)), rel=1e-3)
    torch.manual_seed(0)
    model = build_model("unet-custom", ndim=2, depth=2, first_kernel=3, last_kernel=3, nf=4)
    out = sketch_preview(raw, binned.shape, model, size=128, gaussian=1.0, lowpass=4.0)
    assert isinstance(out, CoarsePreview) and out.levels[0].shape == binned.shape
    assert out.detail is not None and out.detail.shape == binned.shape
