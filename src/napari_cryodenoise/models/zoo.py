"""Pretrained Topaz-Denoise weights: where they are looked for and how they are fetched.

The weights are the ``.sav`` state dicts that Topaz-Denoise ships inside its
PyPI wheel (``topaz-em==0.3.20``, under ``topaz/pretrained/denoise/``). For a
weights file, the places tried, in order, are:

1. the folder named by the environment variable ``NAPARI_CRYODENOISE_WEIGHTS``;
2. the per-user cache, ``<cache>/weights`` where ``<cache>`` is
   ``$NAPARI_CRYODENOISE_CACHE``, else ``$XDG_CACHE_HOME/napari-cryodenoise``,
   else ``~/.cache/napari-cryodenoise``;
3. an installed ``topaz-em`` package (located without importing it);
4. a download of the pinned wheel from PyPI's file host (sha256-checked), from
   which only the ``.sav`` files are extracted into the cache. Setting
   ``NAPARI_CRYODENOISE_OFFLINE=1`` disables this step.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import Cancelled, WeightsUnavailableError
from ..io.atomic import atomic_path
from ..types import CancelFn, ProgressFn

__all__ = [
    "ALIASES",
    "WHEEL_SHA256",
    "WHEEL_URL",
    "ModelInfo",
    "ZooEntry",
    "cache_dir",
    "fetch_weights",
    "find_weights",
    "list_models",
    "resolve_alias",
    "weights_dir",
    "weights_path",
]

ENV_WEIGHTS = "NAPARI_CRYODENOISE_WEIGHTS"
ENV_CACHE = "NAPARI_CRYODENOISE_CACHE"
ENV_OFFLINE = "NAPARI_CRYODENOISE_OFFLINE"
ENV_WHEEL_URL = "NAPARI_CRYODENOISE_WHEEL_URL"

WHEEL_NAME = "topaz_em-0.3.20-py3-none-any.whl"
WHEEL_URL = (
    "https://files.pythonhosted.org/packages/9d/dd/"
    "df3b0d50084489b3b1329b36428fb734db904864944feb8288f8c5ae4217/" + WHEEL_NAME
)
WHEEL_SHA256 = "2b89821650c6f1b06b8cdedc6283b1494d373bd804b353b0e51dcc24a3680abe"
_PINNED_SHA256 = WHEEL_SHA256
WHEEL_SIZE = 48_213_000
WHEEL_MEMBER_DIR = "topaz/pretrained/denoise/"


@dataclass(frozen=True)
class ZooEntry:
    """A pretrained weights file: its name, architecture and checksum."""

    file: str
    arch: str
    ndim: int
    description: str
    sha256: str
    size: int


_FILES: dict[str, ZooEntry] = {
    e.file: e
    for e in (
        ZooEntry(
            "unet_L2_v0.2.2.sav",
            "unet",
            2,
            "2D U-Net, L2 loss, kernels 11/5 (Topaz default)",
            "02709ad0bfe382f221b7ed9d4f9c14981689c2e0222e004036f925a002819c3e",
            4_429_141,
        ),
        ZooEntry(
            "unet_L2_v0.2.1.sav",
            "unet-v0.2.1",
            2,
            "2D U-Net, L2 loss, kernels 7/3 (older release)",
            "a29f4ef2518ad11590e52b825fa847670d5e6f969dcd9867d6724468b383ea33",
            3_884_883,
        ),
        ZooEntry(
            "unet_small_L1_v0.2.2.sav",
            "unet-small",
            2,
            "2D U-Net with 3 pools, L1 loss (smaller receptive field)",
            "bae9b9f81de2d115cc3d6b41854de2e23178962487a8d2c9e6744cc2348ce352",
            2_600_122,
        ),
        ZooEntry(
            "fcnn_L1_v0.2.2.sav",
            "fcnn",
            2,
            "3-layer fully convolutional net, kernel 11, L1 loss",
            "f95402e81e00b44f5f0569511929e24495b7939eee94120d2ffb0cc3844f87d3",
            2_046_069,
        ),
        ZooEntry(
            "affine_L1_v0.2.2.sav",
            "affine",
            2,
            "single learned 31x31 linear filter, L1 loss",
            "b1520173a87954ccd1df641a071d712d795763baf735d0f4fcc8f0ba0dd7aa35",
            4_418,
        ),
        ZooEntry(
            "unet-3d-10a-v0.2.4.sav",
            "unet-3d",
            3,
            "3D U-Net for tomograms at ~10 A/voxel",
            "9011778cc231d667146435eba241fa984783624eaf18b929a0eabf23df527c3a",
            11_669_801,
        ),
        ZooEntry(
            "unet-3d-20a-v0.2.4.sav",
            "unet-3d",
            3,
            "3D U-Net for tomograms at ~20 A/voxel",
            "aa1df1163417f78ad88aa59f7b86856b2f43be7ae910b188de3fa4f9f9ec1ab2",
            11_669_801,
        ),
    )
}

#: Model aliases (Topaz's names) -> weights file entry.
ALIASES: dict[str, ZooEntry] = {
    "unet": _FILES["unet_L2_v0.2.2.sav"],
    "unet-v0.2.1": _FILES["unet_L2_v0.2.1.sav"],
    "unet-small": _FILES["unet_small_L1_v0.2.2.sav"],
    "fcnn": _FILES["fcnn_L1_v0.2.2.sav"],
    "affine": _FILES["affine_L1_v0.2.2.sav"],
    "unet-3d": _FILES["unet-3d-10a-v0.2.4.sav"],
    "unet-3d-10a": _FILES["unet-3d-10a-v0.2.4.sav"],
    "unet-3d-20a": _FILES["unet-3d-20a-v0.2.4.sav"],
}

# Statuses reported by list_models()
STATUS_CUSTOM = "custom dir"
STATUS_CACHED = "cached"
STATUS_TOPAZ = "in topaz-em"
STATUS_DOWNLOADABLE = "downloadable"
STATUS_UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ModelInfo:
    """One pretrained model as :func:`list_models` reports it."""

    alias: str
    arch: str
    ndim: int
    file: str
    description: str
    status: str
    path: Path | None


# -- locations -----------------------------------------------------------------------------


def cache_dir() -> Path:
    """Per-user cache root of this package (not created)."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "napari-cryodenoise"


def weights_dir() -> Path:
    """Folder where downloaded weights are cached (not created)."""
    return cache_dir() / "weights"


def _custom_dir() -> Path | None:
    env = os.environ.get(ENV_WEIGHTS)
    return Path(env).expanduser() if env else None


def _offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no")


def _topaz_dirs() -> list[Path]:
    """Folders of an installed topaz-em that may hold ``pretrained/denoise``; never imports it."""
    dirs: list[Path] = []
    try:
        dist = importlib.metadata.distribution("topaz-em")
        for f in dist.files or ():
            if f.as_posix().startswith(WHEEL_MEMBER_DIR) and f.name.endswith(".sav"):
                dirs.append(Path(dist.locate_file(f)).parent)
                break
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        # For a top-level package find_spec locates it without executing it.
        spec = importlib.util.find_spec("topaz")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            dirs.append(Path(loc) / "pretrained" / "denoise")
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def resolve_alias(name: str) -> ZooEntry:
    """Zoo entry of an alias or of a pretrained file name (``unet_L2_v0.2.2.sav``).

    Raises
    ------
    KeyError
        If ``name`` is neither.

    """
    if name in ALIASES:
        return ALIASES[name]
    if name in _FILES:
        return _FILES[name]
    raise KeyError(name)


def find_weights(name: str) -> tuple[Path, str] | None:
    """Locate the weights of an alias without downloading.

    Returns
    -------
    tuple of (Path, str) or None
        The file and where it was found (a :func:`list_models` status), or
        None when it is in none of the local places.

    """
    entry = resolve_alias(name)
    custom = _custom_dir()
    if custom is not None and (custom / entry.file).is_file():
        return custom / entry.file, STATUS_CUSTOM
    cached = weights_dir() / entry.file
    if cached.is_file():
        return cached, STATUS_CACHED
    for d in _topaz_dirs():
        if (d / entry.file).is_file():
            return d / entry.file, STATUS_TOPAZ
    return None


def weights_path(
    name: str,
    *,
    download: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Path:
    """Path of an alias's weights file, downloading the pinned wheel if needed.

    Parameters
    ----------
    name : str
        Alias (``"unet"``, ...) or pretrained file name.
    download : bool
        Allow step 4 (download); also disabled by ``NAPARI_CRYODENOISE_OFFLINE=1``.
    progress : callable, optional
        ``progress(done_bytes, total_bytes)`` during a download.
    cancel : callable, optional
        Returns True to abort a download (raises :class:`~napari_cryodenoise.errors.Cancelled`).

    Raises
    ------
    WeightsUnavailableError
        When no place has the file; the message lists what was tried and how to fix it.

    """
    entry = resolve_alias(name)
    found = find_weights(name)
    if found is not None:
        return found[0]
    failure: str | None = None
    if download and not _offline():
        try:
            fetch_weights(progress=progress, cancel=cancel)
        except WeightsUnavailableError as err:
            failure = str(err)
        else:
            path = weights_dir() / entry.file
            if path.is_file():
                return path
            failure = f"the wheel did not contain {entry.file}"
    elif _offline():
        failure = f"skipped ({ENV_OFFLINE} is set)"
    else:
        failure = "skipped (download=False)"
    raise WeightsUnavailableError(_unavailable_message(name, entry, failure))


def _unavailable_message(name: str, entry: ZooEntry, failure: str) -> str:
    custom = _custom_dir()
    topaz = _topaz_dirs()
    tried = [
        f"${ENV_WEIGHTS}: "
        + (f"{custom} has no {entry.file}" if custom is not None else "not set"),
        f"cache: {weights_dir() / entry.file} does not exist",
        "installed topaz-em: "
        + (", ".join(str(d) for d in topaz) + f" has no {entry.file}" if topaz else "not found"),
        f"download of {_wheel_url()}: {failure}",
    ]
    fixes = [
        "run `cryodenoise models --fetch` with internet access (downloads 48 MB once)",
        "or `pip install --no-deps topaz-em==0.3.20`",
        f"or copy {entry.file} (from topaz/pretrained/denoise/ of the topaz-em wheel) into "
        f"{weights_dir()} or into a folder named by ${ENV_WEIGHTS}",
    ]
    return (
        f"weights for model {name!r} ({entry.file}) are not available.\n  tried:\n    - "
        + "\n    - ".join(tried)
        + "\n  to fix: "
        + ";\n          ".join(fixes)
    )


# -- download ------------------------------------------------------------------------------


def _wheel_url() -> str:
    return os.environ.get(ENV_WHEEL_URL) or WHEEL_URL


def _open_url(url: str, timeout: float):  # separate so tests can substitute it
    request = urllib.request.Request(url, headers={"User-Agent": "napari-cryodenoise"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - pinned https URL


def fetch_weights(
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    timeout: float = 60.0,
) -> list[Path]:
    """Download the pinned topaz-em wheel and extract its denoising weights into the cache.

    The wheel is streamed to a temporary file next to the cache, its sha256 is
    checked, only ``topaz/pretrained/denoise/*.sav`` is extracted (each file
    written to a temporary name and atomically renamed, so concurrent fetches
    are safe) and the wheel is deleted.

    Parameters
    ----------
    url : str, optional
        Wheel URL; defaults to ``$NAPARI_CRYODENOISE_WHEEL_URL`` or the PyPI file URL.
    sha256 : str, optional
        Expected checksum of the wheel; defaults to the pinned :data:`WHEEL_SHA256`.
    progress : callable, optional
        ``progress(done_bytes, total_bytes)``.
    cancel : callable, optional
        Returns True to abort (raises ``Cancelled``).
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    list of Path
        The weights files now in the cache.

    Raises
    ------
    WeightsUnavailableError
        Network failure, checksum mismatch or a wheel without weights.

    """
    url = url or _wheel_url()
    sha256 = sha256 or WHEEL_SHA256
    dest = weights_dir()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightsUnavailableError(f"cannot create the cache folder {dest}: {err}") from err
    fd, tmp_name = tempfile.mkstemp(prefix=".wheel-", suffix=".part", dir=dest)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, _open_url(url, timeout) as response:
                length = response.headers.get("Content-Length") if response.headers else None
                total = int(length) if length else WHEEL_SIZE
                done = 0
                if progress is not None:
                    progress(0, total)
                while True:
                    if cancel is not None and cancel():
                        raise Cancelled("download of the pretrained weights cancelled")
                    chunk = response.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, max(total, done))
        except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts are OSErrors
            raise WeightsUnavailableError(f"download of {url} failed: {err}") from err
        if digest.hexdigest() != sha256:
            raise WeightsUnavailableError(
                f"download of {url} is corrupt: sha256 {digest.hexdigest()} != expected {sha256}"
            )
        # the per-file checksums describe the pinned wheel only
        return _extract_weights(tmp, dest, check_members=sha256 == _PINNED_SHA256)
    finally:
        tmp.unlink(missing_ok=True)


def _extract_weights(wheel: Path, dest: Path, *, check_members: bool) -> list[Path]:
    written: list[Path] = []
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                name = info.filename
                if not name.startswith(WHEEL_MEMBER_DIR) or not name.endswith(".sav"):
                    continue
                base = name[len(WHEEL_MEMBER_DIR) :]
                if "/" in base or not base or base.startswith("."):
                    continue
                written.append(_write_atomic(dest / base, zf, info, check_members))
    except zipfile.BadZipFile as err:
        raise WeightsUnavailableError(f"{wheel.name} is not a valid wheel: {err}") from err
    if not written:
        raise WeightsUnavailableError(f"the wheel has no {WHEEL_MEMBER_DIR}*.sav files")
    return written


def _write_atomic(target: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, check: bool) -> Path:
    """Extract one member to ``target`` atomically and durably, checking its sha256."""
    with atomic_path(target) as tmp:
        digest = hashlib.sha256()
        with open(tmp, "xb") as out, zf.open(info) as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
        entry = _FILES.get(target.name)
        if check and entry is not None and digest.hexdigest() != entry.sha256:
            raise WeightsUnavailableError(f"{target.name} in the wheel has an unexpected checksum")
    return target  # a concurrent fetch writes identical bytes


# -- listing -------------------------------------------------------------------------------


def list_models() -> list[ModelInfo]:
    """All pretrained aliases with where their weights are (or that they can be fetched).

    Returns
    -------
    list of ModelInfo
        One per alias; ``status`` is ``"custom dir"``, ``"cached"``,
        ``"in topaz-em"``, ``"downloadable"`` or ``"unavailable"`` (offline).

    """
    infos = []
    for alias, entry in ALIASES.items():
        found = find_weights(alias)
        if found is not None:
            path, status = found
        else:
            path, status = None, (STATUS_UNAVAILABLE if _offline() else STATUS_DOWNLOADABLE)
        infos.append(
            ModelInfo(alias, entry.arch, entry.ndim, entry.file, entry.description, status, path)
        )
    return infos
