"""The live view's worker side (no Qt): live jobs against whole-image inference; settings."""

import shlex
import threading

import numpy as np
import pytest

from napari_cryodenoise._napari.compute import LiveContext, live_jobs
from napari_cryodenoise._napari.settings import (
    MODE_WHOLE,
    DenoiseSettings,
    cli_command,
    default_output_path,
)
from napari_cryodenoise._napari.tiles import Job, TileStore, plan_jobs


def test_live_jobs_equal_whole_image_inference_and_stop_on_cancel():
    from napari_cryodenoise.engine import denoise
    from napari_cryodenoise.models import build_model

    model = build_model("unet-custom", ndim=2, depth=2, first_kernel=3, last_kernel=3, nf=4)
    image = np.random.default_rng(1).normal(size=(640, 560)).astype(np.float32)
    settings = DenoiseSettings(model="tiny", gaussian=1.0)
    store = TileStore(image.shape, 256)
    ctx = LiveContext(
        data=image,
        data_key=("t",),
        settings=settings,
        model=model,
        grid=store.grid,
        claims=store.claims,
    )
    jobs = plan_jobs(store, None, 0)
    cancel = threading.Event()
    gen = live_jobs(ctx, jobs, cancel)
    first_job, preview = next(gen)
    assert first_job == Job("preview", 0) and [a.shape for a in preview.levels] == [image.shape]
    store.put(first_job, preview)
    cancel.set()
    assert list(gen) == []  # stops at the next job
    cancel = threading.Event()
    for job, result in live_jobs(ctx, plan_jobs(store, None, 0), cancel):
        store.put(job, result)
    assert store.is_complete()
    expected = denoise(image, model, gaussian=1.0)
    np.testing.assert_allclose(np.asarray(store), expected, atol=1e-5 * float(expected.std()))


def test_settings_validation_and_command_line(tmp_path):
    s = DenoiseSettings(
        model="unet",
        bin_factor=2,
        gaussian=1.5,
        lowpass=4,
        patch_size=512,
        device="cuda:0",
        precision="bf16",
        mode=MODE_WHOLE,
    )
    cmd = cli_command(s, tmp_path / "my mic.mrc")
    assert cmd.startswith("cryodenoise denoise ")
    assert "'" in cmd and f"-o {tmp_path / 'denoised'}" in cmd  # shell-quoted input
    for part in (
        "-m unet",
        "--bin 2",
        "--gaussian 1.5",
        "--lowpass 4",
        "--patch-size 512",
        "--device cuda:0",
        "--precision bf16",
    ):
        assert part in cmd
    plain = cli_command(DenoiseSettings(), "data/a.mrc")
    assert plain == "cryodenoise denoise data/a.mrc -o data/denoised -m unet"
    assert cli_command(DenoiseSettings(), None, "out", stack=True).endswith("--stack")
    # the command line parses with the real CLI
    from napari_cryodenoise.cli import build_parser

    args = build_parser().parse_args(shlex.split(cmd)[1:])
    assert args.bin_factor == 2 and args.gaussian == 1.5 and args.lowpass == 4
    assert args.model == ["unet"] and not args.restore_size
    assert default_output_path("x/y.mrcs").name == "y_denoised.mrc"
    with pytest.raises(ValueError):
        DenoiseSettings(mode="fast")
    with pytest.raises(ValueError):
        DenoiseSettings(bin_factor=0)
    assert DenoiseSettings(model=str(tmp_path / "net.pt")).model_label == "net"
    assert DenoiseSettings(lowpass=1.0).lowpass_factor is None


def test_sketch_job_is_a_quick_preview_from_the_raw_pyramid():
    from napari_cryodenoise._napari.compute import compute_job, overview_of, sketch_source
    from napari_cryodenoise.engine.preview import CoarsePreview
    from napari_cryodenoise.engine.pyramid import block_mean
    from napari_cryodenoise.models import build_model

    model = build_model("unet-custom", ndim=2, depth=2, first_kernel=3, last_kernel=3, nf=4)
    image = np.random.default_rng(1).normal(size=(2048, 1920)).astype(np.float32)
    levels = [image, block_mean(image, 2), block_mean(image, 4)]
    assert overview_of(levels) is not None and overview_of(levels).shape == (512, 480)
    assert overview_of(image) is None and overview_of([image]) is None
    assert overview_of([image, block_mean(image, 4)]) is None  # not a 2x pyramid
    settings = DenoiseSettings(model="tiny", bin_factor=4)
    store = TileStore((512, 480), 256)
    ctx = LiveContext(
        data=image,
        data_key=("s",),
        settings=settings,
        model=model,
        grid=store.grid,
        claims=store.claims,
        overview=overview_of(levels),
    )
    assert sketch_source(ctx, 0)[1] == 4  # 4x4 block means of the raw plane
    jobs = plan_jobs(store, None, 0, fill=False, sketch=True)
    assert jobs[0] == Job("sketch", 0)
    sketch = compute_job(ctx, jobs[0])
    assert isinstance(sketch, CoarsePreview) and sketch.levels[0].shape == (512, 480)
    store.put(jobs[0], sketch)
    assert store.is_done(Job("sketch", 0)) and not store.is_done(Job("preview", 0))
    assert not ctx.prepared._items  # the sketch did not wait for the binned plane


def test_sketch_of_an_image_with_nan_says_so_about_the_image():
    from napari_cryodenoise._napari.compute import compute_job
    from napari_cryodenoise.errors import InputError
    from napari_cryodenoise.models import build_model

    model = build_model("unet-custom", ndim=2, depth=2, first_kernel=3, last_kernel=3, nf=4)
    image = np.ones((1024, 1024), np.float32)
    image[700, 5] = np.nan
    store = TileStore((512, 512), 256)
    settings = DenoiseSettings(model="tiny", bin_factor=2)
    ctx = LiveContext(data=image, data_key=("n",), settings=settings, model=model, grid=store.grid)
    with pytest.raises(InputError, match=r"image contains 1\+ NaN"):
        compute_job(ctx, Job("sketch", 0))
