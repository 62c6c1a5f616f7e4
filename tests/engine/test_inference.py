"""Engine contract: normalisation, averaging, stacks, volumes, errors, callbacks, OOM retry."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from _engine_nets import RefUNet, ScaleNet, TinyNet2D

from napari_cryodenoise.engine import (
    denoise,
    denoise_region,
    denoise_stack,
    denoise_volume,
    gaussian_filter,
    get_runner,
    image_stats,
    resolve_device,
    resolve_precision,
)
from napari_cryodenoise.engine.filters import fourier_lowpass, fourier_resize
from napari_cryodenoise.errors import Cancelled, InputError

try:
    from napari_cryodenoise.models import build_model
except ImportError:  # models/ not there yet
    build_model = None


def _rng(seed=0):
    return np.random.default_rng(seed)


def _whole(model, img, stats=None):
    mean, std = stats or (float(img.mean(dtype=np.float64)), float(img.std(dtype=np.float64)))
    x = torch.from_numpy(((img - mean) / std).astype(np.float32))[None, None]
    with torch.inference_mode():
        return model(x)[0, 0].numpy() * std + mean


# ---------------------------------------------------------------- normalisation contract


def test_normalisation_contract_scale_model():
    img = _rng().normal(10, 3, (40, 50)).astype(np.float32)
    mean, std = img.mean(dtype=np.float64), img.std(dtype=np.float64)
    a, b = 0.5, 0.25
    out = denoise(img, ScaleNet(a, b), device="cpu")
    want = std * (a * (img - mean) / std + b) + mean
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)
    assert out.dtype == np.float32
    norm = denoise(img, ScaleNet(a, b), device="cpu", normalize=True)
    np.testing.assert_allclose(norm, a * (img - mean) / std + b, atol=1e-5)


def test_models_are_averaged_in_normalised_units():
    img = _rng(1).normal(5, 2, (30, 20)).astype(np.float32)
    both = denoise(img, [ScaleNet(1.0, 0.0), ScaleNet(0.0, 1.0)], device="cpu", normalize=True)
    z = (img - img.mean(dtype=np.float64)) / img.std(dtype=np.float64)
    np.testing.assert_allclose(both, (z + 1.0) / 2, atol=1e-5)


def test_gaussian_prefilter_applies_in_normalised_units():
    img = _rng(2).normal(0, 1, (300, 260)).astype(np.float32)
    z = (img - img.mean(dtype=np.float64)) / img.std(dtype=np.float64)
    out = denoise(
        img, ScaleNet(1.0, 0.0), device="cpu", gaussian=2.0, normalize=True, patch_size=64
    )  # tiles with a gaussian margin
    np.testing.assert_allclose(out, gaussian_filter(z, 2.0), atol=1e-5)


def test_lowpass_then_stats():
    img = _rng(3).normal(2, 1, (64, 48)).astype(np.float32)
    out = denoise(img, ScaleNet(1.0, 0.0), device="cpu", lowpass=3)
    np.testing.assert_allclose(out, fourier_lowpass(img, 3), atol=1e-4)


def test_binning_output_shapes():
    img = _rng(4).normal(2, 1, (64, 50)).astype(np.float32)
    binned = denoise(img, ScaleNet(1.0, 0.0), device="cpu", bin_factor=2, restore_size=False)
    assert binned.shape == (32, 25)
    np.testing.assert_allclose(binned, fourier_resize(img, (32, 25)), atol=1e-4)
    restored = denoise(img, ScaleNet(1.0, 0.0), device="cpu", bin_factor=2)
    assert restored.shape == img.shape
    np.testing.assert_allclose(
        restored, fourier_resize(fourier_resize(img, (32, 25)), img.shape), atol=1e-4
    )
    by_size = denoise(
        img,
        ScaleNet(1.0, 0.0),
        device="cpu",
        pixel_size=1.5,
        target_pixel_size=3.0,
        restore_size=False,
    )
    np.testing.assert_array_equal(by_size, binned)
    with pytest.raises(InputError, match="finer"):
        denoise(img, ScaleNet(), device="cpu", pixel_size=2, target_pixel_size=1)


def test_integer_and_memmap_input(tmp_path):
    img = _rng(5).integers(0, 60000, (70, 90)).astype(np.uint16)
    path = tmp_path / "img.u16"
    img.tofile(path)
    mm = np.memmap(path, dtype=np.uint16, mode="r", shape=img.shape)
    mean, std = image_stats(mm, block_bytes=1000)
    assert mean == pytest.approx(img.astype(np.float64).mean(), rel=1e-12)
    assert std == pytest.approx(img.astype(np.float64).std(), rel=1e-10)
    out = denoise(mm, TinyNet2D(), device="cpu")
    np.testing.assert_allclose(
        out, _whole(TinyNet2D(), img.astype(np.float32)), rtol=1e-5, atol=1e-5 * std
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_raise_input_error(bad):
    img = np.ones((20, 20), np.float32)
    img[3, 4] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        denoise(img, ScaleNet(), device="cpu")


def test_constant_image_does_not_divide_by_zero():
    out = denoise(np.full((16, 16), 7.0, np.float32), ScaleNet(1.0, 0.0), device="cpu")
    np.testing.assert_allclose(out, 7.0)


def test_bad_inputs():
    with pytest.raises(InputError):
        denoise(np.zeros((0, 5), np.float32), ScaleNet(), device="cpu")
    with pytest.raises(InputError, match="denoise_stack"):
        denoise(np.zeros((3, 8, 8), np.float32), ScaleNet(), device="cpu")
    with pytest.raises(InputError):
        denoise(np.zeros((8, 8), np.float32), ScaleNet(), device="cpu", gaussian=-1)


# ---------------------------------------------------------------- stacks and volumes


def test_stack_slices_are_independent():
    rng = _rng(6)
    stack = np.stack([rng.normal(m, s, (40, 33)) for m, s in [(0, 1), (100, 5), (-3, 0.1)]])
    stack = stack.astype(np.float32)
    model = TinyNet2D()
    out = denoise_stack(stack, model, device="cpu")
    assert out.shape == stack.shape and out.dtype == np.float32
    for i in range(3):
        np.testing.assert_allclose(out[i], denoise(stack[i], model, device="cpu"), atol=1e-6)
    # changing one slice leaves the others untouched
    stack2 = stack.copy()
    stack2[1] *= 3
    out2 = denoise_stack(stack2, model, device="cpu")
    np.testing.assert_array_equal(out2[0], out[0])
    np.testing.assert_array_equal(out2[2], out[2])


def test_volume_tiling_is_seamless_3d():
    model = TinyNet2D(ndim=3)
    vol = _rng(7).normal(1, 2, (37, 41, 30)).astype(np.float32)
    whole = _whole(model, vol)
    tiled = denoise_volume(vol, model, device="cpu", patch_size=16)
    assert np.abs(tiled - whole).max() <= 1e-4 * whole.std()
    region = (slice(5, 20), slice(0, 41), slice(29, 30))
    part = denoise_region(vol, model, region, device="cpu")
    np.testing.assert_allclose(part, whole[region], atol=1e-4 * whole.std())


def test_volume_context_shrinks_to_fit_memory(caplog):
    model = TinyNet2D(ndim=3)
    model.halo = 40  # pretend a wide receptive field
    vol = _rng(7).normal(1, 2, (16, 96, 96)).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        out = denoise_volume(vol, model, device="cpu", memory_limit=1680 * 16 * 62 * 62)
    assert "does not fit in memory" in caplog.text
    whole = _whole(model, vol)
    assert np.abs(out - whole).max() <= 1e-4 * whole.std()  # true radius (14) still covered


def test_callers_module_is_left_alone():
    net = TinyNet2D().train()
    denoise(np.ones((20, 20), np.float32), net, device="cpu", precision="bf16")
    assert net.training and net.c1.weight.dtype == torch.float32


# ---------------------------------------------------------------- callbacks and memory


def test_progress_and_cancel():
    img = _rng(8).normal(size=(200, 200)).astype(np.float32)
    calls = []
    denoise(
        img, TinyNet2D(), device="cpu", patch_size=64, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] > 1
    assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:], strict=False))
    seen = []

    def cancel():
        seen.append(1)
        return len(seen) > 2

    with pytest.raises(Cancelled):
        denoise(img, TinyNet2D(), device="cpu", patch_size=64, cancel=cancel)


class _OOMNet(TinyNet2D):
    """Raises CUDA's out-of-memory error for windows above a size."""

    def __init__(self, limit):
        super().__init__()
        self.limit, self.calls = limit, []

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        if x.shape[-1] * x.shape[-2] * x.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return super().forward(x)


def test_oom_retry_with_smaller_tiles(caplog):
    img = _rng(9).normal(size=(300, 260)).astype(np.float32)
    want = denoise(img, TinyNet2D(), device="cpu")
    net = _OOMNet(limit=100 * 100)
    with caplog.at_level(logging.WARNING):
        got = denoise(img, net, device="cpu", patch_size=256)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert "out of memory" in caplog.text
    assert max(h * w for _, _, h, w in net.calls[-3:]) <= 100 * 100


def test_oom_gives_up_with_clear_error():
    with pytest.raises(MemoryError, match="out of memory"):
        denoise(
            _rng().normal(size=(300, 300)).astype(np.float32),
            _OOMNet(limit=10),
            device="cpu",
            patch_size=256,
        )


# ---------------------------------------------------------------- devices and precision


def test_devices_and_precisions():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(InputError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            resolve_device("cuda:0")
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == torch.float32
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    with pytest.warns(UserWarning, match="bf16"):
        assert resolve_precision("fp16", cpu) == torch.bfloat16
    with pytest.raises(InputError):
        resolve_precision("fp8", cpu)


def test_bf16_close_to_fp32():
    model = RefUNet(levels=3, seed=1)
    img = _rng(10).normal(size=(96, 80)).astype(np.float32)
    a = denoise(img, model, device="cpu", normalize=True)
    b = denoise(img, model, device="cpu", normalize=True, precision="bf16")
    assert b.dtype == np.float32
    assert np.abs(a - b).max() / a.std() < 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_cuda_matches_cpu():
    model = RefUNet(levels=3)
    img = _rng(11).normal(size=(200, 150)).astype(np.float32)
    a = denoise(img, model, device="cpu")
    b = denoise(img, model, device="cuda")
    c = denoise(img, model, device="cuda", precision="fp16")
    assert np.abs(a - b).max() <= 1e-3 * a.std()
    assert np.abs(a - c).max() <= 0.05 * a.std()


def test_runner_cache_sees_weight_updates():
    model = ScaleNet(1.0, 0.0)
    r1 = get_runner(model, "cpu")
    assert get_runner(model, "cpu") is r1
    net = TinyNet2D()
    r2 = get_runner(net, "cpu")
    with torch.no_grad():
        net.c4.bias.add_(1.0)
    assert get_runner(net, "cpu") is not r2


# ---------------------------------------------------------------- the real U-Net


@pytest.mark.skipif(build_model is None, reason="models/ not available")
def test_real_unet_fast_path_matches_forward():
    model = build_model("unet")
    img = _rng(12).normal(size=(256, 160)).astype(np.float32)
    whole = _whole(model, img)
    tiled = denoise(img, model, device="cpu")
    assert np.abs(tiled - whole).max() <= 1e-4 * whole.std()


@pytest.mark.skipif(build_model is None, reason="models/ not available")
@pytest.mark.parametrize("shape", [(5, 3), (1, 1), (20, 31), (64, 20)])
def test_real_unet_tiny_images_match_forward(shape):
    model = build_model("unet")
    img = (
        _rng(14).normal(size=shape).astype(np.float32)
        if shape != (1, 1)
        else np.ones(shape, np.float32)
    )
    whole = _whole(model, img, stats=(float(img.mean()), float(img.std()) or 1.0))
    out = denoise(img, model, device="cpu")
    assert out.shape == shape
    np.testing.assert_allclose(out, whole, atol=1e-4 * max(float(whole.std()), 1.0))


@pytest.mark.slow
@pytest.mark.skipif(build_model is None, reason="models/ not available")
def test_real_unet_tiled_equals_whole_odd_size():
    model = build_model("unet")
    img = _rng(13).normal(size=(1000, 777)).astype(np.float32)
    single = denoise(img, model, device="cpu", patch_size=1024)  # one window
    tiled = denoise(img, model, device="cpu", patch_size=256)
    assert np.abs(tiled - single).max() <= 1e-4 * single.std()
    whole = _whole(model, img)
    assert np.abs(tiled - whole).max() <= 1e-4 * whole.std()
