"""Model loading and whole-image jobs of the Denoise widget, in napari workers.

:class:`JobRunner` starts one job at a time (``fn(*args, progress=, cancel=)``
in a worker), shows its progress in napari's activity panel and in the dock's
status line, hands the result to a callback on the main thread and turns
errors into one-line notifications. It keeps ``state.job_running`` current.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from napari.qt.threading import FunctionWorker, create_worker
from napari.utils import cancelable_progress

from ....errors import Cancelled, CryoDenoiseError
from ....types import DenoiserModel
from ...compute import ModelCache
from ...settings import DenoiseSettings
from ..progress_line import ProgressLine
from ..workers import Relay, bar_updater
from . import notify
from .state import DenoiseState

T = TypeVar("T")


def error_message(err: BaseException) -> str:
    """What to tell the user about a failed job: the error and what to try."""
    if isinstance(err, CryoDenoiseError):
        return str(err)
    if isinstance(err, MemoryError):
        return (
            f"out of memory ({err}); try a smaller patch size, bin 2, "
            "precision bf16 or the live mode"
        )
    return (
        f"{type(err).__name__}: {err}. If this persists, report it with the "
        "command shown in the widget."
    )


class JobRunner:
    """Run the Denoise widget's model loads and whole-image jobs, one at a time.

    Parameters
    ----------
    state : DenoiseState
        Receives ``job_running`` and the status text.
    models : ModelCache
        Where loaded models are kept.
    line : ProgressLine
        The dock's status line with progress and time left.

    """

    def __init__(self, state: DenoiseState, models: ModelCache, line: ProgressLine) -> None:
        self.state = state
        self.models = models
        self.line = line
        self.worker: FunctionWorker | None = None
        self._cancel: threading.Event | None = None
        self._relays: list[Relay] = []
        self._preload: tuple[str, FunctionWorker] | None = None  # (model name, worker)
        self._cancel_reason: str | None = None  # said instead of "cancelled" (see cancel)
        #: The widget is closing: late results and errors of workers are dropped.
        self.closed = False

    @property
    def busy(self) -> bool:
        """True while a model load or a whole-image job runs."""
        return self.worker is not None

    @property
    def running_workers(self) -> int:
        """The job's worker and a background model load, if running."""
        return (self.worker is not None) + (self._preload is not None)

    def preload(self, name: str, device: str) -> FunctionWorker | None:
        """Load a pretrained model and warm the engine up in the background.

        Only when its weights are local; returns the worker, or None.
        """
        if self.models.peek(name) is not None:
            return None
        try:
            from ....models import find_weights

            if find_weights(name) is None:
                return None
        except Exception:  # noqa: BLE001 - not a zoo alias: load it on demand
            return None
        worker = create_worker(
            self.models.load,
            name,
            warm=(device, "fp32"),
            _start_thread=False,
            _ignore_errors=True,
        )
        self._preload = (name, worker)

        def finished() -> None:
            if self._preload is not None and self._preload[1] is worker:
                self._preload = None

        worker.finished.connect(finished)
        worker.start()
        return worker

    def with_model(self, settings: DenoiseSettings, then: Callable[[DenoiserModel], None]) -> None:
        """Call ``then(model)`` at once if it is loaded, else after loading it in a worker."""
        model = self.models.peek(settings.model)
        if model is not None:
            then(model)
            return
        if self._preload is not None and self._preload[0] == settings.model:
            worker = self._preload[1]  # being loaded already: continue when it is
            self.state.status = f"loading {settings.model_label}..."
            worker.returned.connect(self._unless_closed(then))
            worker.errored.connect(self.report)
            return
        label = settings.model_label
        self.launch(
            self.models.load,
            settings.model,
            desc=f"loading model {label}",
            text=f"loading {label}...",
            on_result=then,
            unit="steps",
            warm=(settings.device, settings.precision),
        )

    def launch(
        self,
        fn: Callable[..., T],
        *args: Any,
        desc: str,
        text: str,
        on_result: Callable[[T], None],
        unit: str = "tiles",
        **kwargs: Any,
    ) -> FunctionWorker:
        """Run ``fn(*args, progress=, cancel=, **kwargs)`` in a worker with a progress bar.

        Progress shows in napari's activity panel and, with the time left, in
        the widget's status line. ``on_result(value)`` runs on the main
        thread; errors become notifications.
        """
        cancel = threading.Event()
        pbar = cancelable_progress(total=0, desc=desc, cancel_callback=cancel.set)
        bar = bar_updater(pbar)
        line = self.line

        def progressed(done: int, total: int) -> None:
            bar(done, total)
            if self.worker is worker and not cancel.is_set():  # late ones are not news
                line.update(done, total)

        relay = Relay(progressed)
        worker = create_worker(
            fn,
            *args,
            progress=relay.emit,
            cancel=cancel.is_set,
            _start_thread=False,
            _ignore_errors=True,
            **kwargs,
        )
        self.worker, self._cancel = worker, cancel
        self._cancel_reason = None
        self._relays.append(relay)
        self.state.job_running = True
        line.start(text.rstrip(". "), total=0, unit=unit)

        def stop_line(*_: object) -> None:
            if self.worker is worker:
                line.stop()

        answered: list[bool] = []  # a result or an error was delivered

        def finished() -> None:
            pbar.close()
            stop_line()
            if relay in self._relays:
                self._relays.remove(relay)
            if self.worker is worker:
                self.worker, self._cancel = None, None
                self.state.job_running = False
            if not answered and cancel.is_set():
                # cancelled during its last tile: a quit worker delivers neither
                self.report(Cancelled("cancelled"))

        worker.returned.connect(lambda *_: answered.append(True))
        worker.errored.connect(lambda *_: answered.append(True))
        worker.returned.connect(stop_line)
        worker.returned.connect(self._unless_closed(on_result))
        worker.errored.connect(stop_line)
        worker.errored.connect(self.report)
        worker.finished.connect(finished)
        worker.start()
        return worker

    def _unless_closed(self, callback: Callable[[T], None]) -> Callable[[T], None]:
        """``callback`` for a worker's result, skipped once the widget is closing."""

        def deliver(value: T) -> None:
            if not self.closed:
                callback(value)

        return deliver

    def close(self) -> None:
        """The widget is closing: cancel the job and drop what its workers still send."""
        self.closed = True
        self.cancel()

    def cancel(self, reason: str | None = None) -> None:
        """Ask the running job to stop (it raises :class:`Cancelled` at its next tile).

        ``reason``, if given, is what the status line and the notification say
        instead of "cancelled".
        """
        if reason is not None and self.worker is not None:
            self._cancel_reason = reason
        if self._cancel is not None:
            self._cancel.set()
        if self.worker is not None:
            self.worker.quit()

    def report(self, err: BaseException) -> None:
        """A job failed: one line in the status, a notification saying what to try."""
        if self.closed:  # the viewer is closing: nobody to tell
            return
        if isinstance(err, Cancelled):
            reason = self._cancel_reason
            self.state.status = reason or "cancelled"
            notify.show_info(reason or "denoising cancelled")
            return
        message = error_message(err)
        self.state.status = "failed: " + message.splitlines()[0][:120]
        notify.show_error(f"Denoise failed: {message}")
