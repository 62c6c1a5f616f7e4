"""Building, loading and saving denoising networks.

Three on-disk forms are read:

* the native format, a ``torch.save``'d dict ``{"format": "napari-cryodenoise/1",
  "arch": ..., "state_dict": ..., "metadata": {...}}`` (loadable with
  ``torch.load(weights_only=True)``);
* a Topaz state dict (``.sav``, e.g. the pretrained files): the architecture
  is inferred from the parameter names and shapes;
* a Topaz whole-module pickle (what ``topaz denoise`` training writes). Reading
  one needs full unpickling, so it is refused unless the caller opts in
  (``allow_pickle=True`` or ``NAPARI_CRYODENOISE_ALLOW_PICKLE=1``); even then
  only torch layers and tensors are accepted, Topaz classes are replaced by
  inert stand-ins and the network is rebuilt from its state dict.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import types
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..io.atomic import atomic_path
from .fast_unet import FAST_ARCHS, FastUNet, build_fast_model
from .simple import FCNN, AffineFilter
from .unet import UNET_ARCHS, UNet, UNetSpec

__all__ = [
    "ARCHITECTURES",
    "FORMAT",
    "build_model",
    "export_topaz_state_dict",
    "infer_arch",
    "load_checkpoint",
    "model_arch",
    "model_from_state_dict",
    "save_model",
    "save_topaz_state_dict",
]

FORMAT = "napari-cryodenoise/1"
ENV_ALLOW_PICKLE = "NAPARI_CRYODENOISE_ALLOW_PICKLE"

#: Architecture name -> (ndim, description).
ARCHITECTURES: dict[str, tuple[int, str]] = {
    **{name: (spec.ndim, spec.description) for name, spec in UNET_ARCHS.items()},
    "fcnn": (2, "3-layer fully convolutional net 1-64-64-1, kernel 11"),
    "affine": (2, "single 31x31 linear filter with bias"),
    **FAST_ARCHS,
}


def build_model(arch: str, *, name: str | None = None, **options: Any) -> nn.Module:
    """Build a network of a known architecture with fresh random weights, in eval mode.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES` (``"unet"``, ``"unet-v0.2.1"``,
        ``"unet-small"``, ``"fcnn"``, ``"affine"``, ``"unet-3d"``) or
        ``"unet-custom"`` with ``ndim, depth, first_kernel, last_kernel, nf``
        given as options.
    name : str, optional
        Model label; defaults to ``arch``.
    **options
        ``nf``/``kernel`` for ``fcnn``, ``size`` for ``affine``, the
        :class:`~napari_cryodenoise.models.unet.UNetSpec` fields for ``unet-custom``.

    Raises
    ------
    ValueError
        For an unknown architecture.

    """
    if arch in UNET_ARCHS and not options:
        model: nn.Module = UNet(arch, name=name)
    elif arch in ("unet-custom", "custom") or (arch in UNET_ARCHS and options):
        base = UNET_ARCHS.get(arch)
        fields = (
            {}
            if base is None
            else {
                "ndim": base.ndim,
                "depth": base.depth,
                "first_kernel": base.first_kernel,
                "last_kernel": base.last_kernel,
                "nf": base.nf,
            }
        )
        fields.update(options)
        model = UNet(UNetSpec(**fields), name=name)
    elif arch == "fcnn":
        model = FCNN(**options, name=name or "fcnn")
    elif arch == "affine":
        model = AffineFilter(**options, name=name or "affine")
    elif arch in FAST_ARCHS:
        model = build_fast_model(arch, name=name, **options)
    else:
        known = ", ".join(ARCHITECTURES)
        raise ValueError(f"unknown architecture {arch!r}; known: {known}")
    return model.eval()


def model_arch(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """Architecture name and the options that rebuild ``model`` with :func:`build_model`."""
    if isinstance(model, UNet):
        if model.arch in UNET_ARCHS:
            return model.arch, {}
        s = model.spec
        return "unet-custom", {
            "ndim": s.ndim,
            "depth": s.depth,
            "first_kernel": s.first_kernel,
            "last_kernel": s.last_kernel,
            "nf": s.nf,
        }
    if isinstance(model, FCNN):
        w = model.net[0].weight
        opts = {"nf": int(w.shape[0]), "kernel": int(w.shape[-1])}
        return "fcnn", ({} if opts == {"nf": 64, "kernel": 11} else opts)
    if isinstance(model, AffineFilter):
        size = int(model.filter.weight.shape[-1])
        return "affine", ({} if size == 31 else {"size": size})
    if isinstance(model, FastUNet):
        return model.arch, dict(model.arch_options)
    raise TypeError(f"not a napari-cryodenoise network: {type(model).__name__}")


# -- architecture inference ----------------------------------------------------------------

_ENC = re.compile(r"^enc(\d+)\.0\.weight$")


def infer_arch(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, dict[str, Any]]:
    """Architecture (name, build options) that a Topaz-style state dict belongs to.

    Raises
    ------
    ValueError
        When the keys match no supported architecture.

    """
    keys = set(state_dict)
    if "filter.weight" in keys and len(keys) <= 2:
        w = state_dict["filter.weight"]
        if w.dim() == 4 and tuple(w.shape[:2]) == (1, 1):
            size = int(w.shape[-1])
            return "affine", ({} if size == 31 else {"size": size})
    if {"net.0.weight", "net.2.weight", "net.4.weight"} <= keys:
        w = state_dict["net.0.weight"]
        if w.dim() == 4:
            opts = {"nf": int(w.shape[0]), "kernel": int(w.shape[-1])}
            return "fcnn", ({} if opts == {"nf": 64, "kernel": 11} else opts)
    if "enc1.0.weight" in keys and "dec1.0.weight" in keys:
        encs = sorted(int(m.group(1)) for k in keys if (m := _ENC.match(k)))
        w1 = state_dict["enc1.0.weight"]
        wd = state_dict["dec1.0.weight"]
        spec = UNetSpec(
            ndim=w1.dim() - 2,
            depth=max(encs) - 1,
            first_kernel=int(w1.shape[-1]),
            last_kernel=int(wd.shape[-1]),
            nf=int(w1.shape[0]),
        )
        if spec.ndim in (2, 3) and spec.depth >= 2:
            for name, known in UNET_ARCHS.items():
                if (known.ndim, known.depth, known.first_kernel, known.last_kernel, known.nf) == (
                    spec.ndim,
                    spec.depth,
                    spec.first_kernel,
                    spec.last_kernel,
                    spec.nf,
                ):
                    return name, {}
            return "unet-custom", {
                "ndim": spec.ndim,
                "depth": spec.depth,
                "first_kernel": spec.first_kernel,
                "last_kernel": spec.last_kernel,
                "nf": spec.nf,
            }
    sample = ", ".join(sorted(keys)[:6])
    raise ValueError(f"state dict matches no supported architecture (keys: {sample}, ...)")


def _clean_state_dict(state: Mapping[str, Any]) -> OrderedDict[str, torch.Tensor]:
    """Drop a DataParallel ``module.`` prefix and check that values are tensors."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"entry {key!r} is a {type(value).__name__}, not a tensor")
        out[key.removeprefix("module.")] = value
    return out


def model_from_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    *,
    name: str = "custom",
    arch: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build the matching network and load ``state_dict`` strictly (cpu, fp32, eval).

    Parameters
    ----------
    state_dict : mapping
        Topaz or native parameter dict.
    name : str
        Model label.
    arch, options : optional
        Skip inference and build this architecture.

    """
    state = _clean_state_dict(state_dict)
    if arch is None:
        arch, inferred = infer_arch(state)
        options = inferred
    model = build_model(arch, name=name, **dict(options or {}))
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.float().eval()


# -- loading -------------------------------------------------------------------------------

_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("__builtin__", "set"),
    ("builtins", "dict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("copyreg", "_reconstructor"),  # protocol 0/1 pickles of objects
    ("copy_reg", "_reconstructor"),
    ("builtins", "object"),
    ("__builtin__", "object"),
    ("torch", "Size"),
    ("torch", "device"),
}


class _TopazStandIn(nn.Module):
    """Inert replacement for a pickled Topaz network class; only holds layers."""

    def forward(self, *args: Any) -> Any:  # pragma: no cover - never run
        raise RuntimeError("stand-in for a pickled Topaz module; not runnable")


def _stand_in(module: str, name: str) -> type:
    return type(name, (_TopazStandIn,), {"__module__": f"_topaz_stand_in.{module}"})


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that accepts torch layers/tensors and replaces Topaz classes."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "topaz" or module.startswith("topaz."):
            return _stand_in(module, name)
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module.startswith("torch.nn.modules."):
            obj = super().find_class(module, name)
            if isinstance(obj, type) and issubclass(obj, nn.Module):
                return obj
        if module == "torch":
            obj = super().find_class(module, name)
            if isinstance(obj, torch.dtype):
                return obj
        if module == "torch.nn.backends.thnn" and name == "_get_thnn_function_backend":
            return lambda: None  # attribute of modules pickled by torch < 1.0
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


_restricted_pickle = types.SimpleNamespace(
    Unpickler=_RestrictedUnpickler,
    load=lambda f, **kw: _RestrictedUnpickler(f, **kw).load(),
    __name__="napari_cryodenoise_restricted_pickle",
)


def _allow_pickle_env() -> bool:
    return os.environ.get(ENV_ALLOW_PICKLE, "").strip().lower() in ("1", "true", "yes")


def load_checkpoint(path: str | os.PathLike, *, allow_pickle: bool | None = None) -> nn.Module:
    """Load a network from a native checkpoint, a Topaz ``.sav`` state dict or Topaz pickle.

    Parameters
    ----------
    path : path-like
        The file.
    allow_pickle : bool, optional
        Accept whole-module pickles (Topaz training output). Defaults to the
        environment variable ``NAPARI_CRYODENOISE_ALLOW_PICKLE``. Only open
        pickles from sources you trust.

    Returns
    -------
    torch.nn.Module
        cpu, float32, eval mode; ``name`` is the file stem.

    Raises
    ------
    InputError
        Unreadable file, unknown architecture, or a pickle without opt-in.

    """
    path = Path(path)
    name = path.stem
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # weights_only refuses custom classes (a whole-module pickle) and old opcodes
        if allow_pickle is None:
            allow_pickle = _allow_pickle_env()
        if not allow_pickle and "Unsupported global" not in str(err):
            raise InputError(
                f"{path}: not a readable model file (if it is a model pickled by an old "
                "PyTorch or Topaz, and you trust it, retry with allow_pickle=True / "
                "--allow-pickle)"
            ) from err
        if not allow_pickle:
            raise InputError(
                f"{path}: this is a pickled Python object (e.g. a model saved by `topaz denoise` "
                "training), which can run code when opened. If you trust the file, load it with "
                f"allow_pickle=True (CLI: --allow-pickle, or set {ENV_ALLOW_PICKLE}=1)"
            ) from err
        obj = _load_pickled_module(path)
    except Exception as err:  # corrupt zip, truncated file, not a torch file
        raise InputError(f"{path}: not a readable model file ({err})") from err
    try:
        return _model_from_object(obj, name)
    except (ValueError, RuntimeError, TypeError) as err:
        raise InputError(f"{path}: {err}") from err


def _load_pickled_module(path: Path) -> Any:
    warnings.warn(
        f"{path}: loading a pickled model (full unpickling, restricted to torch layers)",
        UserWarning,
        stacklevel=3,
    )
    try:
        return torch.load(
            path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle
        )
    except Exception as err:
        raise InputError(f"{path}: cannot read this pickled model ({err})") from err


def _model_from_object(obj: Any, name: str) -> nn.Module:
    if isinstance(obj, nn.Module):
        return model_from_state_dict(obj.state_dict(), name=name)
    if isinstance(obj, Mapping):
        if obj.get("format") == FORMAT:
            arch = obj.get("arch")
            meta = obj.get("metadata") or {}
            model = model_from_state_dict(
                obj["state_dict"],
                name=str(meta.get("name", name)),
                arch=arch,
                options=obj.get("options") or {},
            )
            model.metadata = dict(meta)
            return model
        if isinstance(obj.get("format"), str):
            raise ValueError(f"unsupported checkpoint format {obj['format']!r}")
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                return model_from_state_dict(inner, name=name)
            if isinstance(inner, nn.Module):
                return model_from_state_dict(inner.state_dict(), name=name)
        return model_from_state_dict(obj, name=name)
    raise ValueError(f"contains a {type(obj).__name__}, not a model or state dict")


# -- saving --------------------------------------------------------------------------------

_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"metadata key {where}.{k!r} must be a str")
            _check_plain(v, f"{where}.{k}")
        return
    raise TypeError(
        f"metadata {where} is a {type(value).__name__}; only str/int/float/bool/None/list/dict"
    )


def _state_dict_cpu(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    return OrderedDict(
        (k, v.detach().to("cpu", torch.float32).contiguous().clone())
        for k, v in model.state_dict().items()
    )


def export_topaz_state_dict(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """Return the parameters as a Topaz-compatible state dict (cpu, fp32, contiguous).

    Raises
    ------
    TypeError
        For a network Topaz does not have (e.g. ``unet-fast``) or a foreign module.

    """
    arch, _ = model_arch(model)  # raises for foreign modules
    if arch in FAST_ARCHS:
        raise TypeError(f"{arch} is not a Topaz architecture; save it with save_model instead")
    return _state_dict_cpu(model)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically and durably (:func:`~..io.atomic.atomic_path`).

    Raises
    ------
    OutputWriteError
        One line naming ``path`` for a full disk, a quota or a missing permission; no
        temporary file is left behind.

    """
    path = Path(path)
    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        f.write(buf.getbuffer())


def save_model(model: nn.Module, path: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Save in the native format, atomically; loadable with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    model : torch.nn.Module
        A network from this package.
    path : path-like
        Output file (conventionally ``.pt``).
    metadata : dict, optional
        Plain JSON-like values (str, numbers, bool, None, lists, dicts) to keep with it.

    Returns
    -------
    Path
        The written file.

    """
    arch, options = model_arch(model)
    meta = dict(metadata or {})
    meta.setdefault("name", getattr(model, "name", Path(path).stem))
    _check_plain(meta, "metadata")
    payload = {
        "format": FORMAT,
        "arch": arch,
        "options": options,
        "state_dict": _state_dict_cpu(model),
        "metadata": meta,
    }
    path = Path(path)
    atomic_torch_save(payload, path)
    return path


def save_topaz_state_dict(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write the parameters as a Topaz-style ``.sav`` state dict, atomically."""
    path = Path(path)
    atomic_torch_save(export_topaz_state_dict(model), path)
    return path
