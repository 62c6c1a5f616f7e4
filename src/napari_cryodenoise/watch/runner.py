"""The watch loop: take whole files in arrival order, denoise them, keep the STAR current.

:func:`run_watch` looks at the folder (on every change event from watchdog, and every
``poll`` seconds unless polling is off), queues the files the :class:`~.scanner.Scanner`
finds ready, denoises them (:mod:`.executors`), and after each one rewrites the session
record (:mod:`.session`) and the output STAR, atomically. With ``train_first`` it
trains a model on the first micrographs' even/odd sums in the background
(:mod:`.trainer`) and switches to it; with ``redo`` the earlier outputs are then
denoised again with it, after the new arrivals. It stops when ``stop`` is set, on
Ctrl-C (``KeyboardInterrupt``, re-raised after cleaning up: no partial output is left),
or after ``stop_after_idle`` seconds with nothing to do.
"""

from __future__ import annotations

import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import EARLIER, WatchConfig, WatchSummary, model_label, model_labels
from .executors import DaskExecutor, Done, Item, LocalExecutor
from .ledger import FileStates
from .micrograph import not_a_micrograph
from .scanner import Scanner, signature
from .session import WatchState, fingerprint
from .status import WatchStatus
from .trainer import TrainFirst

__all__ = ["run_watch"]


def _observer(folder: Path, recursive: bool, wake: threading.Event, log: Callable) -> Any:
    """Start watchdog's observer (None if unavailable: the watch polls)."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:
        log("note: watchdog is not installed; looking at the folder by polling only")
        return None

    class _Wake(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:  # noqa: ARG002
            wake.set()

    observer = Observer()
    try:
        observer.schedule(_Wake(), str(folder), recursive=recursive)
        observer.daemon = True
        observer.start()
    except Exception as err:  # noqa: BLE001 - e.g. inotify limits: polling still works
        log(f"note: no change events for {folder} ({err}); looking at it by polling only")
        return None
    return observer


def _identity(folder: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of ``folder``; None when it is not a folder (any more)."""
    try:
        st = folder.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class _Watch:
    """The state of one run of :func:`run_watch` (kept small; see the module doc)."""

    def __init__(self, config: WatchConfig, log: Callable[[str], None], status: WatchStatus):
        self.c = config
        self.log = log
        self.status = status
        self.summary = WatchSummary()
        self.queue: deque[Item] = deque()
        self.redo: deque[Item] = deque()
        self.files = FileStates()  # one state per input: what the status line counts
        self.claimed: dict[str, Path] = {}
        self.failing: set[str] = set()  # inputs counted as failed (until one is done)
        self.folder_id = _identity(config.folder)  # (device, inode): a new folder differs
        self.folder_there = True
        self.state = WatchState.load(config.outdir)
        self.specs = tuple(config.models)
        self.trained_on: int | None = None
        self.trainer: TrainFirst | None = None
        self.dirty = False  # outputs recorded that the STAR list does not show yet
        fp = fingerprint(config.settings, self.specs)
        if self.state.options and self.state.options != fp and self.state.outputs:
            if config.overwrite:
                self.state.outputs.clear()
            else:
                log(
                    f"note: {config.outdir} has outputs of a watch with other options or "
                    "models; complete ones are kept (use --overwrite to redo them)"
                )
                for entry in self.state.outputs.values():  # not made with these options
                    entry["model"] = EARLIER
            self.state.trained = None
        self.state.options = fp
        self._start_training()
        self.scanner = Scanner(
            config.folder,
            pattern=config.pattern,
            recursive=config.recursive,
            settle=config.settle,
            exclude=(config.outdir,),
        )

    # ------------------------------------------------------------------ models

    def _start_training(self) -> None:
        c = self.c
        if not c.train_first or c.train is None:
            return
        trained = self.state.trained
        if trained and Path(trained).is_file():
            self.trainer = TrainFirst.finished(trained, c.train, self.log)
            self._switch(Path(trained), quiet=True)
        else:
            self.state.trained = None
            self.trainer = TrainFirst(c.train_first, c.train, self.log)

    def _switch(self, model: Path, quiet: bool = False) -> None:
        self.specs = (str(model),)
        self.trained_on = self.c.train_first
        self.summary.trained = str(model)
        self.state.trained = str(model)
        if self.c.redo:
            current = self.label
            waiting = {str(i.out) for i in self.queue}
            for inp, out in self.state.pairs():
                if self.state.model_of(out) != current and str(out) not in waiting:
                    self.add(Item(inp, out, redo=True, sig=signature(inp)))
            if self.redo and not quiet:
                self.log(f"redoing {len(self.redo)} earlier outputs with the trained model")

    @property
    def label(self) -> str:
        return model_label(self.specs, self.trained_on is not None)

    # ------------------------------------------------------------------ arrivals

    def take(self, inp: Path) -> None:
        """Decide what to do with a file that is whole: queue, keep, or report."""
        from ..batch.outputs import remove_partials
        from ..io.completeness import output_is_complete
        from ..io.output_guard import OutputPathError, check_outputs
        from ..pipeline import output_path

        why = not_a_micrograph(inp)
        if why is not None:
            if not self.summary.not_micrographs:
                self.log(
                    f"note: {inp} {why}, not a micrograph: skipped, as are the others "
                    "(watch the motion-corrected micrographs, or narrow --pattern)"
                )
            self.summary.not_micrographs += 1
            return
        out = output_path(inp, self.c.outdir, self.c.settings.fmt)
        other = self.claimed.get(str(out))
        if other is not None and other != inp:
            self._failed(inp, f"{inp}: its output {out} is also the output of {other}; skipped")
            return
        if other is None:  # first look at this output: leftovers of a killed run go
            remove_partials([out])
        self.claimed[str(out)] = inp
        if self.trainer is not None:
            self.trainer.offer(inp)
        reason = self.state.failed_as_is(inp)
        if reason is not None:  # reported by an earlier run; retried only if it changes
            self._count_failed(inp)
            return
        try:  # e.g. OUTDIR/X.mrc a symlink to the input: never kept, listed or written
            check_outputs([("output", out)], [inp])
        except OutputPathError as err:
            self._failed(inp, str(err))
            return
        sig = signature(inp)
        if output_is_complete(out):
            made_by = self.state.model_of(out)
            if made_by in (None, EARLIER) and self.c.overwrite:
                self.add(Item(inp, out, sig=sig))
                return
            if made_by not in (None, EARLIER) and self.state.input_changed(out):
                self.add(Item(inp, out, sig=sig))  # a new version of the input
                return
            if made_by is None:
                self.state.record(inp, out, EARLIER)
                self.dirty = True
            self.summary.skipped += 1
            self.status.skipped += 1
            if self.c.redo and self.trained_on is not None and made_by != self.label:
                self.add(Item(inp, out, redo=True))
            return
        self.add(Item(inp, out, sig=sig))

    def add(self, item: Item) -> None:
        """Queue ``item`` (a redo after the new arrivals)."""
        (self.redo if item.redo else self.queue).append(item)
        self.files.set(item.inp, "queued")

    def counts(self) -> None:
        """Set the status line's queued, running and settling counts: each file once."""
        self.status.queued = self.files.count("queued", "stopped")
        self.status.running = self.files.count("running")
        self.status.settling = self.files.settling(self.scanner.settling())

    def _count_failed(self, inp: Path, failed: bool = True) -> None:
        """Count ``inp`` as failed once (``failed=False``: not any more, it was done)."""
        if failed == (str(inp) in self.failing):
            return
        step = 1 if failed else -1
        self.summary.failed += step
        self.status.failed += step
        if failed:
            self.failing.add(str(inp))
        else:
            self.failing.discard(str(inp))

    def folder_changed(self) -> bool:
        """Whether the watched folder went away, came back or was replaced (one stat)."""
        return self._differs(_identity(self.c.folder))

    def _differs(self, now: tuple[int, int] | None) -> bool:
        """Whether the folder's identity ``now`` (None: gone) differs from the one seen."""
        return (now is not None) != self.folder_there or (
            now is not None and now != self.folder_id
        )

    def check_folder(self) -> bool:
        """Say once when the watched folder goes away, and when it is back or replaced.

        True when its change events must be followed anew (another folder by that name).
        """
        now = _identity(self.c.folder)
        if not self._differs(now):
            return False
        there = now is not None
        replaced = there and self.folder_there
        self.folder_there = there
        self.folder_id = now if there else self.folder_id
        if replaced:
            self.log(
                f"note: {self.c.folder} is another folder now (replaced, or a file system "
                "mounted or unmounted there); watching it"
            )
        elif there:
            self.log(f"note: {self.c.folder} is back; watching it again")
        else:
            self.log(
                f"note: {self.c.folder} is no longer there (deleted, or its network file "
                "system unmounted?); waiting for it to come back"
            )
        return there

    def _failed(self, inp: Path, reason: str) -> None:
        self._count_failed(inp)
        self.log(f"error: {reason}")
        self.state.fail(inp, reason)

    # ------------------------------------------------------------------ results

    def finished(self, done: Done) -> None:
        """Record an output (or a failure); rewrite the record and the STAR list."""
        item = done.item
        again = any(i.inp == item.inp for i in (*self.queue, *self.redo))
        self.files.set(item.inp, "queued" if again else "done" if done.ok else "failed")
        if not done.ok:
            self._failed(item.inp, done.reason or f"{item.inp}: failed")
            self.state.save()
            return
        self.state.record(item.inp, item.out, done.model, item.sig)
        self._count_failed(item.inp, failed=False)  # repaired since it failed
        now = time.monotonic()
        if item.redo:
            self.summary.redone += 1
        else:
            self.summary.done += 1
            self.status.done += 1
            self.summary.finish_times.append(now)
            self.summary.seconds.append(done.seconds)
            self.status.finished_one(now)
        self.status.last, self.status.last_model = item.inp.name, done.model
        self.state.save()
        self.write_star()

    def flush(self) -> None:
        """Write the record and the STAR list if outputs were recorded since."""
        if self.dirty:
            self.state.save()
            self.write_star()

    def write_star(self) -> None:
        """Rewrite the STAR list of every output so far (atomically)."""
        self.dirty = False
        if self.c.out_star is None:
            return
        from ..batch.outputs import write_output_star

        pairs = [(i, o) for i, o in self.state.pairs() if o.is_file()]
        if not pairs:
            return
        try:
            write_output_star(
                self.c.out_star,
                [o for _, o in pairs],
                inputs=[i for i, _ in pairs],
                plan=self.c.star_plan,
                log=lambda text: None,
            )
        except OSError as err:
            self.log(f"error: cannot write {self.c.out_star}: {err}")


def run_watch(
    config: WatchConfig,
    *,
    log: Callable[[str], None] | None = None,
    show: Callable[[WatchStatus], None] | None = None,
    stop: threading.Event | None = None,
    client: Any = None,
) -> WatchSummary:
    """Denoise the micrographs of ``config.folder`` as they arrive, until stopped.

    Parameters
    ----------
    config : WatchConfig
        The folders, options and rules.
    log : callable, optional
        Receives one line per event (errors, training, notes).
    show : callable, optional
        Receives the :class:`~.status.WatchStatus` after every change and about once a
        second while waiting.
    stop : threading.Event, optional
        Set it to stop (from another thread); Ctrl-C stops too.
    client : dask.distributed.Client, optional
        Use this client instead of ``config.cluster`` / ``config.scheduler``.

    Returns
    -------
    WatchSummary

    Raises
    ------
    KeyboardInterrupt
        After cleaning up (no partial output left, the record and STAR written).

    """
    say = log or (lambda text: None)
    status = WatchStatus()
    w = _Watch(config, say, status)
    stop = stop or threading.Event()
    wake = threading.Event()
    t0 = time.monotonic()
    observer = _observer(config.folder, config.recursive, wake, say) if config.events else None
    poll = config.poll if (config.poll or observer is not None) else 2.0
    clustered = client is not None or bool(config.cluster or config.scheduler)
    executor: LocalExecutor | DaskExecutor
    if clustered:
        executor = DaskExecutor(
            config.settings,
            cluster=config.cluster,
            scheduler=config.scheduler,
            threads=config.settings.threads,
            client=client,
        )
    else:
        executor = LocalExecutor(config.settings)
    in_flight: list[Item] = []
    idle_since = time.monotonic()
    last_scan = last_look = -float("inf")
    try:
        w.write_star()
        while not stop.is_set():
            now = time.monotonic()
            woke = wake.is_set()
            due = poll is not None and now - last_scan >= poll
            due = due or (not w.folder_there and now - last_scan >= 1.0)  # is it back?
            if now - last_look >= 1.0:  # moved aside and replaced: no event tells (--no-poll)
                last_look = now
                due = due or w.folder_changed()
            settling = w.scanner.pending() and now - last_scan >= min(1.0, config.settle / 2)
            if (woke and now - last_scan >= 0.25) or due or settling or last_scan < 0:
                wake.clear()
                last_scan = now
                if w.check_folder() and observer is not None:  # events of the new folder
                    observer.stop()
                    observer = _observer(config.folder, config.recursive, wake, say)
                for path in w.scanner.scan():
                    w.take(path)
                w.flush()
            trainer = w.trainer
            if trainer is not None and trainer.state == "collecting":
                trainer.poll()
            if trainer is not None and trainer.state == "done" and w.trained_on is None:
                w._switch(trainer.model_path)
                w.state.save()
            for done in executor.collect():
                w.finished(done)
            while executor.busy < executor.capacity and (w.queue or w.redo):
                item = w.queue.popleft() if w.queue else w.redo.popleft()
                w.files.set(item.inp, "running")
                in_flight = [item]
                labels = model_labels(w.specs, w.trained_on)
                executor.submit(item, w.specs, w.label, labels)
                for done in executor.collect():
                    w.finished(done)
                in_flight = []
                idle_since = time.monotonic()  # files may have arrived meanwhile: look again
                if isinstance(executor, LocalExecutor):
                    break  # look at the folder between files
            w.counts()
            status.model = w.label
            status.training = trainer.describe() if trainer is not None else ""
            if show is not None:
                show(status)
            busy = (
                w.queue
                or w.redo
                or executor.busy
                or w.scanner.pending()
                or (trainer is not None and trainer.active)
            )
            if busy:
                idle_since = time.monotonic()
            elif (
                config.stop_after_idle is not None
                and time.monotonic() - idle_since >= config.stop_after_idle
            ):
                w.summary.reason = f"idle for {config.stop_after_idle:g} s"
                if trainer is not None and trainer.state == "collecting":
                    say(
                        f"note: training did not start: {len(trainer.files)} of "
                        f"{trainer.count} micrographs with even/odd sums arrived"
                    )
                break
            if not (w.queue or w.redo) or executor.busy >= executor.capacity:
                wake.wait(0.2 if executor.busy else min(0.5, poll or 0.5))
    finally:
        from ..batch.outputs import remove_partials

        try:  # finished before the stop but not recorded yet (Ctrl-C between the two)
            finished = executor.collect()
        except Exception:  # noqa: BLE001 - a lost cluster: those are redone next time
            finished = []
        stopped = executor.close() if hasattr(executor, "close") else []
        if observer is not None:
            observer.stop()
            observer.join(timeout=2.0)
        if w.trainer is not None:
            w.trainer.stop(timeout=3.0)
        leftovers = list(dict.fromkeys(i.out for i in [*in_flight, *stopped]))  # once each
        extra = [p for p in (w.state.path, config.out_star) if p is not None]
        remove_partials([*leftovers, *extra])
        if w.trainer is not None and w.trainer.state == "training":
            outputs = [Path(p) for p in (config.train.output,) if p]  # type: ignore[union-attr]
            remove_partials(outputs)
        for done in finished:
            w.finished(done)
        w.state.save()
        w.write_star()  # an interrupt may have cut its last rewrite short (removed above)
        w.summary.elapsed = time.monotonic() - t0
        # what is left for the next run (0 when the watch ran dry): each file once
        w.files.stop()
        w.counts()
        if show is not None:
            show(status)
    return w.summary
