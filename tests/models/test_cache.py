"""models.cache: one LRU cache of loaded networks, keyed by file mtime, thread-safe."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.models import build_model, save_model
from napari_cryodenoise.models.cache import ModelCache, get_model, model_key, shared_cache


class _Loader:
    def __init__(self, delay: float = 0.0):
        self.calls: list[str] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, spec, *, progress=None, cancel=None):
        with self.lock:
            self.calls.append(os.fspath(spec))
        time.sleep(self.delay)
        if progress is not None:
            progress(1, 1)
        return torch.nn.Linear(1, 1)


def test_hits_and_lru_eviction():
    loader = _Loader()
    cache = ModelCache(maxsize=2, loader=loader)
    a = cache.get("a")
    assert cache.get("a") is a and loader.calls == ["a"]
    cache.get("b")
    cache.get("a")  # a is now the most recent
    cache.get("c")  # evicts b
    assert len(cache) == 2 and cache.peek("b") is None and cache.peek("a") is a
    cache.get("b")
    assert loader.calls == ["a", "b", "c", "b"] and cache.loads == 4
    cache.clear()
    assert len(cache) == 0


def test_device_and_precision_are_part_of_the_key():
    cache = ModelCache(loader=_Loader())
    plain = cache.get("m")
    half = cache.get("m", "cpu", torch.bfloat16)
    assert half is not plain and half.weight.dtype == torch.bfloat16
    assert plain.weight.dtype == torch.float32
    assert model_key("m", "cpu") != model_key("m", "cpu", torch.bfloat16)


def test_progress_reaches_the_loader():
    seen = []
    ModelCache(loader=_Loader()).get("m", progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 1)]


def test_file_key_follows_modification(tmp_path):
    path = tmp_path / "net.pt"
    path.write_bytes(b"one")
    loader = _Loader()
    cache = ModelCache(loader=loader)
    first = cache.get(path)
    assert cache.get(str(path)) is first  # str and Path name the same file
    path.write_bytes(b"two!")  # rewritten in place (new size and mtime)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert cache.get(path) is not first and len(loader.calls) == 2
    assert model_key(path)[0][0] == "file"
    assert model_key("unet")[0] == ("name", "unet")


def test_one_load_per_key_under_concurrency():
    loader = _Loader(delay=0.1)
    cache = ModelCache(loader=loader)
    results = []

    def worker(spec):
        results.append(cache.get(spec))

    threads = [threading.Thread(target=worker, args=("x" if i % 2 else "y",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(loader.calls) == ["x", "y"]
    assert len({id(m) for m in results}) == 2


def test_a_failed_load_is_not_cached():
    calls = []

    def flaky(spec, **kw):
        calls.append(spec)
        if len(calls) == 1:
            raise InputError("broken")
        return torch.nn.Linear(1, 1)

    cache = ModelCache(loader=flaky)
    with pytest.raises(InputError):
        cache.get("m")
    assert cache.get("m") is not None and len(calls) == 2


def test_shared_cache_loads_real_model_files(tmp_path):
    path = save_model(build_model("affine"), tmp_path / "affine.pt")
    net = get_model(path)
    assert get_model(path) is net and shared_cache().peek(path) is net
    assert net.ndim == 2
    from napari_cryodenoise.engine import load_models

    assert load_models([path])[0] is net
    with pytest.raises(InputError, match="neither a model file nor a known model"):
        get_model(tmp_path / "missing.pt")
