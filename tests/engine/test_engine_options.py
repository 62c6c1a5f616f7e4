"""engine.options: the one frozen object for the options the entry points forward."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from _engine_nets import TinyNet2D

from napari_cryodenoise.engine import EngineOptions, denoise, denoise_region, denoise_stack
from napari_cryodenoise.errors import InputError


def test_frozen_defaults_and_validation():
    opts = EngineOptions()
    assert opts.device == "auto" and opts.precision == "fp32" and opts.fast
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.device = "cpu"  # type: ignore[misc]
    assert EngineOptions(gaussian=None).gaussian == 0.0  # type: ignore[arg-type]
    with pytest.raises(InputError, match="gaussian sigma must be >= 0"):
        EngineOptions(gaussian=-1)


def test_every_option_is_a_keyword_of_the_entry_points():
    for fn in (denoise, denoise_region):
        params = inspect.signature(fn).parameters
        for name in EngineOptions.names():
            assert name in params, (fn.__name__, name)
            default = getattr(EngineOptions(), name)
            assert params[name].default == default, (fn.__name__, name)


def test_pick_take_and_round_trip():
    kw = {"device": "cpu", "patch_size": 64, "lowpass": 2.0}
    opts = EngineOptions.take(kw)
    assert kw == {"lowpass": 2.0} and opts.patch_size == 64
    assert EngineOptions.pick({"device": "cpu", "image": None}) == EngineOptions(device="cpu")
    img = np.random.default_rng(0).normal(size=(70, 50)).astype(np.float32)
    net = TinyNet2D()
    opts = EngineOptions(device="cpu", patch_size=32, gaussian=0.5)
    a = denoise(img, net, **opts.as_kwargs())
    b = denoise(img, net, device="cpu", patch_size=32, gaussian=0.5)
    np.testing.assert_array_equal(a, b)
    c = denoise_stack(img[None], net, **opts.as_kwargs())
    np.testing.assert_array_equal(c[0], a)
    with pytest.raises(TypeError, match="unexpected keyword"):
        denoise_stack(img[None], net, colour="red")
