"""What the widget's worker threads run: model loading, whole-image and live jobs.

The coarse preview and the tile planner/store are the engine's
(:mod:`napari_cryodenoise.engine.preview`,
:mod:`napari_cryodenoise.engine.progressive`); this module binds them to the
widget's settings and worker generators. Re-exported here for the widgets:
:func:`read_only`, :class:`Prepared`, :class:`PreparedCache`, :func:`prepare`
(from :mod:`.prepared`) and the thread helpers (from :mod:`.threads`).

No Qt here, and nothing here touches a layer: functions take read-only arrays
and frozen settings and return (or yield) new arrays. The core is called
through its public API (:mod:`napari_cryodenoise.engine`,
:mod:`napari_cryodenoise.models`), exactly as a script would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..engine.preview import SKETCH_SIZE as SKETCH_SIZE
from ..engine.preview import CoarsePreview, coarse_preview, preview_shape, sketch_preview
from ..engine.preview import block_mean as block_mean
from ..errors import Cancelled, InputError
from ..types import CancelFn, ProgressFn
from .prepared import Prepared, PreparedCache, prepare
from .prepared import read_only as read_only
from .settings import DenoiseSettings
from .threads import ENV_NICE as ENV_NICE
from .threads import default_threads, live_threads, lower_thread_priority
from .tiles import Claims, Job, TileGrid, display_levels


def _engine():
    """The core's public engine API (imported lazily: torch is heavy)."""
    from .. import engine

    return engine


# -- models ------------------------------------------------------------------------------
class ModelCache:
    """The widgets' handle on the one process-wide model cache.

    Models live in :func:`napari_cryodenoise.models.cache.shared_cache`, which the engine
    and the batch workers use too, so a model loaded for the live view is the one a
    whole-image run or a script in the console gets. Loading may download weights
    (48 MB once): call :meth:`load` from a worker.
    """

    @staticmethod
    def _shared():
        from ..models.cache import shared_cache

        return shared_cache()

    def peek(self, name: str) -> Any | None:
        """The loaded model, or None (never loads)."""
        return self._shared().peek(name)

    def put(self, name: str, model: Any) -> None:
        """Register an already built model under ``name`` (tests, custom nets)."""
        self._shared().put(name, model)

    def load(
        self,
        name: str,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        warm: tuple[str, str] | None = None,
    ) -> Any:
        """Return the model, loading (and maybe downloading) it once.

        ``warm=(device, precision)`` also prepares the engine's runner for it
        (a one-time set-up of ~1 s), so the first live view does not pay it.
        """
        model = self._shared().get(name, progress=progress, cancel=cancel)
        if warm is not None:
            try:
                _engine().get_runner(model, *warm)
            except Exception:  # noqa: BLE001 - the real run reports device problems
                pass
        return model


def output_shape(shape: Sequence[int], settings: DenoiseSettings, stacked: bool) -> tuple:
    """Shape of the live output: binned spatial axes, the stack axis kept."""
    from ..engine.filters import bin_shape

    shape = tuple(int(n) for n in shape)
    if settings.bin_factor <= 1:
        return shape
    if stacked:
        return (shape[0], *bin_shape(shape[1:], settings.bin_factor))
    return bin_shape(shape, settings.bin_factor)


# -- whole image ---------------------------------------------------------------------------
def denoise_whole(
    data: Any,
    model: Any,
    settings: DenoiseSettings,
    *,
    stacked: bool,
    restore_size: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> np.ndarray:
    """Denoise a whole image, stack (slice by slice) or volume with the engine.

    Parameters
    ----------
    data : array-like
        Layer data (numpy, memmap, dask...); read, never written.
    model : torch.nn.Module
        A loaded model.
    settings : DenoiseSettings
        Frozen settings.
    stacked : bool
        3D data with a 2D model: denoise each slice.
    restore_size : bool
        With binning, Fourier-pad the result back to the input's shape (off by
        default, as in the CLI: the result has the binned pixel size).
    progress : callable, optional
        ``progress(done, total)`` after every tile.
    cancel : callable, optional
        Returns True to stop; checked between tiles.

    Returns
    -------
    numpy.ndarray
        float32, the input's shape, or the binned shape when binning without
        ``restore_size``.

    """
    lower_thread_priority()
    engine = _engine()
    kwargs = engine_kwargs(settings)
    kwargs["threads"] = default_threads()  # a live view may have lowered it
    kwargs["patch_size"] = settings.patch_size or whole_patch_size(settings.device)
    kwargs["restore_size"] = restore_size
    image = np.asarray(data)
    if stacked:
        return engine.denoise_stack(image, model, progress=progress, cancel=cancel, **kwargs)
    return engine.denoise(image, model, progress=progress, cancel=cancel, **kwargs)


#: Auto patch size for whole-image runs on a CPU: a tile takes a few seconds, so
#: Cancel answers quickly (the engine checks between tiles); the halo overhead
#: is ~1.7x that of one huge tile. GPUs: the engine's memory-based choice.
CPU_WHOLE_PATCH = 1024


def whole_patch_size(device: str) -> int | None:
    """Patch size for a whole-image run when the user left it on auto."""
    from ..engine import resolve_device

    try:
        return CPU_WHOLE_PATCH if resolve_device(device).type == "cpu" else None
    except Exception:  # noqa: BLE001 - the engine reports a bad device itself
        return None


def engine_kwargs(settings: DenoiseSettings) -> dict[str, Any]:
    """Keyword arguments shared by every engine call."""
    return {
        "device": settings.device,
        "precision": settings.precision,
        "gaussian": float(settings.gaussian),
        "lowpass": settings.lowpass_factor,
        "bin_factor": int(settings.bin_factor),
        "ensemble": bool(settings.ensemble),
    }


# -- live ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveContext:
    """Everything a live worker needs; immutable, shared by successive workers of one view.

    Attributes
    ----------
    data : array-like
        The input layer's data, read-only.
    data_key : tuple
        Identifies the data (for the prepared-plane cache).
    settings : DenoiseSettings
        Frozen settings.
    model : torch.nn.Module
        The loaded model.
    grid : TileGrid
        Output plane geometry (after binning).
    stacked : bool
        3D data denoised slice by slice with a 2D model.
    volume : bool
        3D data denoised with a 3D model (tiles are z-slabs).
    slab : int
        Slab thickness for 3D models.
    levels : int
        Display levels of the output (2D previews come with their pyramid).
    overview : array-like, optional
        A 2D input's coarsest display level (block means of ``data``, e.g. the
        raw layer's pyramid): the sketch is shrunk from it instead of ``data``.

    """

    data: Any
    data_key: tuple
    settings: DenoiseSettings
    model: Any
    grid: TileGrid
    stacked: bool = False
    volume: bool = False
    slab: int = 32
    levels: int = 0
    overview: Any = None
    prepared: PreparedCache = field(default_factory=PreparedCache, compare=False)
    compute_lock: Any = field(default_factory=threading.Lock, compare=False)
    claims: Claims = field(default_factory=Claims, compare=False)

    def prepared_plane(self, plane: int) -> Prepared:
        """The prepared input for a stack plane (or the whole 2D image / volume)."""
        index = plane if self.stacked else -1
        s = self.settings  # only binning and low-pass decide the prepared input
        key = (self.data_key, index, int(s.bin_factor), s.lowpass_factor)

        def make() -> Prepared:
            source = self.data[plane] if self.stacked else self.data
            return prepare(source, self.settings)

        return self.prepared.get(key, make)


def compute_job(
    ctx: LiveContext, job: Job, cancel: CancelFn | None = None
) -> np.ndarray | CoarsePreview:
    """Compute one live job: a coarse preview or an exact full-resolution tile.

    Returns
    -------
    numpy.ndarray or CoarsePreview
        Preview: the whole output plane with its display levels and detail
        band (2D, a :class:`CoarsePreview`) or the small preview volume (3D);
        tile: the tile's output pixels (a slab of them for 3D models).

    """
    engine = _engine()
    kw = {
        "device": ctx.settings.device,
        "precision": ctx.settings.precision,
        "threads": live_threads(),
    }
    sigma = float(ctx.settings.gaussian)
    if job.kind == "sketch":  # a quick first view: every core, no wait for the binned plane
        kw["threads"] = default_threads()
        source, block = sketch_source(ctx, job.plane)
        try:
            preview = sketch_preview(
                source,
                ctx.grid.shape,
                ctx.model,
                gaussian=sigma,
                lowpass=ctx.settings.lowpass_factor,
                block=block,
                cancel=cancel,
                **kw,
            )
        except InputError:  # e.g. NaN pixels: say it about the data, as the tiles would
            ctx.prepared_plane(max(job.plane, 0))
            raise
        return replace(preview, levels=display_levels(preview.levels[0], ctx.levels))
    prep = ctx.prepared_plane(max(job.plane, 0))
    if job.kind == "preview":
        kw["threads"] = default_threads()  # one short job; the GUI waits for it
        preview = coarse_preview(
            prep.image, ctx.model, volume=ctx.volume, gaussian=sigma, cancel=cancel, **kw
        )
        if isinstance(preview, np.ndarray):
            return preview
        return replace(preview, levels=display_levels(preview.levels[0], ctx.levels))
    ys, xs = ctx.grid.slices(job.iy, job.ix)
    if ctx.volume:
        z0 = job.plane * ctx.slab
        region: tuple[slice, ...] = (slice(z0, min(prep.image.shape[0], z0 + ctx.slab)), ys, xs)
    else:
        region = (ys, xs)
    # exact tiles only: the previews stay quick sketches (no self-ensemble)
    kw["ensemble"] = bool(ctx.settings.ensemble)
    out = engine.denoise_region(
        prep.image, ctx.model, region, stats=prep.stats, gaussian=sigma, cancel=cancel, **kw
    )
    return np.asarray(out, np.float32)


def sketch_source(ctx: LiveContext, plane: int) -> tuple[Any, int]:
    """What a sketch of ``plane`` is shrunk from, and its block size in raw pixels.

    The overview (block means of the data) if it holds at least twice the
    sketch's pixels along each axis (so its own block means barely touch the
    sketch's band), else the data itself.
    """
    data = ctx.data[plane] if ctx.stacked else ctx.data
    overview = ctx.overview
    if overview is not None and not ctx.stacked and getattr(overview, "ndim", 0) == 2:
        small = preview_shape(ctx.grid.shape, SKETCH_SIZE)
        if all(n >= 2 * t for n, t in zip(overview.shape, small, strict=True)):
            return overview, max(1, round(data.shape[-1] / overview.shape[-1]))
    return data, 1


def overview_of(levels: Any) -> np.ndarray | None:
    """The coarsest level of a 2D image pyramid ``[data, 2x, 4x, ...]``, or None.

    Only numpy levels whose shapes are the 2x halvings of the first one (the
    reader's block-mean pyramid, :func:`napari_cryodenoise.engine.pyramid.display_pyramid`)
    qualify; anything else (one array, lazy or other pyramids) gives None.
    """
    if not isinstance(levels, (list, tuple)) or len(levels) < 2:
        return None
    first, last = levels[0], levels[-1]
    if not isinstance(last, np.ndarray) or last.ndim != 2 or getattr(first, "ndim", 0) != 2:
        return None
    k = 2 ** (len(levels) - 1)
    if tuple(last.shape) != tuple(int(n) // k for n in first.shape):
        return None
    return read_only(last)


def live_jobs(
    ctx: LiveContext, jobs: Sequence[Job], cancel: threading.Event
) -> Iterator[tuple[Job, np.ndarray]]:
    """Generator run by a live worker: yields ``(job, result)`` in priority order.

    Jobs another worker already finished are skipped; computation is
    serialised by ``ctx.compute_lock`` so that a new worker waits for the tile
    its predecessor is finishing instead of competing for the CPU. Setting
    ``cancel`` stops between jobs (and inside the engine where it checks).
    """
    lower_thread_priority()
    for job in jobs:
        if cancel.is_set():
            return
        with ctx.compute_lock:
            if cancel.is_set():
                return
            if job in ctx.claims:
                continue
            try:
                result = compute_job(ctx, job, cancel=cancel.is_set)
            except Cancelled:
                return
            ctx.claims.add(job)
        yield job, result


def check_model_fits(model: Any, ndim: int, shape: Sequence[int]) -> tuple[bool, bool]:
    """Decide how a model applies to data of ``ndim`` dimensions.

    Returns
    -------
    (stacked, volume) : tuple of bool
        ``stacked``: 3D data, 2D model (slice by slice); ``volume``: 3D data, 3D model.

    Raises
    ------
    InputError
        A 3D model on a 2D image, or data that is neither 2D nor 3D.

    """
    mdim = int(getattr(model, "ndim", 2))
    if ndim == 2:
        if mdim == 3:
            raise InputError(
                f"model {getattr(model, 'name', '?')} is a 3D (tomogram) model but the image is "
                "2D; choose a 2D model such as unet"
            )
        return False, False
    if ndim == 3:
        return mdim == 2, mdim == 3
    raise InputError(
        f"can only denoise 2D images, stacks or volumes; this layer is {ndim}D "
        f"with shape {tuple(shape)}"
    )
