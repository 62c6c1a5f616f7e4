"""Networks prepared for one device and precision, and their batched forward pass.

:func:`load_models` turns aliases and paths into modules (through the one model cache,
:mod:`napari_cryodenoise.models.cache`); :func:`get_runner` wraps them in a cached
:class:`Runner` that averages their outputs on a window. Topaz-topology 2D U-Nets run
through the lean evaluator :class:`~.fastunet.UNetPlan`; other modules as they are (a
copy when they must move to another device or dtype: the caller's module is never
changed).
"""

from __future__ import annotations

import copy
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..types import DenoiserModel
from .device import resolve_device, resolve_precision
from .fastunet import UNetPlan

__all__ = ["ModelsLike", "Runner", "get_runner", "load_models"]

#: A module, an alias or model path, or a sequence of them.
ModelsLike = torch.nn.Module | str | os.PathLike | Sequence[torch.nn.Module | str | os.PathLike]

#: ``fn(window, keep, check=None)`` -> the model's output over ``keep``.
ForwardFn = Callable[..., torch.Tensor]

#: Runners kept by :func:`get_runner`.
RUNNER_CACHE_SIZE = 4

_RUNNERS: OrderedDict[tuple, Runner] = OrderedDict()
_LOCK = threading.Lock()


def load_models(models: ModelsLike | None) -> list[torch.nn.Module]:
    """Resolve a module, alias/path or a sequence of them to a list of modules.

    Aliases and paths are loaded with :func:`napari_cryodenoise.models.load_model`
    once per process (the shared :class:`~napari_cryodenoise.models.cache.ModelCache`,
    which reloads a model file that changed on disk).

    Raises
    ------
    InputError
        No model, a model without ``ndim``/``grid``/``halo``, or 2D and 3D models mixed.

    """
    from ..models.cache import shared_cache

    if models is None:
        models = "unet"
    if isinstance(models, (str, os.PathLike, torch.nn.Module)):
        models = [models]
    cache = shared_cache()
    result = [m if isinstance(m, torch.nn.Module) else cache.get(m) for m in models]
    if not result:
        raise InputError("no model given")
    for m in result:
        for attr in ("ndim", "grid", "halo"):
            if not hasattr(m, attr):
                raise InputError(f"model {type(m).__name__} lacks the attribute {attr!r}")
    ndims = {int(m.ndim) for m in result}
    if len(ndims) != 1:
        raise InputError("cannot average 2D and 3D models")
    return result


@dataclass
class _Executor:
    """One model prepared for a device and dtype."""

    fn: ForwardFn
    grid: int
    halo: int
    bytes_per_pixel: float  # window pixel, this dtype
    fixed_bytes: float
    name: str
    fast: bool


class Runner:
    """Models prepared for one device and precision, with their tiling geometry.

    Obtain one with :func:`get_runner` (cached); it is reused across calls, so
    repeated small-window calls (the live view) do not pay the set-up again.

    Attributes
    ----------
    ndim : int
        Spatial dimensions of the models.
    grid : int
        Least common multiple of the models' grids (tile offsets are multiples of it).
    halo : int
        Largest receptive radius of the models.

    """

    def __init__(
        self,
        models: list[torch.nn.Module],
        device: torch.device,
        dtype: torch.dtype,
        *,
        fast: bool = True,
    ):
        self.models = models
        self.device = device
        self.dtype = dtype
        self.ndim = int(models[0].ndim)
        self.executors = [self._prepare(m, fast) for m in models]
        self.grid = math.lcm(*[e.grid for e in self.executors])
        self.halo = max(e.halo for e in self.executors)

    def _prepare(self, model: torch.nn.Module, fast: bool) -> _Executor:
        grid = max(1, int(model.grid))
        halo = max(0, int(model.halo))
        name = str(getattr(model, "name", type(model).__name__))
        itemsize = torch.finfo(self.dtype).bits // 8
        plan = UNetPlan.from_model(model) if fast and self.ndim == 2 else None
        if plan is not None:
            plan.to(self.device, self.dtype)
            return _Executor(plan, grid, halo, 36 * itemsize, 260 * itemsize * 544**2, name, True)
        module: DenoiserModel = model
        params = list(model.parameters())
        moved = bool(params) and (params[0].device != self.device or params[0].dtype != self.dtype)
        if moved or model.training:  # never change the caller's module
            module = copy.deepcopy(model).to(device=self.device, dtype=self.dtype).eval()

        # measured: channels-last gives generic modules no gain (a loss for thin convs)
        def run(
            x: torch.Tensor, keep: tuple[slice, ...], check: Callable[[], None] | None = None
        ) -> torch.Tensor:
            return module(x)[(Ellipsis, *keep)]

        per_pixel = (400 if self.ndim == 2 else 420) * itemsize
        return _Executor(run, grid, halo, per_pixel, 0.0, name, False)

    @property
    def bytes_per_pixel(self) -> float:
        """Activation bytes per window pixel (the largest of the models)."""
        return max(e.bytes_per_pixel for e in self.executors)

    @property
    def fixed_bytes(self) -> float:
        """Working memory that does not scale with the window."""
        return max(e.fixed_bytes for e in self.executors)

    @torch.inference_mode()
    def __call__(
        self, x: torch.Tensor, keep: tuple[slice, ...], check: Callable[[], None] | None = None
    ) -> torch.Tensor:
        """Average of every model's output over the ``keep`` part of window ``x``.

        ``check`` is called between models and sub-tiles (it may raise to cancel).
        """
        out = None
        for ex in self.executors:
            if check is not None:
                check()
            y = ex.fn(x, keep, check=check)
            y = y.float()
            out = y if out is None else out.add_(y)
        if len(self.executors) > 1:
            out /= len(self.executors)
        return out


def _fingerprint(model: torch.nn.Module) -> tuple:
    """Identity plus a cheap weights version (in-place updates, e.g. training, change it)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return (id(model), tuple((t.data_ptr(), t._version) for t in tensors))


def get_runner(
    models: ModelsLike | None,
    device: str | torch.device = "auto",
    precision: str | torch.dtype = "fp32",
    *,
    fast: bool = True,
) -> Runner:
    """Return a cached :class:`Runner` for these models on this device and precision."""
    mods = load_models(models)
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    key = (tuple(_fingerprint(m) for m in mods), str(dev), dtype, fast)
    with _LOCK:
        runner = _RUNNERS.get(key)
        if runner is not None and all(a is b for a, b in zip(runner.models, mods, strict=True)):
            _RUNNERS.move_to_end(key)
            return runner
    runner = Runner(mods, dev, dtype, fast=fast)
    with _LOCK:
        _RUNNERS[key] = runner
        while len(_RUNNERS) > RUNNER_CACHE_SIZE:
            _RUNNERS.popitem(last=False)
    return runner
