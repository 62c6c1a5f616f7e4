"""Result layers: names, geometry and metadata of denoised outputs (no Qt)."""

from __future__ import annotations

import time
import zlib
from typing import Any

import numpy as np

from .. import __version__
from .layers import METADATA_KEY, robust_contrast_limits
from .settings import MODE_LIVE, DenoiseSettings, cli_command

#: Key in a result layer's facts that marks it as this plugin's output.
RESULT_KEY = "denoise"


def result_name(source_name: str, settings: DenoiseSettings) -> str:
    """``<input> [unet]``, with non-default pre-filters named: ``<input> [unet, bin 2]``."""
    parts = [settings.model_label]
    if settings.bin_factor > 1:
        parts.append(f"bin {int(settings.bin_factor)}")
    if settings.lowpass_factor:
        parts.append(f"lowpass {settings.lowpass_factor:g}")
    if settings.gaussian > 0:
        parts.append(f"gaussian {settings.gaussian:g}")
    return f"{source_name} [{', '.join(parts)}]"


def source_facts(layer: Any) -> dict[str, Any]:
    """Return this plugin's facts about a layer (empty for layers from elsewhere)."""
    meta = getattr(layer, "metadata", None) or {}
    facts = meta.get(METADATA_KEY, {})
    return dict(facts) if isinstance(facts, dict) else {}


def source_path(layer: Any) -> str | None:
    """The file a layer was read from, if known."""
    facts = source_facts(layer)
    path = facts.get("path") or facts.get("source_path")
    if path:
        return str(path)
    source = getattr(layer, "source", None)
    path = getattr(source, "path", None)
    return str(path) if path else None


def is_result(layer: Any) -> bool:
    """True for a layer this widget produced."""
    return RESULT_KEY in source_facts(layer)


def result_metadata(
    source: Any,
    settings: DenoiseSettings,
    *,
    model: Any = None,
    stacked: bool = False,
    live: bool = False,
) -> dict[str, Any]:
    """``layer.metadata`` for a result: input facts, model, settings, version, command.

    This is the full provenance record; saved MRC files carry it packed into
    their header labels (:func:`napari_cryodenoise.provenance.mrc_labels`).
    """
    facts = source_facts(source)
    path = facts.pop("path", None) or source_path(source)
    facts["source_path"] = path
    facts["source_layer"] = source.name
    facts["settings"] = {k: v for k, v in settings.as_metadata().items() if v is not None}
    facts[RESULT_KEY] = {
        "model": settings.model,
        "model_arch": getattr(model, "arch", None),
        "model_halo": getattr(model, "halo", None),
        "model_grid": getattr(model, "grid", None),
        "mode": MODE_LIVE if live else settings.mode,
        "stacked": stacked,
        "package": "napari-cryodenoise",
        "version": __version__,
        "command": cli_command(settings, path, stack=stacked),
        "device_used": _device_used(settings.device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if settings.bin_factor > 1:
        facts[RESULT_KEY]["note"] = "binned: the pixel size is bin x the input's"
    return {METADATA_KEY: facts}


def _device_used(device: str) -> str | None:
    """The device ``"auto"`` (or any choice) resolves to here, e.g. ``"cpu"``."""
    try:
        from ..engine import resolve_device

        return str(resolve_device(device))
    except Exception:  # noqa: BLE001 - provenance is best effort
        return None


def result_geometry(source: Any, out_shape: tuple[int, ...]) -> dict[str, Any]:
    """Scale, translate, units and axis labels placing a result over its source.

    Axes whose length changed (binning) get a proportionally larger pixel:
    Fourier binning keeps the first pixel's centre in place, so the
    translate is unchanged.
    """
    in_shape = tuple(source.data.shape)
    scale = np.asarray(source.scale, float).copy()
    for axis, (n_in, n_out) in enumerate(zip(in_shape, out_shape, strict=True)):
        if n_in != n_out and n_out > 0:
            scale[axis] *= n_in / n_out
    kwargs: dict[str, Any] = {
        "scale": tuple(scale),
        "translate": tuple(np.asarray(source.translate, float)),
    }
    for attr in ("units", "axis_labels"):
        value = getattr(source, attr, None)
        if value is not None:
            kwargs[attr] = tuple(str(v) for v in value)
    return kwargs


def contrast_limits_for(data: Any) -> tuple[float, float]:
    """Robust (0.5-99.5 %) limits of a result from a strided sample (~250k pixels)."""
    return robust_contrast_limits(np.asarray(data), max_samples=250_000)


def data_key(data: Any) -> tuple:
    """Identify layer data cheaply: object id, shape, dtype and a checksum of a few rows.

    Non-numpy arrays (dask, zarr) are not sampled, so nothing is computed here.
    """
    shape = tuple(int(n) for n in data.shape)
    key: tuple = (id(data), shape, str(data.dtype))
    if isinstance(data, np.ndarray) and data.size:
        rows = data.reshape(-1, shape[-1]) if data.ndim > 1 else data.reshape(1, -1)
        picks = np.unique(np.linspace(0, rows.shape[0] - 1, 16).astype(int))
        key += (zlib.crc32(np.ascontiguousarray(rows[picks]).tobytes()),)
    return key
