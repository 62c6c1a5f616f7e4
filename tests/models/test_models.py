"""Networks: Topaz compatibility (golden outputs), geometry, checkpoints."""

from __future__ import annotations

import copy
import hashlib
import pickle
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.models import (
    ALIASES,
    ARCHITECTURES,
    UNet,
    build_model,
    export_topaz_state_dict,
    infer_arch,
    load_model,
    save_model,
    save_topaz_state_dict,
    zoo,
)
from napari_cryodenoise.models.unet import UNET_ARCHS, unet_halo

DATA = Path(__file__).parents[1] / "data"
GOLDEN_RANDOM = DATA / "golden_random.npz"
GOLDEN_REAL = DATA / "golden_real.npz"

# Facts from the Topaz reference (parameter counts of the published files).
PARAMS = {
    "unet": 1_105_809,
    "unet-v0.2.1": 969_745,
    "unet-small": 649_137,
    "fcnn": 511_233,
    "affine": 962,
    "unet-3d": 2_916_337,
}
HALO = {
    "unet": 164,
    "unet-v0.2.1": 159,
    "unet-small": 44,
    "fcnn": 15,
    "affine": 15,
    "unet-3d": 159,
}
GRID = {"unet": 32, "unet-v0.2.1": 32, "unet-small": 8, "fcnn": 1, "affine": 1, "unet-3d": 32}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one thread is as fast and immune to a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def deterministic_state_dict(shapes: dict[str, tuple[int, ...]], seed: int) -> dict:
    """Same generator as benchmarks/make_golden.py (the checksum in the golden guards it)."""
    rs = np.random.RandomState(seed)
    out = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if key.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
            w = rs.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        else:
            w = 0.1 * rs.standard_normal(shape)
        out[key] = torch.from_numpy(w.astype(np.float32))
    return out


def _with_weights(arch: str, seed: int = 1234) -> nn.Module:
    """Deterministic weights, upsampling odd sizes exactly as Topaz's classes do."""
    model = build_model(arch)
    sd = deterministic_state_dict({k: tuple(v.shape) for k, v in model.state_dict().items()}, seed)
    model.load_state_dict(sd, strict=True)
    if hasattr(model, "topaz_odd_upsampling"):
        model.topaz_odd_upsampling = True
    return model


def _run(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


def _assert_close(ours: np.ndarray, ref: np.ndarray, rtol: float = 1e-5) -> None:
    scale = float(np.abs(ref).max())
    err = float(np.abs(ours - ref).max())
    assert err <= rtol * scale, f"max abs diff {err:.3g} > {rtol:g} x {scale:.3g}"


# -- structure -----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", list(PARAMS))
def test_parameter_count_and_attributes(arch):
    model = build_model(arch)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[arch]
    assert model.ndim == ARCHITECTURES[arch][0]
    assert model.grid == GRID[arch]
    assert model.halo == HALO[arch]
    assert model.name == arch
    assert not model.training


def test_state_dict_layout_matches_topaz():
    sd = build_model("unet").state_dict()
    assert tuple(sd["enc1.0.weight"].shape) == (48, 1, 11, 11)
    assert tuple(sd["enc6.0.weight"].shape) == (48, 48, 3, 3)
    assert tuple(sd["dec5.0.weight"].shape) == (96, 96, 3, 3)
    assert tuple(sd["dec4.0.weight"].shape) == (96, 144, 3, 3)
    assert tuple(sd["dec1.0.weight"].shape) == (64, 97, 5, 5)
    assert tuple(sd["dec1.4.weight"].shape) == (1, 32, 5, 5)
    assert "enc7.0.weight" not in sd and "dec6.0.weight" not in sd
    small = build_model("unet-small").state_dict()
    assert {k.split(".")[0] for k in small} == {
        "enc1",
        "enc2",
        "enc3",
        "enc4",
        "dec3",
        "dec2",
        "dec1",
    }
    assert tuple(small["dec3.0.weight"].shape) == (96, 96, 3, 3)
    assert tuple(build_model("unet-3d").state_dict()["enc1.0.weight"].shape) == (48, 1, 7, 7, 7)
    assert set(build_model("fcnn").state_dict()) == {
        f"net.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
    }
    assert set(build_model("affine").state_dict()) == {"filter.weight", "filter.bias"}


# -- golden outputs from Topaz's own classes ---------------------------------------------


@pytest.fixture(scope="module")
def golden():
    return np.load(GOLDEN_RANDOM)


@pytest.mark.parametrize("arch", list(PARAMS))
def test_matches_topaz_golden(arch, golden):
    model = _with_weights(arch, int(golden["weight_seed"]))
    checksum = sum(float(v.double().abs().sum()) for v in model.state_dict().values())
    assert checksum == pytest.approx(float(golden[f"{arch}/checksum"]), rel=1e-9)
    case = 0
    while f"{arch}/{case}/shape" in golden:
        shape = tuple(int(s) for s in golden[f"{arch}/{case}/shape"])
        x = np.random.RandomState(int(golden["input_seed"])).standard_normal(shape)
        y = _run(model, x.astype(np.float32))
        if f"{arch}/{case}/output" in golden:
            _assert_close(y, golden[f"{arch}/{case}/output"])
        else:
            _assert_close(
                y.ravel()[golden[f"{arch}/{case}/index"]], golden[f"{arch}/{case}/values"]
            )
        case += 1
    assert case > 0


@pytest.mark.parametrize("arch", ["unet", "unet-v0.2.1"])
def test_golden_in_channels_last(golden, arch):
    model = _with_weights(arch, int(golden["weight_seed"])).to(memory_format=torch.channels_last)
    shape = tuple(int(s) for s in golden[f"{arch}/1/shape"])  # even: the phase path
    x = np.random.RandomState(int(golden["input_seed"])).standard_normal(shape)
    _assert_close(_run(model, x.astype(np.float32)), golden[f"{arch}/1/output"])


def _real_weights_available(fname: str) -> Path | None:
    alias = next(a for a, e in ALIASES.items() if e.file == fname)
    found = zoo.find_weights(alias)
    return None if found is None else found[0]


@pytest.mark.parametrize("fname", sorted({e.file for e in ALIASES.values()}))
def test_real_weights_match_topaz(fname):
    path = _real_weights_available(fname)
    if path is None:
        pytest.skip(f"{fname} not available locally (run `cryodenoise models --fetch`)")
    gold = np.load(GOLDEN_REAL)
    if hashlib.sha256(path.read_bytes()).hexdigest() != str(gold[f"{fname}/sha256"]):
        pytest.skip(f"{path} is not the published file")
    model = load_model(path)
    shape = tuple(int(s) for s in gold[f"{fname}/shape"])
    x = np.random.RandomState(int(gold["input_seed"])).standard_normal(shape)
    y = _run(model, x.astype(np.float32)).ravel()[gold[f"{fname}/index"]]
    _assert_close(y, gold[f"{fname}/values"])


# -- geometry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "shape"),
    [
        ("unet", (2, 1, 96, 64)),
        ("unet-v0.2.1", (1, 1, 64, 64)),
        ("unet-small", (1, 1, 48, 40)),
        ("unet-3d", (1, 1, 32, 32, 32)),
    ],
)
def test_phase_path_equals_plain_path(arch, shape):
    model = _with_weights(arch)
    x = np.random.RandomState(0).standard_normal(shape).astype(np.float32)
    fast = _run(model, x)
    model.use_phase_trick = False
    _assert_close(fast, _run(model, x), rtol=3e-6)


@pytest.mark.parametrize("arch", ["unet", "unet-v0.2.1", "unet-small", "fcnn", "affine"])
@pytest.mark.parametrize("size", [(1, 1), (5, 7), (31, 33), (33, 64), (40, 17)])
def test_any_2d_size(arch, size):
    model = build_model(arch)
    x = np.random.RandomState(1).standard_normal((1, 1, *size)).astype(np.float32)
    y = _run(model, x)
    assert y.shape == x.shape and np.isfinite(y).all()


def test_small_input_is_zero_extension():
    model = _with_weights("unet-small")
    x = np.random.RandomState(2).standard_normal((1, 1, 5, 7)).astype(np.float32)
    big = np.zeros((1, 1, 8, 8), np.float32)
    big[..., :5, :7] = x
    _assert_close(_run(model, x), _run(model, big)[..., :5, :7], rtol=1e-6)


def test_any_3d_size():
    model = build_model("unet-3d")
    x = np.random.RandomState(1).standard_normal((1, 1, 3, 34, 5)).astype(np.float32)
    y = _run(model, x)
    assert y.shape == x.shape and np.isfinite(y).all()


def test_halo_formula():
    for arch, spec in UNET_ARCHS.items():
        assert unet_halo(spec.depth, spec.first_kernel, spec.last_kernel) == HALO[arch]


def _dependency_net(model: nn.Module) -> nn.Module:
    """Positive weights, linear activations, average pools: nonzero output <=> dependence."""
    net = copy.deepcopy(model)
    net.use_phase_trick = False
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight.data.abs() + 0.01
            m.weight.data = w / w.sum(dim=(1, 2, 3), keepdim=True)
            m.bias.data.zero_()
        elif isinstance(m, nn.LeakyReLU):
            m.negative_slope = 1.0
    for m in list(net.modules()):
        for name, child in list(m.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(m, name, nn.AvgPool2d(2))
    return net


@pytest.mark.parametrize(
    ("arch", "height", "rows"),
    [
        ("unet-small", 160, list(range(8))),  # every phase
        ("unet", 416, [2, 29]),  # the worst phases (left and right reach 164)
    ],
)
def test_halo_is_hard_support(arch, height, rows):
    net = _dependency_net(build_model(arch))
    c0 = height // 2 - (height // 2) % 32
    x = torch.zeros(len(rows), 1, height, 32)
    for b, r in enumerate(rows):
        x[b, 0, c0 + r, 16] = 1.0
    with torch.inference_mode():
        y = net(x)
    reach = 0
    for b, r in enumerate(rows):
        hit = (y[b, 0].abs().sum(1) > 0).nonzero().flatten()
        assert 0 < int(hit.min()) and int(hit.max()) < height - 1  # not clipped by the border
        reach = max(reach, c0 + r - int(hit.min()), int(hit.max()) - c0 - r)
    assert reach == HALO[arch]


@pytest.mark.parametrize("arch", ["unet-small", "unet", "fcnn"])
def test_shift_equivariance_grid(arch):
    model = _with_weights(arch)
    g = model.grid
    h = 2 * model.halo + 3 * max(g, 8)
    x = np.random.RandomState(3).standard_normal((1, 1, h + g, 32)).astype(np.float32)
    a = _run(model, x[..., :h, :])
    b = _run(model, x[..., g : h + g, :])
    inner = slice(model.halo + g, h - model.halo - g)
    np.testing.assert_allclose(
        a[..., inner.start + g : inner.stop, :],
        b[..., inner.start : inner.stop - g, :],
        rtol=0,
        atol=1e-4,
    )
    if g > 1:  # a shift by half the grid is not equivariant
        c = _run(model, x[..., g // 2 : h + g // 2, :])
        d = np.abs(
            a[..., inner.start + g // 2 : inner.stop, :]
            - c[..., inner.start : inner.stop - g // 2, :]
        ).max()
        assert d > 1e-3


def test_training_gradients_flow_through_phase_path():
    model = build_model("unet-small").train()
    x = torch.randn(2, 1, 32, 32)
    model(x).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# -- checkpoints ---------------------------------------------------------------------------


def test_native_roundtrip(tmp_path):
    model = _with_weights("unet-small")
    path = save_model(model, tmp_path / "m.pt", metadata={"epochs": 3, "loss": [0.5, 0.25]})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "napari-cryodenoise/1" and raw["arch"] == "unet-small"
    assert raw["metadata"]["epochs"] == 3
    again = load_model(path)
    assert again.arch == "unet-small" and again.metadata["loss"] == [0.5, 0.25]
    x = np.random.RandomState(4).standard_normal((1, 1, 40, 40)).astype(np.float32)
    _assert_close(_run(again, x), _run(model, x), rtol=1e-5)
    assert again.dec1[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not list(tmp_path.glob("*.part"))


def test_native_rejects_unpicklable_metadata(tmp_path):
    with pytest.raises(TypeError):
        save_model(build_model("affine"), tmp_path / "m.pt", metadata={"x": np.zeros(2)})
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize(
    ("arch", "options"),
    [
        ("unet", {}),
        ("unet-v0.2.1", {}),
        ("unet-small", {}),
        ("fcnn", {}),
        ("affine", {}),
        ("unet-3d", {}),
        ("unet-custom", {"ndim": 3, "depth": 5, "first_kernel": 11, "last_kernel": 3, "nf": 8}),
        ("unet-custom", {"ndim": 2, "depth": 4, "first_kernel": 9, "last_kernel": 5, "nf": 16}),
    ],
)
def test_topaz_state_dict_roundtrip(tmp_path, arch, options):
    model = build_model(arch, **options)
    sd = export_topaz_state_dict(model)
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in sd.values())
    assert infer_arch(sd) == (arch, options)
    path = save_topaz_state_dict(model, tmp_path / "own.sav")
    loaded = load_model(path)
    assert loaded.name == "own"
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, sd[k])


def test_dataparallel_prefix_and_wrapped_dict(tmp_path):
    sd = build_model("fcnn").state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "dp.pth")
    assert load_model(tmp_path / "dp.pth").arch == "fcnn"


def _fake_topaz_modules(monkeypatch):
    """Register classes named like Topaz's so torch.save pickles them by that name."""
    pkg = types.ModuleType("topaz")
    sub = types.ModuleType("topaz.denoising")
    mod = types.ModuleType("topaz.denoising.models")
    cls = type("UDenoiseNetSmall", (nn.Module,), {"__module__": "topaz.denoising.models"})
    mod.UDenoiseNetSmall = cls
    for name, m in (("topaz", pkg), ("topaz.denoising", sub), ("topaz.denoising.models", mod)):
        monkeypatch.setitem(sys.modules, name, m)
    return cls


def test_topaz_whole_module_pickle(tmp_path, monkeypatch):
    src = _with_weights("unet-small")
    cls = _fake_topaz_modules(monkeypatch)
    fake = cls()
    for name, child in src.named_children():
        fake.add_module(name, child)
    torch.save(fake, tmp_path / "trained_epoch100.sav")
    for name in ("topaz", "topaz.denoising", "topaz.denoising.models"):
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delenv("NAPARI_CRYODENOISE_ALLOW_PICKLE", raising=False)
    with pytest.raises(InputError, match="allow_pickle"):
        load_model(tmp_path / "trained_epoch100.sav")
    with pytest.warns(UserWarning, match="pickled"):
        model = load_model(tmp_path / "trained_epoch100.sav", allow_pickle=True)
    assert model.arch == "unet-small" and "topaz" not in sys.modules
    x = np.random.RandomState(5).standard_normal((1, 1, 24, 40)).astype(np.float32)
    _assert_close(_run(model, x), _run(src, x), rtol=1e-5)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_foreign_globals_is_refused(tmp_path):
    torch.save({"model": _Evil()}, tmp_path / "evil.pt", pickle_protocol=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="refusing"):
            load_model(tmp_path / "evil.pt", allow_pickle=True)


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="known"):
        load_model("no-such-model")
    (tmp_path / "junk.sav").write_text("not a model")
    with pytest.raises(InputError, match="junk.sav"):
        load_model(tmp_path / "junk.sav")
    torch.save({"a.weight": torch.zeros(3)}, tmp_path / "other.sav")
    with pytest.raises(InputError, match="no supported architecture"):
        load_model(tmp_path / "other.sav")
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet")


def test_pickle_copy_of_model_drops_cache():
    model = _with_weights("unet")
    _run(model, np.zeros((1, 1, 64, 64), np.float32))
    assert model._phase_cache
    clone = pickle.loads(pickle.dumps(model))
    assert clone._phase_cache == {}
    assert isinstance(clone, UNet)


def test_weights_converted_in_inference_mode():
    model = build_model("unet-small")
    x = torch.randn(1, 1, 32, 48)
    with torch.inference_mode():
        ref = model(x)
        half = model.to(torch.bfloat16)  # parameters become inference tensors
        y = half(x.bfloat16()).float()
    assert torch.allclose(y, ref, atol=0.05 * float(ref.abs().max()))


def test_phase_path_in_groups(monkeypatch):
    from napari_cryodenoise.models import unet

    model = _with_weights("unet-small")
    x = np.random.RandomState(6).standard_normal((1, 1, 48, 64)).astype(np.float32)
    whole = _run(model, x)
    monkeypatch.setattr(unet, "_PHASE_BYTES", 1)  # one phase per convolution
    np.testing.assert_allclose(_run(model, x), whole, rtol=0, atol=1e-5)


def test_local_upsampling_equals_topaz_on_even_levels_and_is_local_on_odd():
    from napari_cryodenoise.models.unet import upsample_local

    low = torch.randn(1, 3, 16, 20)
    np.testing.assert_array_equal(
        upsample_local(low, (32, 40)), F.interpolate(low, size=(32, 40), mode="nearest")
    )
    odd = upsample_local(low, (33, 41))
    # every fine pixel i comes from coarse pixel min(i // 2, k - 1)
    rows = [min(i // 2, 15) for i in range(33)]
    cols = [min(j // 2, 19) for j in range(41)]
    np.testing.assert_array_equal(odd, low[:, :, rows][:, :, :, cols])
    # and the whole U-Net agrees with Topaz's mapping wherever all levels are even
    model = _with_weights("unet-small")
    x = torch.randn(1, 1, 64, 96)
    with torch.inference_mode():
        topaz = model(x)
        model.topaz_odd_upsampling = False
        local = model(x)
    np.testing.assert_array_equal(topaz, local)
