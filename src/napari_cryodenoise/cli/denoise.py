"""``cryodenoise denoise``: denoise micrographs, stacks and tomograms from the shell.

The per-file work is :func:`denoise_file`, reusable by batch runners (Dask):
it takes plain paths, already loaded models and a :class:`DenoiseSettings`,
and returns a :class:`FileResult` instead of raising for bad inputs.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Cancelled, CryoDenoiseError, InputError
from ._common import add_allow_pickle
from ._types import (
    bin_arg,
    gaussian_sigma,
    int_range,
    lowpass_factor,
    nonnegative_int,
    positive_float,
)

__all__ = [
    "DenoiseSettings",
    "FileResult",
    "add_parser",
    "denoise_file",
    "expand_inputs",
    "output_path",
    "run",
]

FORMATS = ("mrc", "tiff", "png")
_SUFFIX = {"mrc": ".mrc", "tiff": ".tif", "png": ".png"}
_DEFAULT_2D = "unet"
_DEFAULT_3D = "unet-3d"


@dataclass(frozen=True)
class DenoiseSettings:
    """Everything that :func:`denoise_file` needs besides paths and models.

    ``bin_factor`` and ``pixel_size`` (target Angstrom/px) are alternatives;
    ``stack`` forces slice-by-slice denoising of 3D files. ``explicit_model``: the
    user chose the models, so a 2D choice is never swapped for the default 3D model
    on a volume (an error says why instead).
    """

    device: str = "auto"
    precision: str = "fp32"
    patch_size: int | None = None
    padding: int | None = None
    batch_size: int | None = None
    bin_factor: float | str = 1.0  # or "auto": from the header pixel size
    pixel_size: float | None = None
    restore_size: bool = False
    gaussian: float = 0.0
    lowpass: float | None = None
    normalize: bool = False
    fmt: str = "mrc"
    stack: bool = False
    volume: bool = False
    overwrite: bool = False
    skip_existing: bool = False
    threads: int | None = None
    explicit_model: bool = False


@dataclass
class FileResult:
    """Outcome of one file: ``status`` is "done", "skipped" or "failed"."""

    input: Path
    output: Path
    status: str
    seconds: float = 0.0
    message: str = ""
    shape: tuple[int, ...] = ()
    timings: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs


def expand_inputs(
    items: Sequence[str],
    *,
    suffixes: Sequence[str] | None = None,
    project_dir: str | os.PathLike | None = None,
    lists: list[Path] | None = None,
) -> list[Path]:
    """Files from paths, directories (their image files), glob patterns and RELION STAR lists.

    Missing paths are kept (and reported later as failures) so that a typo is
    not silently skipped; duplicates are dropped, order is kept. Relative names
    in STAR lists are resolved against ``project_dir`` (default: the working
    directory) first. The STAR lists read are appended to ``lists`` when given
    (they are inputs too).
    """
    from ..io import is_image_path, read_star_micrographs
    from ..io.sniff import image_suffix

    wanted = tuple(s.lower() for s in suffixes) if suffixes else None
    found: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found += sorted(
                p
                for p in path.iterdir()
                if p.is_file() and (image_suffix(p) in wanted if wanted else is_image_path(p))
            )
        elif path.suffix.lower() == ".star" and path.is_file():
            found += list(read_star_micrographs(path, project_dir=project_dir))
            if lists is not None:
                lists.append(path)
        elif any(c in item for c in "*?[") and not path.exists():
            matches = sorted(glob.glob(os.path.expanduser(item)))
            if not matches:
                found.append(path)  # reported as missing
            for m in matches:
                p = Path(m)
                if p.suffix.lower() == ".star":
                    found += list(read_star_micrographs(p, project_dir=project_dir))
                    if lists is not None:
                        lists.append(p)
                elif p.is_file():
                    found.append(p)
        else:
            found.append(path)
    unique, seen = [], set()
    for p in found:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def output_path(in_path: Path, outdir: Path, fmt: str, *, kind: str | None = None) -> Path:
    """``outdir/<stem>.<ext>``; stacks keep ``.mrcs`` when written as MRC.

    A compressed input's name loses both suffixes: ``emd_1.map.gz`` -> ``emd_1.mrc``.
    """
    from ..io.sniff import image_suffix, strip_compression

    ext = _SUFFIX[fmt]
    if fmt == "mrc" and image_suffix(in_path) == ".mrcs":
        ext = ".mrcs"
    return Path(outdir) / f"{strip_compression(in_path).stem}{ext}"


# --------------------------------------------------------------------------- writing


def _atomic_write(path: Path, writer: Callable[[Path], None]) -> None:
    from ..io.atomic import atomic_path

    with atomic_path(path) as tmp:
        writer(tmp)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (0.5, 99.5))
    if not hi > lo:
        hi = lo + 1.0
    return (np.clip((image - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8)


def _write(out_path: Path, data: np.ndarray, fmt: str, *, voxel_size, origin, kind, protect):
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mrc":
        from ..io import write_mrc

        write_mrc(
            out_path,
            data,
            voxel_size=voxel_size,
            origin=origin,
            kind=kind,
            protect=protect,
            overwrite=True,
            labels=("denoised with napari-cryodenoise",),
        )
        return
    if fmt == "tiff":
        import tifffile

        res = 1e8 / float(voxel_size[-1])  # pixels per cm
        _atomic_write(
            out_path,
            lambda p: tifffile.imwrite(
                p,
                np.ascontiguousarray(data, np.float32),
                resolution=(res, res),
                resolutionunit="CENTIMETER",
                metadata=None,
            ),
        )
        return
    if data.ndim != 2:
        raise InputError("PNG output is for 2D images only; use --format mrc or tiff")
    from PIL import Image

    _atomic_write(out_path, lambda p: Image.fromarray(_to_uint8(data)).save(p, format="PNG"))


# --------------------------------------------------------------------------- per-file work


def denoise_file(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    models: object,
    settings: DenoiseSettings,
    *,
    models_3d: object = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    protect: Collection[str | os.PathLike] = (),
) -> FileResult:
    """Denoise one file and write the result; never raises for a bad input.

    Parameters
    ----------
    in_path, out_path : path-like
        Input image/stack/volume and output file (format from ``settings.fmt``).
    models : module, alias, path or a sequence of them
        2D models (micrographs and stacks).
    settings : DenoiseSettings
        Options (device, precision, tiling, filters, binning, output).
    models_3d : optional
        Models for volumes (default: ``models`` if they are 3D, else "unet-3d").
    progress, cancel : callable, optional
        Engine callbacks (tiles done/total; True to stop).
    protect : collection of path
        Files never to overwrite (other inputs); ``in_path`` always is. Checked with
        :func:`~napari_cryodenoise.io.output_guard.check_outputs` (symlinks, hard
        links, ``..``). A batch checks all its outputs once instead (as the CLI does).

    Returns
    -------
    FileResult
        ``status`` "done", "skipped" (a complete output exists and
        ``skip_existing``; an incomplete one is redone) or "failed" with a
        one-line ``message``. :class:`~napari_cryodenoise.errors.Cancelled`
        and ``KeyboardInterrupt`` propagate.

    """
    from ..distributed import output_is_complete
    from ..engine import denoise, denoise_stack
    from ..io.output_guard import check_outputs

    in_path, out_path = Path(in_path), Path(out_path)
    start = time.perf_counter()
    result = FileResult(in_path, out_path, "failed")
    try:
        check_outputs([("output", out_path)], [in_path, *protect])
        if os.path.lexists(out_path):
            if settings.skip_existing and output_is_complete(out_path):
                result.status, result.message = "skipped", "output exists"
                return result
            if not (settings.overwrite or settings.skip_existing):
                raise InputError(
                    f"{out_path} exists (use --overwrite to replace it or --skip-existing)"
                )
        if not in_path.exists():
            raise InputError(f"{in_path}: no such file")
        plan = _plan(in_path, models, settings, models_3d)
        result.message = plan.note
        data, info, mods = plan.data, plan.info, plan.models
        kw = dict(plan.engine_kw, progress=progress, cancel=cancel)
        if plan.per_slice:
            out = denoise_stack(data, mods, **kw)
        else:
            out = denoise(data, mods, **kw)
        del data
        _write(
            out_path,
            out,
            settings.fmt,
            voxel_size=plan.output_voxel_size(out.shape),
            origin=info.origin,
            kind=info.kind,
            protect=[in_path],
        )
        result.status = "done"
        result.shape = tuple(out.shape)
        result.message = plan.note
    except (Cancelled, KeyboardInterrupt):
        raise
    except (CryoDenoiseError, OSError, ValueError, MemoryError) as err:
        from ._common import one_line

        message = one_line(err)
        if str(in_path) not in message and str(out_path) not in message:
            message = f"{in_path}: {message}"
        result.message = message
    finally:
        result.seconds = time.perf_counter() - start
    return result


@dataclass
class _Plan:
    """What :func:`denoise_file` and :func:`denoise_planes` decide before running."""

    data: np.ndarray
    info: Any
    models: list
    per_slice: bool
    engine_kw: dict
    note: str = ""  # e.g. the automatic bin factor, for the per-file log line

    def output_voxel_size(self, out_shape: tuple[int, ...]) -> tuple[float, float, float]:
        """Voxel size ``(z, y, x)`` of the written grid (binning changes it)."""
        vz, vy, vx = self.info.voxel_size
        if tuple(out_shape) != tuple(self.info.shape):
            scale = [a / b for a, b in zip(self.info.shape, out_shape, strict=True)]
            if self.per_slice:
                scale = [1.0, *scale[1:]]
            if len(scale) == 2:
                vy, vx = vy * scale[0], vx * scale[1]
            else:
                vz, vy, vx = vz * scale[0], vy * scale[1], vx * scale[2]
        return vz, vy, vx


def _plan(in_path: Path, models: object, settings: DenoiseSettings, models_3d: object) -> _Plan:
    """Read the header, pick 2D or 3D models and resolve binning (raises InputError)."""
    from ..binning import AUTO, auto_bin_text, resolve_bin
    from ..engine import load_models
    from ..io import read_image
    from ._denoise_checks import check_binned_size, explicit_2d_on_volume

    if not in_path.exists():
        raise InputError(f"{in_path}: no such file")
    data, info = read_image(in_path, mmap=True)
    kind = info.kind
    mods = load_models(models)
    as_volume = kind == "volume" or settings.volume
    note = ""
    if data.ndim == 3 and as_volume and not settings.stack:
        if int(mods[0].ndim) != 3:
            if models_3d is None and settings.explicit_model:
                raise explicit_2d_on_volume(in_path, mods)
            if models_3d is None:
                note = f"a volume: the default 3D model {_DEFAULT_3D} was used"
            mods = load_models(models_3d if models_3d is not None else _DEFAULT_3D)
        if int(mods[0].ndim) != 3:
            raise InputError(
                f"{in_path} is a volume: give a 3D model (--model unet-3d) "
                "or use --stack to denoise it slice by slice"
            )
        per_slice = False
    else:
        if int(mods[0].ndim) != 2:
            raise InputError(f"{in_path}: a {kind} needs 2D models, got 3D ones")
        per_slice = data.ndim == 3
    pixel = None if info.voxel_size_is_placeholder else float(info.pixel_size)
    if settings.pixel_size and pixel is None:
        raise InputError(
            f"{in_path}: the header has no pixel size, so --pixel-size cannot be "
            "used; use --bin instead"
        )
    try:
        bin_factor = resolve_bin(settings.bin_factor, pixel, settings.pixel_size)
    except InputError as err:
        raise InputError(f"{in_path}: {err}") from None
    if settings.bin_factor == AUTO and not settings.pixel_size:
        auto = f"bin {auto_bin_text(pixel, int(bin_factor))}"
        note = f"{note}; {auto}" if note else auto
    if abs(bin_factor - 1.0) < 1e-6:
        bin_factor = 1.0
    else:
        plane = data.shape[1:] if per_slice else data.shape
        check_binned_size(in_path, plane, bin_factor, mods, settings)
    kw = dict(
        device=settings.device,
        precision=settings.precision,
        patch_size=settings.patch_size,
        padding=settings.padding,
        batch_size=settings.batch_size,
        normalize=settings.normalize,
        gaussian=settings.gaussian,
        lowpass=settings.lowpass,
        bin_factor=bin_factor,
        restore_size=settings.restore_size,
        threads=settings.threads,
    )
    return _Plan(data, info, mods, per_slice, kw, note)


def splittable_planes(
    in_path: str | os.PathLike, settings: DenoiseSettings, models: object, models_3d: object = None
) -> bool:
    """Whether a file can be denoised as independent groups of planes (z ranges).

    True for stacks denoised slice by slice (each slice has its own statistics)
    and for volumes with 3D models when no whole-volume operation is asked for
    (binning, low-pass, Gaussian), written as MRC.
    """
    if settings.fmt != "mrc":
        return False
    plan = _plan(Path(in_path), models, settings, models_3d)
    if plan.data.ndim != 3:
        return False
    if plan.per_slice:
        return True
    kw = plan.engine_kw
    return kw["bin_factor"] == 1.0 and not kw["lowpass"] and not kw["gaussian"]


def denoise_planes(
    in_path: str | os.PathLike,
    part_path: str | os.PathLike,
    models: object,
    settings: DenoiseSettings,
    planes: tuple[int, int],
    *,
    models_3d: object = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """Denoise planes ``z0:z1`` of a stack or volume into an MRC file of their own.

    The planes are exactly those of :func:`denoise_file` on the whole file:
    stack slices are independent, and a volume's slab is computed with the
    whole volume's statistics and the 3D models' halo
    (:func:`~napari_cryodenoise.engine.denoise_region`). Check
    :func:`splittable_planes` first. Raises on failure.
    """
    from ..engine import denoise_region, denoise_stack, image_stats
    from ..io import write_mrc

    in_path, part_path = Path(in_path), Path(part_path)
    plan = _plan(in_path, models, settings, models_3d)
    z0, z1 = (int(z) for z in planes)
    if plan.per_slice:
        kw = dict(plan.engine_kw, progress=progress, cancel=cancel)
        out = denoise_stack(plan.data[z0:z1], plan.models, **kw)
    else:
        kw = {k: v for k, v in plan.engine_kw.items() if k not in ("bin_factor", "restore_size")}
        region = (slice(z0, z1), slice(None), slice(None))
        out = denoise_region(
            plan.data,
            plan.models,
            region,
            stats=image_stats(plan.data),
            progress=progress,
            cancel=cancel,
            **kw,
        )
    plane_shape = (plan.info.shape[0], *out.shape[1:])
    return write_mrc(
        part_path,
        out,
        voxel_size=plan.output_voxel_size(plane_shape),
        origin=plan.info.origin,
        kind=plan.info.kind,
        protect=[in_path],
    )


# --------------------------------------------------------------------------- command line


class _Bar:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled, self.last = label, enabled, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        frac = done / total if total else 1.0
        width = 30
        fill = int(round(frac * width))
        sys.stderr.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {frac:4.0%}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``cryodenoise denoise``."""
    p = subparsers.add_parser(
        "denoise",
        help="denoise micrographs, stacks and tomograms",
        description=(
            "Denoise MRC/TIFF micrographs (2D models), .mrcs stacks (each slice) and "
            "tomograms (.rec or other volumes, 3D models). Results are seamless: tiles "
            "reproduce whole-image inference exactly."
        ),
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="files, directories, glob patterns or RELION .star micrograph lists",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument(
        "-m",
        "--model",
        action="append",
        metavar="NAME|PATH",
        help="model alias or file; repeat to average several, or to give 2D models for "
        "micrographs and 3D ones for volumes (default: unet, unet-3d for volumes)",
    )
    p.add_argument(
        "-d",
        "--device",
        default="auto",
        help="auto, cpu, cuda or cuda:N (default auto); Topaz's -1 / N also work",
    )
    p.add_argument(
        "-s",
        "--patch-size",
        type=int_range(16, 32768, "pixels"),
        default=None,
        help="output pixels per tile side (default: from free memory)",
    )
    p.add_argument(
        "-p",
        "--padding",
        type=int_range(0, 4096, "pixels"),
        default=None,
        help="context pixels per tile side (default: the model's receptive "
        "radius, which makes tiling exact)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="compute precision (fp16 becomes bf16 on CPUs)",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--bin",
        dest="bin_factor",
        type=bin_arg,
        default=1.0,
        metavar="N|auto",
        help="Fourier-bin by N >= 1 (may be fractional) before denoising, keeping at least "
        "16 px per side; 'auto': from the header pixel size towards ~2.4 A/px, e.g. x4 at "
        "0.67 A/px (default 1: no binning)",
    )
    size.add_argument(
        "--pixel-size",
        type=positive_float,
        default=None,
        metavar="A",
        help="Fourier-bin to this pixel size in Angstrom (needs the header's)",
    )
    p.add_argument(
        "--restore-size",
        action="store_true",
        help="with --bin/--pixel-size, Fourier-pad the result back to the input grid",
    )
    p.add_argument(
        "--gaussian",
        type=gaussian_sigma,
        default=0.0,
        metavar="SIGMA",
        help="Gaussian pre-filter sigma in pixels, 0 to 100 (after normalisation)",
    )
    p.add_argument(
        "--lowpass",
        type=lowpass_factor,
        default=None,
        metavar="F",
        help="hard Fourier low-pass by this factor (1 to 1000; keeps frequencies up to "
        "1/(2F) cycles/px) before denoising",
    )
    p.add_argument(
        "--normalize",
        action="store_true",
        help="write standardised values instead of the input's units",
    )
    p.add_argument(
        "--format",
        dest="fmt",
        choices=FORMATS,
        default="mrc",
        help="output format (default mrc, float32)",
    )
    layout = p.add_mutually_exclusive_group()
    layout.add_argument(
        "--stack",
        action="store_true",
        help="treat 3D files as stacks of 2D images (slice by slice)",
    )
    layout.add_argument(
        "--volume",
        action="store_true",
        help="treat 3D files as volumes (3D models), e.g. ZYX TIFF tomograms",
    )
    exist = p.add_mutually_exclusive_group()
    exist.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep complete existing outputs (an incomplete one is redone); without this "
        "or --overwrite, existing outputs stop the run before any work",
    )
    exist.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_allow_pickle(p)
    p.add_argument(
        "--batch-size",
        type=int_range(1, 4096, "tiles"),
        default=None,
        help="tiles per forward pass (default 1 on CPUs, from memory on GPUs)",
    )
    p.add_argument(
        "--threads",
        type=int_range(1, 4096, "threads"),
        default=None,
        help="CPU threads for torch (default: torch's; per worker with --cluster)",
    )
    p.add_argument(
        "--out-star",
        type=Path,
        default=None,
        metavar="PATH",
        help="RELION STAR list of the denoised files, done now or by an earlier run (default: "
        "OUTDIR/denoised_micrographs.star for MRC output); never one of the inputs",
    )
    relion = p.add_argument_group(
        "RELION STAR output",
        "STAR inputs keep every block, column and value; files, folders and globs get a "
        "RELION 3.1+ STAR with an optics block (pixel size from the headers).",
    )
    relion.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="RELION project directory: STAR paths are relative to it (default: here)",
    )
    for option, unit, what in (
        ("--voltage", "KV", "acceleration voltage in kV"),
        ("--cs", "MM", "spherical aberration in mm"),
        ("--amplitude-contrast", "F", "amplitude contrast (e.g. 0.1)"),
    ):
        relion.add_argument(
            option, type=float, default=None, metavar=unit, help=f"{what}, for data_optics"
        )
    batch = p.add_argument_group(
        "many files on a Dask cluster",
        "One task per file (very large stacks and volumes: one per group of planes). Outputs "
        "are written atomically and complete outputs are skipped (unless --overwrite), so "
        "rerunning an interrupted batch resumes it.",
    )
    where = batch.add_mutually_exclusive_group()
    where.add_argument(
        "--cluster",
        metavar="local[:N]",
        default=None,
        help="run on N local worker processes (default: one per GPU, else one per two CPU cores)",
    )
    where.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        default=None,
        help="attach to a running dask.distributed scheduler (address or "
        "scheduler JSON file), e.g. one started by dask-jobqueue on SLURM",
    )
    batch.add_argument(
        "--retries",
        type=nonnegative_int,
        default=2,
        metavar="N",
        help="extra attempts for a file that failed (default 2)",
    )
    batch.add_argument(
        "--planes-per-task",
        type=nonnegative_int,
        default=None,
        metavar="N",
        help="split stacks and volumes into tasks of N planes, joined when all are done "
        "(default: only inputs over 2 GiB, in ~512 MiB groups; 0: never split)",
    )
    p.set_defaults(func=run)


def _settings_from_args(args: argparse.Namespace) -> DenoiseSettings:
    device = str(args.device)
    if device.lstrip("-").isdigit():  # Topaz style: -1 = CPU, N = GPU N
        device = "cpu" if int(device) < 0 else f"cuda:{int(device)}"
    return DenoiseSettings(
        device=device,
        precision=args.precision,
        patch_size=args.patch_size,
        padding=args.padding,
        batch_size=args.batch_size,
        bin_factor=args.bin_factor,
        pixel_size=args.pixel_size,
        restore_size=args.restore_size,
        gaussian=args.gaussian,
        lowpass=args.lowpass,
        normalize=args.normalize,
        fmt=args.fmt,
        stack=args.stack,
        volume=args.volume,
        overwrite=args.overwrite,
        skip_existing=args.skip_existing,
        threads=args.threads,
        explicit_model=bool(args.model),
    )


def run(args: argparse.Namespace) -> int:
    """Run ``cryodenoise denoise``; exit code 0, or 1 when any file failed."""
    from ..distributed import remove_partials
    from . import CLIError
    from ._denoise_checks import guard_denoise, refuse_existing

    t0 = time.perf_counter()
    settings = _settings_from_args(args)
    clustered = bool(args.cluster or args.scheduler)
    if args.planes_per_task is not None and not clustered:
        raise CLIError(
            "--planes-per-task splits work over workers: use it with --cluster/--scheduler"
        )
    lists: list[Path] = []
    try:
        star_plan = _star_plan(args, settings)
        inputs = expand_inputs(args.inputs, project_dir=args.project_dir, lists=lists)
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    if not inputs:
        raise CLIError("no input files found")
    outdir = Path(args.output)
    star = _out_star(args, outdir, settings)
    names = args.model or [_DEFAULT_2D]
    # the one output guard, before any work: no image is read, no model loaded, nothing written
    pairs = guard_denoise(args, inputs, lists, outdir, settings.fmt, star, names)
    if not clustered:
        refuse_existing(pairs, settings)
    from ..engine import load_models, resolve_device, set_threads

    set_threads(settings.threads)
    try:
        resolve_device(settings.device)
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    try:
        if clustered:
            load_models(names)  # a bad name or file fails now, once
            return _run_on_cluster(args, inputs, outdir, names, settings, star_plan)
        # 2D models for micrographs and stacks, 3D ones for volumes: -m 2d.pt -m 3d.pt
        loaded = [load_models(name)[0] for name in names]
        models_2d = [m for m in loaded if int(m.ndim) == 2]
        models_3d = [m for m in loaded if int(m.ndim) == 3] or None
        models = models_2d or models_3d
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from None
    interactive = sys.stderr.isatty()
    counts = {"done": 0, "skipped": 0, "failed": 0}
    finished: list[tuple[Path, Path, bool]] = []
    every_output = [out for _, out in pairs] + ([star] if star is not None else [])
    remove_partials(every_output)  # leftovers of an interrupted run
    for i, (path, out_path) in enumerate(pairs, 1):
        label = f"[{i}/{len(inputs)}] {path.name}"
        bar = _Bar(label, interactive)
        try:
            res = denoise_file(path, out_path, models, settings, models_3d=models_3d, progress=bar)
        finally:
            bar.close()
        counts[res.status] += 1
        finished.append((path, res.output, res.status != "failed"))
        if res.status == "failed":
            print(f"cryodenoise denoise: error: {res.message}", file=sys.stderr)
        elif res.status == "done":
            note = f"; {res.message}" if res.message else ""
            print(f"{label} -> {res.output} ({res.seconds:.1f} s{note})", file=sys.stderr)
    if star is not None:
        # every complete output of this run, done now or by an earlier one (--skip-existing)
        _write_star(star, finished, star_plan)
    elapsed = time.perf_counter() - t0
    print(
        f"denoised {counts['done']}, skipped {counts['skipped']}, failed {counts['failed']} "
        f"in {elapsed:.1f} s"
    )
    return 1 if counts["failed"] else 0


def _star_plan(args: argparse.Namespace, settings: DenoiseSettings):
    """The STAR inputs and RELION settings of the output STAR (read before any work)."""
    from ..io.star_micrographs import OpticsValues, OutputStarPlan, star_inputs

    project = args.project_dir
    if project is not None and not Path(project).is_dir():
        raise InputError(f"--project-dir {project}: no such folder")
    optics = OpticsValues(args.voltage, args.cs, args.amplitude_contrast)
    binned = settings.bin_factor != 1 or settings.pixel_size is not None
    return OutputStarPlan(
        tuple(star_inputs(args.inputs, project)),
        project,
        optics,
        rescaled=binned and not settings.restore_size,
    )


def _write_star(star: Path, finished: list[tuple[Path, Path, bool]], plan) -> None:
    """List every output of the run (done now or before), in input order."""
    from ..distributed import output_is_complete, write_output_star
    from ..io.star_micrographs import listed_outputs

    listed = listed_outputs(finished, output_is_complete)
    if listed:
        write_output_star(
            star,
            [o for _, o in listed],
            inputs=[i for i, _ in listed],
            plan=plan,
            log=lambda text: print(f"cryodenoise denoise: note: {text}", file=sys.stderr),
        )


def _out_star(args: argparse.Namespace, outdir: Path, settings: DenoiseSettings) -> Path | None:
    if args.out_star is not None:
        return Path(args.out_star)
    return outdir / "denoised_micrographs.star" if settings.fmt == "mrc" else None


def _run_on_cluster(
    args: argparse.Namespace,
    inputs: list[Path],
    outdir: Path,
    names: list[str],
    settings: DenoiseSettings,
    star_plan: Any = None,
) -> int:
    """``--cluster``/``--scheduler``: Dask tasks per file or planes group, resumable."""
    from ..distributed import StderrProgress, run_batch
    from . import CLIError

    items = [(path, output_path(path, outdir, settings.fmt)) for path in inputs]
    bar = StderrProgress("denoise")
    try:
        summary = run_batch(
            items,
            names,
            settings,
            cluster=args.cluster,
            scheduler=args.scheduler,
            retries=args.retries,
            overwrite=settings.overwrite,
            threads_per_worker=settings.threads,
            out_star=_out_star(args, outdir, settings),
            star_plan=star_plan,
            progress=bar,
            log=bar.message,
            planes_per_task=args.planes_per_task,
        )
    except (CryoDenoiseError, ValueError) as err:
        raise CLIError(str(err)) from None
    print(summary.format())
    return 0 if summary.ok else 1
