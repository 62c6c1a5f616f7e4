"""The one options object: engine arguments, the bin rule, the widget's settings built on it."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.options import AUTO, DenoiseOptions, FileOptions


def test_options_are_frozen_hashable_and_pickle():
    opts = FileOptions(device="cpu", bin_factor=AUTO, fmt="tiff")
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.device = "cuda"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(opts)) == opts and hash(opts) == hash(opts.with_())
    assert isinstance(opts, DenoiseOptions) and opts.with_(device="cuda:1").device == "cuda:1"


def test_engine_kwargs_and_bin_rule():
    opts = DenoiseOptions(precision="bf16", lowpass=4.0, gaussian=1.5, patch_size=256)
    kw = opts.engine_kwargs(2.0)
    assert kw["bin_factor"] == 2.0 and kw["lowpass"] == 4.0 and kw["precision"] == "bf16"
    assert kw["patch_size"] == 256 and kw["gaussian"] == 1.5
    assert DenoiseOptions().engine_kwargs(1.0)["lowpass"] is None
    assert DenoiseOptions(bin_factor=AUTO).resolve_bin(0.67) == 4.0
    assert DenoiseOptions(pixel_size=2.0).resolve_bin(1.0) == 2.0
    assert DenoiseOptions(bin_factor=AUTO).binned and not DenoiseOptions().binned
    with pytest.raises(InputError, match="needs the input's pixel size"):
        DenoiseOptions(pixel_size=2.0).resolve_bin(None)


def test_widget_settings_extend_the_options_with_the_same_fields():
    from napari_cryodenoise._napari.settings import DenoiseSettings

    s = DenoiseSettings(model="unet", lowpass=1.0, bin_factor=2, gaussian=1.0)
    assert isinstance(s, DenoiseOptions)
    assert s.lowpass_factor is None and s.engine_kwargs(2)["lowpass"] is None
    meta = s.as_metadata()
    assert list(meta) == [
        "model",
        "device",
        "precision",
        "patch_size",
        "gaussian",
        "lowpass",
        "bin_factor",
        "mode",
        "ensemble",
    ]
    restored = DenoiseSettings(**{**meta, "lowpass": meta["lowpass"] or 1.0})
    assert restored == s
