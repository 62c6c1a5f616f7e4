"""Large stacks and volumes as groups of planes: one task each, joined when all are done.

A stack denoised slice by slice splits anywhere; a volume denoised with 3D models
splits into z slabs computed with the whole volume's statistics and the models' halo
(:func:`napari_cryodenoise.pipeline.denoise_planes`), so the joined result equals
whole-file denoising. :class:`Tasks` is the work of a batch: one task per item, or one
per group of planes of a large item.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CryoDenoiseError
from ..provenance import option_labels
from .outputs import output_is_complete, part_path, remove_parts
from .results import ItemResult
from .worker import ItemFn, as_settings

__all__ = ["GROUP_BYTES", "SPLIT_BYTES", "Tasks", "denoise_part", "plane_groups"]

#: Without ``planes_per_task``, stacks and volumes larger than this (as float32) are split.
SPLIT_BYTES = 2 << 30
#: ... into tasks of about this many bytes of planes.
GROUP_BYTES = 512 << 20


def plane_groups(
    in_path: str | os.PathLike,
    settings: Any,
    models: list,
    planes_per_task: int | None = None,
) -> list[tuple[int, int]] | None:
    """Plane ranges ``(z0, z1)`` to denoise as separate tasks, or None for one task.

    A stack denoised slice by slice splits anywhere; a volume denoised with 3D
    models splits into z slabs computed with the whole volume's statistics and
    the models' halo, so the joined result equals whole-file denoising. Inputs
    that need a whole-volume operation (binning, low-pass, Gaussian), 2D
    images and non-MRC output formats are one task.

    Parameters
    ----------
    in_path : path
        The input file (only its header is read here).
    settings : FileOptions or dict
        The batch's settings.
    models : list
        Loaded networks (2D or 3D).
    planes_per_task : int, optional
        Planes per task; None: :data:`GROUP_BYTES` worth of planes, and only
        for inputs over :data:`SPLIT_BYTES`; 0: never split.

    """
    from ..io import read_image
    from ..pipeline import splittable_planes

    if planes_per_task == 0:
        return None
    data, _ = read_image(in_path)
    if data.ndim != 3:
        return None
    n, plane = int(data.shape[0]), 4 * int(data.shape[1]) * int(data.shape[2])
    if planes_per_task is None:
        if n * plane <= SPLIT_BYTES:
            return None
        planes_per_task = max(1, GROUP_BYTES // plane)
    if planes_per_task >= n:
        return None
    models_3d = models if models and int(models[0].ndim) == 3 else None
    if not splittable_planes(in_path, as_settings(settings), models, models_3d):
        return None
    return [(z, min(n, z + planes_per_task)) for z in range(0, n, planes_per_task)]


def denoise_part(
    in_path: Path, out_path: Path, models: list, settings: Any, *, planes: tuple[int, int]
) -> None:
    """Task function for one group of planes (see :func:`plane_groups`)."""
    from ..pipeline import denoise_planes

    models_3d = models if models and int(models[0].ndim) == 3 else None
    denoise_planes(in_path, out_path, models, as_settings(settings), planes, models_3d=models_3d)


@dataclass
class Tasks:
    """The work of a batch: one task per item, or one per planes group of a large item."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    fns: list[ItemFn | None] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)
    results: dict[int, ItemResult] = field(default_factory=dict)
    #: item index -> its part files, for items split into groups of planes
    parts: dict[int, list[Path]] = field(default_factory=dict)
    #: extra header labels of joined outputs (options that change the pixels)
    labels: tuple[str, ...] = ()

    @classmethod
    def plan(
        cls,
        pairs: list[tuple[Path, Path]],
        todo: list[int],
        item_fn: ItemFn | None,
        settings: Any,
        models: list,
        planes_per_task: int | None,
    ) -> Tasks:
        """One task per item of ``todo``, or one per planes group (:func:`plane_groups`)."""
        tasks = cls(labels=tuple(option_labels(as_settings(settings))))
        for index in todo:
            inp, out = pairs[index]
            try:
                groups = plane_groups(inp, settings, models, planes_per_task)
            except (CryoDenoiseError, OSError, ValueError):
                groups = None  # the whole-file task reports the problem
            if groups is None:
                tasks._add(index, inp, out, item_fn)
                continue
            tasks.parts[index] = [part_path(out, k, len(groups)) for k in range(len(groups))]
            for planes, part in zip(groups, tasks.parts[index], strict=True):
                tasks._add(index, inp, part, functools.partial(denoise_part, planes=planes))
        return tasks

    def _add(self, owner: int, inp: Path, out: Path, fn: ItemFn | None) -> None:
        self.todo.append(len(self.pairs))
        self.pairs.append((inp, out))
        self.fns.append(fn)
        self.owner.append(owner)

    def skip_complete_parts(self, overwrite: bool) -> None:
        """Resume: parts finished by an interrupted run are not redone."""
        if overwrite:
            return
        for t in list(self.todo):
            inp, out = self.pairs[t]
            if self.owner[t] in self.parts and output_is_complete(out):
                self.results[t] = ItemResult(inp, out, "skipped")
                self.todo.remove(t)

    def finish(
        self,
        pairs: list[tuple[Path, Path]],
        results: dict[int, ItemResult],
        say: Callable[[str], None],
    ) -> None:
        """Item results from task results; join the parts of split items."""
        from ..io import concatenate_mrc, read_image

        for t, index in enumerate(self.owner):
            if index not in self.parts:
                results[index] = self.results[t]
        for index, parts in self.parts.items():
            inp, out = pairs[index]
            mine = [self.results[t] for t, o in enumerate(self.owner) if o == index]
            failed = [r for r in mine if r.status == "failed"]
            attempts = max(r.attempts for r in mine)
            seconds = sum(r.seconds for r in mine)
            worker = f"{len(parts)} tasks"
            if not failed:
                try:
                    concatenate_mrc(
                        parts,
                        out,
                        kind=read_image(inp)[1].kind,
                        labels=("denoised with napari-cryodenoise", *self.labels),
                        protect=[inp],
                    )
                    remove_parts(out)
                except (CryoDenoiseError, OSError, ValueError) as err:
                    failed = [ItemResult(inp, out, "failed", f"joining the parts: {err}")]
            if failed:
                first = failed[0]
                reason = (
                    first.reason if first.output == out else f"{first.output.name}: {first.reason}"
                )
                results[index] = ItemResult(inp, out, "failed", reason, attempts, seconds, worker)
                say(f"failed {inp}: {results[index].reason}")
            else:
                results[index] = ItemResult(inp, out, "done", "", attempts, seconds, worker)
