"""Denoise many micrographs on a Dask cluster or in this process: :func:`run_batch`.

The driver skips outputs that already exist and are complete, splits very large
stacks and volumes into groups of planes (:mod:`.split`), submits the rest as Dask
futures (or runs them here), retries failures, joins split items and reports a
:class:`~.results.BatchSummary`. Workers read their inputs and write their outputs
themselves (a shared file system is assumed), so only paths and small result records
travel over the network.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

from .cluster import gpu_resource, parse_cluster, start_client, worker_plugin
from .outputs import check_items, output_is_complete, remove_partials, write_output_star
from .results import BatchSummary, ItemResult, Status
from .split import Tasks
from .worker import ItemFn, describe, get_models, process_item, settings_device

__all__ = ["run_batch"]


def run_batch(
    items: Sequence[tuple[str | os.PathLike, str | os.PathLike]],
    model_specs: Sequence[Any],
    settings: Any = None,
    *,
    cluster: str | None = None,
    scheduler: str | None = None,
    retries: int = 2,
    overwrite: bool = False,
    threads_per_worker: int | None = None,
    out_star: str | os.PathLike | None = None,
    star_plan: Any = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    item_fn: ItemFn | None = None,
    client: Any = None,
    planes_per_task: int | None = None,
) -> BatchSummary:
    """Denoise many micrographs, on a Dask cluster or in this process; resumable.

    Parameters
    ----------
    items : sequence of (input, output) paths
        One task per pair. An item whose output is another item's output or any
        item's input is reported as failed and not run.
    model_specs : sequence
        Model aliases or checkpoint paths (loaded once per worker) or modules.
    settings : FileOptions or dict, optional
        Engine and output options (:class:`napari_cryodenoise.options.FileOptions`,
        or a dict of its fields); passed to ``item_fn``, so it must pickle. A
        generic ``device`` ("auto", "cuda") is pinned to each local worker's GPU.
    cluster : str, optional
        ``"local"`` or ``"local:N"``: start a local cluster of N worker processes
        (default one per GPU, else one per two CPU cores), closed at the end.
    scheduler : str, optional
        ``tcp://HOST:PORT`` of a running scheduler, or a scheduler JSON file.
    retries : int
        Extra attempts for an item whose attempt raised (input errors are not retried).
    overwrite : bool
        Redo items whose output is already complete (default: skip them).
    threads_per_worker : int, optional
        Torch threads per worker (local default: CPU cores / workers).
    out_star : path, optional
        Write a RELION STAR list of the complete outputs (done and skipped) here.
    star_plan : OutputStarPlan, optional
        The STAR inputs and RELION settings of that list (:func:`write_output_star`).
    progress : callable, optional
        ``progress(finished, total)`` after every item, skipped ones included.
    log : callable, optional
        Receives one line per retry and per final failure.
    item_fn : callable, optional
        ``item_fn(in_path, out_path, models, settings)``, importable on the
        workers; default :func:`denoise_item`.
    client : dask.distributed.Client, optional
        Use this client (tests, notebooks) instead of ``cluster``/``scheduler``.
    planes_per_task : int, optional
        Split stacks and volumes into tasks of this many planes (z slices),
        joined into the output when all are done (:func:`plane_groups`); 0 never
        splits. Default: split only inputs over :data:`SPLIT_BYTES`. Only with the
        default ``item_fn``.

    Returns
    -------
    BatchSummary

    Raises
    ------
    ValueError
        If both ``cluster`` and ``scheduler`` are given, or ``cluster`` is malformed.
    InputError
        If a model is unknown.
    WeightsUnavailableError
        If pretrained weights can be neither found nor downloaded.
    CryoDenoiseError
        If the scheduler cannot be reached.

    """
    start = time.monotonic()
    if cluster is not None and scheduler is not None:
        raise ValueError("give either --cluster or --scheduler, not both")
    if cluster is not None:
        parse_cluster(cluster)
    pairs, bad = check_items(items)
    say = log or (lambda text: None)
    # load once here: a bad model name fails now, not once per micrograph, and pretrained
    # weights are downloaded by one process rather than raced for by every worker
    models = get_models(model_specs, settings_device(settings))
    results: dict[int, ItemResult] = {}
    todo: list[int] = []
    for index, (inp, out) in enumerate(pairs):
        if index in bad:
            results[index] = ItemResult(inp, out, "failed", bad[index])
            say(f"failed {inp}: {bad[index]}")
        elif not overwrite and output_is_complete(out):
            results[index] = ItemResult(inp, out, "skipped")
        else:
            todo.append(index)
    total = len(pairs)
    planes = planes_per_task if item_fn is None else 0  # custom item functions take whole files
    tasks = Tasks.plan(pairs, todo, item_fn, settings, models, planes)
    tasks.skip_complete_parts(overwrite)
    remove_partials([out for _, out in tasks.pairs])
    units = len(results) + len(tasks.pairs)

    def report() -> None:
        if progress is not None:
            progress(len(results) + len(tasks.results), units)

    report()
    summary = BatchSummary()
    if tasks.todo:
        distributed = client is not None or cluster is not None or scheduler is not None
        run = (tasks.pairs, tasks.todo, model_specs, settings, tasks.results, retries)
        if distributed:
            summary.workers = _run_dask(
                *run,
                cluster,
                scheduler,
                threads_per_worker,
                tasks.fns,
                client,
                report,
                say,
            )
        else:
            _run_here(*run, tasks.fns, report, say)
        remove_partials([out for _, out in tasks.pairs])
    tasks.finish(pairs, results, say)
    summary.results = [results[i] for i in range(total)]
    if out_star is not None:
        from ..io.star_micrographs import listed_outputs

        results_ok = [(r.input, r.output, r.status != "failed") for r in summary.results]
        listed = listed_outputs(results_ok, output_is_complete)
        summary.out_star = write_output_star(
            out_star,
            [o for _, o in listed],
            inputs=[i for i, _ in listed],
            plan=star_plan,
            log=say,
        )
    summary.elapsed = time.monotonic() - start
    return summary


def _record(
    results: dict[int, ItemResult],
    pairs: list[tuple[Path, Path]],
    index: int,
    outcome: dict[str, Any],
    attempts: int,
) -> ItemResult:
    inp, out = pairs[index]
    status: Status = "done" if outcome["ok"] else "failed"
    result = ItemResult(
        inp, out, status, outcome["reason"], attempts, outcome["seconds"], outcome["worker"]
    )
    results[index] = result
    return result


def _run_here(pairs, todo, model_specs, settings, results, retries, item_fns, report, say) -> None:
    """Run the items in this process: same retries and reporting, no Dask."""
    for index in todo:
        inp, _ = pairs[index]
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = process_item(*pairs[index], model_specs, settings, item_fns[index])
            except Exception as err:  # noqa: BLE001 - every failure is reported per item
                outcome = {
                    "ok": False,
                    "reason": describe(err),
                    "seconds": 0.0,
                    "worker": f"{socket.gethostname()}:{os.getpid()}",
                    "retry": True,
                }
            if outcome["ok"] or not outcome.get("retry") or attempt > retries:
                break
            say(f"retrying {inp} (attempt {attempt + 1}/{retries + 1}): {outcome['reason']}")
        result = _record(results, pairs, index, outcome, attempt)
        if result.status == "failed":
            say(f"failed {inp}: {result.reason}")
        report()


def _run_dask(
    pairs,
    todo,
    model_specs,
    settings,
    results,
    retries,
    cluster,
    scheduler,
    threads,
    item_fns,
    client,
    report,
    say,
) -> int:
    """Submit every pending item as a future; resubmit failures; fill ``results``."""
    from dask.distributed import as_completed

    local = None
    own_client = client is None
    if own_client:
        client, local, plugin = start_client(cluster, scheduler, threads)
    else:
        plugin = worker_plugin(threads, pin_gpu=False)
    if not plugin.threads and not plugin.pin_gpu:
        plugin = None
    futures: dict[Any, tuple[int, int]] = {}
    try:
        if plugin is not None:
            client.register_plugin(plugin, name=plugin.name)
        n_workers = len(client.nthreads())
        if scheduler is not None and n_workers == 0:
            say("no workers connected yet; tasks wait for them")
        resources = gpu_resource(client)
        start_ns = time.time_ns()

        def submit(index: int, attempt: int) -> Any:
            inp, out = pairs[index]
            future = client.submit(
                process_item,
                inp,
                out,
                list(model_specs),
                settings,
                item_fns[index],
                key=f"cryodenoise-{attempt}-{index}-{os.getpid()}-{int(start_ns)}",
                pure=False,
                resources=resources,
            )
            futures[future] = (index, attempt)
            return future

        queue = as_completed([submit(i, 1) for i in todo])
        for future in queue:
            index, attempt = futures.pop(future)
            inp = pairs[index][0]
            if future.status == "finished":
                outcome = future.result()
            else:
                try:
                    err = future.exception()
                except (Exception, CancelledError) as cancelled:  # noqa: BLE001
                    err = cancelled
                outcome = {"ok": False, "reason": describe(err), "seconds": 0.0, "worker": ""}
                # a KilledWorker already cost Dask's "allowed-failures" worker restarts
                if attempt <= retries and type(err).__name__ != "KilledWorker":
                    say(
                        f"retrying {inp} (attempt {attempt + 1}/{retries + 1}): "
                        f"{outcome['reason']}"
                    )
                    queue.add(submit(index, attempt + 1))
                    future.release()
                    continue
            future.release()
            result = _record(results, pairs, index, outcome, attempt)
            if result.status == "failed":
                say(f"failed {inp}: {result.reason}")
            report()
        return n_workers
    except BaseException:
        if futures:
            client.cancel(list(futures))
        raise
    finally:
        if own_client:
            client.close()
            if local is not None:
                local.close()
