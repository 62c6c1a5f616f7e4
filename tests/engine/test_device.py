"""engine.device: device and precision names, threads, memory, out-of-memory errors."""

from __future__ import annotations

import warnings

import pytest
import torch

from napari_cryodenoise.engine.device import (
    available_memory,
    empty_cache,
    host_memory_share,
    is_out_of_memory,
    resolve_device,
    resolve_precision,
    set_threads,
)
from napari_cryodenoise.errors import InputError

CPU = torch.device("cpu")


@pytest.mark.parametrize("spec", ["cpu", " CPU ", torch.device("cpu")])
def test_cpu_names(spec):
    assert resolve_device(spec) == CPU


def test_auto_and_none_pick_an_available_device():
    for spec in ("auto", None, ""):
        assert resolve_device(spec).type in {"cpu", "cuda", "mps"}


def test_unknown_device_message_lists_the_choices():
    with pytest.raises(InputError, match=r"unknown device 'tpu'; use auto, cpu, cuda"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="machine has CUDA")
@pytest.mark.parametrize("spec", ["cuda", "cuda:1", "gpu"])
def test_cuda_without_cuda_is_one_clear_line(spec):
    with pytest.raises(InputError, match="CUDA is not available") as info:
        resolve_device(spec)
    assert "\n" not in str(info.value) and "--device cpu" in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_cuda_index_out_of_range():
    n = torch.cuda.device_count()
    assert resolve_device("cuda").type == "cuda"
    with pytest.raises(InputError, match="CUDA device"):
        resolve_device(f"cuda:{n}")


def test_mps_unavailable_is_clear():
    backend = getattr(torch.backends, "mps", None)
    if backend is not None and backend.is_available():
        pytest.skip("machine has MPS")
    with pytest.raises(InputError, match="MPS is not available"):
        resolve_device("mps")


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("fp32", torch.float32),
        ("32", torch.float32),
        ("float32", torch.float32),
        (torch.float32, torch.float32),
        ("bf16", torch.bfloat16),
        (torch.bfloat16, torch.bfloat16),
    ],
)
def test_precision_names(name, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 may warn on CPUs without native support
        assert resolve_precision(name, CPU) == dtype


@pytest.mark.parametrize("name", ["fp16", "half", "16", torch.float16])
def test_fp16_on_cpu_falls_back_to_bf16(name):
    with pytest.warns(UserWarning, match="fp16 is not supported on the CPU"):
        assert resolve_precision(name, CPU) == torch.bfloat16


@pytest.mark.parametrize("name", ["fp8", "int8", torch.float64])
def test_bad_precision(name):
    with pytest.raises(InputError, match="precision"):
        resolve_precision(name, CPU)


def test_set_threads():
    before = torch.get_num_threads()
    try:
        set_threads(None)
        set_threads(0)
        assert torch.get_num_threads() == before
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_memory_and_out_of_memory_helpers():
    assert available_memory(CPU) > 0
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("x"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))
    empty_cache(CPU)  # a no-op on the CPU


def test_host_memory_share_is_a_quarter_of_free_memory_within_bounds(monkeypatch):
    from napari_cryodenoise.engine import device

    monkeypatch.setattr(device, "available_memory", lambda _dev: 8 << 30)
    assert host_memory_share(4 << 30) == 2 << 30
    assert host_memory_share(1 << 30) == 1 << 30  # capped
    monkeypatch.setattr(device, "available_memory", lambda _dev: 100 << 20)
    assert host_memory_share(4 << 30, floor=256 << 20) == 256 << 20  # floored

    def unreadable(_dev):
        raise OSError("no /proc")

    monkeypatch.setattr(device, "available_memory", unreadable)
    assert host_memory_share(4 << 30) == 1 << 30  # the cap is assumed free
