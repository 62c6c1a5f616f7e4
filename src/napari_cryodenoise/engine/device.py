"""Compute devices, numeric precision, thread count and free memory."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch

from ..errors import InputError

log = logging.getLogger(__name__)

#: Precision names accepted everywhere, mapped to torch dtypes.
PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn a device name into a usable :class:`torch.device`.

    Parameters
    ----------
    spec : str or torch.device or None
        ``"auto"`` (CUDA, then Apple MPS, then CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or ``"mps"``. None means ``"auto"``.

    Returns
    -------
    torch.device

    Raises
    ------
    InputError
        If the device is unknown or not available on this machine.

    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    name = (spec or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "gpu":
        name = "cuda"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(
                f"device {spec!r}: CUDA is not available (this torch build is "
                f"{torch.__version__}); use --device cpu or auto"
            )
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise InputError(f"device {spec!r}: {err}") from None
        index = 0 if device.index is None else device.index
        count = torch.cuda.device_count()
        if index >= count:
            raise InputError(
                f"device {spec!r}: only {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
            )
        return torch.device("cuda", index)
    if name == "mps":
        if not _mps_available():
            raise InputError(f"device {spec!r}: Apple MPS is not available here")
        return torch.device("mps")
    raise InputError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_precision(precision: str | torch.dtype, device: torch.device) -> torch.dtype:
    """Map ``"fp32"``/``"bf16"``/``"fp16"`` to the dtype used on ``device``.

    fp16 convolutions are slow or missing on CPUs, so on the CPU fp16 falls back
    to bf16 (same memory, wider range) with a warning.

    Raises
    ------
    InputError
        For an unknown precision name.

    """
    if isinstance(precision, torch.dtype):
        names = {v: k for k, v in PRECISIONS.items()}
        if precision not in names:
            raise InputError(f"unsupported precision {precision}; use fp32, bf16 or fp16")
        precision = names[precision]
    key = str(precision).lower().replace("float", "fp").replace("bfloat", "bf")
    aliases = {
        "fp32": "fp32",
        "32": "fp32",
        "bf16": "bf16",
        "fp16": "fp16",
        "16": "fp16",
        "half": "fp16",
        "bp16": "bf16",
    }
    if key not in aliases:
        raise InputError(f"unknown precision {precision!r}; use fp32, bf16 or fp16")
    key = aliases[key]
    if key == "fp16" and device.type == "cpu":
        warnings.warn("fp16 is not supported on the CPU; using bf16 instead", stacklevel=3)
        key = "bf16"
    if key == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        warnings.warn(
            "this CPU has no native bf16 (AVX-512 BF16 / AMX): bf16 may be slower than fp32",
            stacklevel=3,
        )
    return PRECISIONS[key]


def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bf16 natively on this CPU (AVX-512 BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - other torch builds
        return False


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op thread count (None or <= 0 leaves it unchanged)."""
    if threads is not None and threads > 0:
        torch.set_num_threads(int(threads))


def _meminfo_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _cgroup_available() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_memory(device: torch.device) -> int:
    """Bytes that inference may use on ``device`` right now (a conservative estimate).

    CUDA: free device memory (``torch.cuda.mem_get_info``). CPU: ``MemAvailable``
    from ``/proc/meminfo`` (or ``os.sysconf`` pages), bounded by a cgroup limit.
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    candidates = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if not candidates:
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
            candidates.append(4 << 30)
    return int(min(candidates))


def host_memory_share(cap: int, *, floor: int = 0, share: float = 0.25) -> int:
    """A ``share`` of the host's free memory, between ``floor`` and ``cap`` bytes.

    The budget of caches that should never crowd out the rest of the machine (the
    live view's tile store, training's frame groups). When the free memory cannot be
    read, ``cap`` is assumed free.
    """
    try:
        free = available_memory(torch.device("cpu"))
    except Exception:  # noqa: BLE001 - unknown free memory: assume the cap is free
        free = cap
    return int(min(cap, max(floor, free * share)))


def is_out_of_memory(err: BaseException) -> bool:
    """Tell whether ``err`` means "this tile did not fit in memory"."""
    if isinstance(err, MemoryError):
        return True
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(err, oom):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def empty_cache(device: torch.device) -> None:
    """Give cached allocator blocks back after an out-of-memory error."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
