"""Denoise one file, or one group of planes of a large file: the library's per-file work.

:func:`denoise_file` takes plain paths, already loaded models and a
:class:`~napari_cryodenoise.options.FileOptions`, and returns a :class:`FileResult`
instead of raising for bad inputs, so the command line and batch runners (Dask
workers, :mod:`napari_cryodenoise.batch`) share it. :func:`denoise_planes` computes
part of a stack or volume exactly as the whole-file run would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import Cancelled, CryoDenoiseError, InputError
from ..messages import one_line
from ..options import FileOptions
from ..provenance import option_labels
from ..types import CancelFn, ProgressFn
from .plan import plan_file
from .write import write_output

__all__ = ["FileResult", "denoise_file", "denoise_planes", "splittable_planes"]


@dataclass
class FileResult:
    """Outcome of one file: ``status`` is "done", "skipped" or "failed".

    ``input_error``: the failure is the input's (unreadable, NaN pixels, too small to
    bin, ...): trying again cannot help.
    """

    input: Path
    output: Path
    status: Literal["done", "skipped", "failed"]
    seconds: float = 0.0
    message: str = ""
    shape: tuple[int, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    input_error: bool = False


def denoise_file(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    models: object,
    settings: FileOptions,
    *,
    models_3d: object = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    protect: Collection[str | os.PathLike] = (),
    labels: Sequence[str] = (),
) -> FileResult:
    """Denoise one file and write the result; never raises for a bad input.

    Parameters
    ----------
    in_path, out_path : path-like
        Input image/stack/volume and output file (format from ``settings.fmt``).
    models : module, alias, path or a sequence of them
        2D models (micrographs and stacks).
    settings : FileOptions
        Options (device, precision, tiling, filters, binning, output).
    models_3d : optional
        Models for volumes (default: ``models`` if they are 3D, else "unet-3d").
    progress, cancel : callable, optional
        Engine callbacks (tiles done/total; True to stop).
    protect : collection of path
        Files never to overwrite (other inputs); ``in_path`` always is. Checked with
        :func:`~napari_cryodenoise.io.output_guard.check_outputs` (symlinks, hard
        links, ``..``). A batch checks all its outputs once instead (as the CLI does).
    labels : sequence of str
        Extra MRC header labels (provenance, e.g. which model ``cryodenoise watch`` used);
        the pixels do not depend on them.

    Returns
    -------
    FileResult
        ``status`` "done", "skipped" (a complete output exists and
        ``skip_existing``; an incomplete one is redone) or "failed" with a
        one-line ``message``. :class:`~napari_cryodenoise.errors.Cancelled`
        and ``KeyboardInterrupt`` propagate.

    """
    from ..engine import denoise, denoise_stack
    from ..io.completeness import output_is_complete
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
        plan = plan_file(in_path, models, settings, models_3d)
        result.message = plan.note
        data, info, mods = plan.data, plan.info, plan.models
        kw = dict(plan.engine_kw, progress=progress, cancel=cancel)
        if plan.per_slice:
            out = denoise_stack(data, mods, **kw)
        else:
            out = denoise(data, mods, **kw)
        del data
        grid_start, dropped = plan.output_start(out.shape)
        write_output(
            out_path,
            out,
            settings.fmt,
            voxel_size=plan.output_voxel_size(out.shape),
            origin=info.origin,
            start=grid_start,
            kind=info.kind,
            protect=[in_path],
            labels=[*labels, *option_labels(settings)],
        )
        result.status = "done"
        result.shape = tuple(out.shape)
        notes = [plan.note, dropped if settings.fmt == "mrc" else ""]
        result.message = "; ".join(n for n in notes if n)
    except (Cancelled, KeyboardInterrupt):
        raise
    except (CryoDenoiseError, OSError, ValueError, MemoryError) as err:
        message = one_line(err)
        if str(in_path) not in message and str(out_path) not in message:
            message = f"{in_path}: {message}"
        result.message = message
        result.input_error = isinstance(err, (InputError, FileNotFoundError, IsADirectoryError))
    finally:
        result.seconds = time.perf_counter() - start
    return result


def splittable_planes(
    in_path: str | os.PathLike, settings: FileOptions, models: object, models_3d: object = None
) -> bool:
    """Whether a file can be denoised as independent groups of planes (z ranges).

    True for stacks denoised slice by slice (each slice has its own statistics)
    and for volumes with 3D models when no whole-volume operation is asked for
    (binning, low-pass, Gaussian), written as MRC.
    """
    if settings.fmt != "mrc":
        return False
    plan = plan_file(Path(in_path), models, settings, models_3d)
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
    settings: FileOptions,
    planes: tuple[int, int],
    *,
    models_3d: object = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
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
    plan = plan_file(in_path, models, settings, models_3d)
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
        start=plan.output_start(plane_shape)[0],
        kind=plan.info.kind,
        protect=[in_path],
    )
