"""The Train widget's "expected: ~0.26 s per step ..." line, measured before training.

:class:`StepTimeLine` times the real training step with the form's settings
(:func:`napari_cryodenoise.training.estimate_step_seconds`, synthetic data, nothing
written) in a napari worker, when the widget opens and whenever a setting that
changes the cost of a step changes (debounced by :data:`DEBOUNCE_MS`). The form is
read on the main thread into a frozen :class:`~napari_cryodenoise.training.TrainConfig`
and the number of dimensions; a newer request cancels the older one, whose result is
then ignored. Nothing is measured while training runs. The worker returns plain
values (errors as one line), and only the main thread writes the label.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, QTimer

from ....errors import Cancelled, CryoDenoiseError, InputError
from ....training import TrainConfig
from ...measure import is_volume
from ...train_jobs import SOURCE_SINGLE, network_fields
from ..live import wait_for_workers

DEBOUNCE_MS = 500
PREFIX = "expected: "
#: Form fields whose change changes the cost of a step.
COST_FIELDS = ("source even odd movie single network crop batch device precision").split()

Inputs = tuple[TrainConfig, int]
Result = tuple[int, Any, str | None]


def estimate_inputs(form: Any) -> Inputs:
    """The form's settings for timing, and 2 or 3 dimensions (main thread).

    A model file name or a learning rate that does not parse yet does not change
    the cost of a step: the settings are then read without them.
    """
    from .form_read import read_config

    masked = form.source.value == SOURCE_SINGLE
    try:
        config = read_config(form, SimpleNamespace(masked=masked))
    except InputError:
        config = TrainConfig(
            **network_fields(form.network.value),
            mode="masked" if masked else "noise2noise",
            crop=int(form.crop.value) or None,
            batch_size=int(form.batch.value) or None,
            device=str(form.device.value),
            precision=str(form.precision.value),
        )
    layer = form.trained_layer()
    return config, 3 if layer is not None and is_volume(layer) else 2


def budget_of(form: Any) -> tuple[float | None, int | None]:
    """``(minutes, steps)`` of the form's "train for" row."""
    value = float(form.budget.value)
    if form.budget_unit.value == "steps":
        return None, max(1, int(round(value)))
    return value, None


def _estimate(gen: int, config: TrainConfig, ndim: int, cancel: Callable[[], bool]) -> Result:
    """Worker body: ``(gen, StepEstimate or None, error line or None)``; never raises."""
    from ....training import step_time

    try:
        return gen, step_time.estimate_step_seconds(config, ndim, cancel=cancel), None
    except Cancelled:
        return gen, None, None
    except CryoDenoiseError as err:
        return gen, None, str(err)
    except MemoryError:
        return gen, None, "out of memory; lower the crop or the batch size"
    except Exception as err:  # noqa: BLE001 - shown as one line, never a traceback
        return gen, None, f"{type(err).__name__}: {err}"


class StepTimeLine(QObject):
    """Keeps a label showing the expected time per step (see the module docstring).

    Parameters
    ----------
    label : magicgui.widgets.Label
        Where the line goes.
    read_inputs : callable
        ``() -> (TrainConfig, ndim)`` on the main thread; may raise InputError.
    budget : callable
        ``() -> (minutes, steps)`` for the "-> ~N steps in M min" part.
    busy : callable
        ``() -> bool``: True while training runs (nothing is measured then).
    parent : QObject, optional

    """

    #: Tests switch the measurement off (the widget opens without timing steps).
    ENABLED = True

    def __init__(
        self,
        label: Any,
        read_inputs: Callable[[], Inputs],
        budget: Callable[[], tuple[float | None, int | None]],
        busy: Callable[[], bool],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.label = label
        self._read_inputs = read_inputs
        self._budget = budget
        self._busy = busy
        self.estimate: Any = None  # the current StepEstimate
        self._key: Any = None  # the inputs of the current (or running) estimate
        self._gen = 0
        self._workers: dict[Any, threading.Event] = {}  # running, current or superseded
        self._current: Any = None
        self._stopped = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._measure)

    @property
    def running(self) -> int:
        """Workers still running (a superseded one stops at its next step)."""
        return len(self._workers)

    def schedule(self, *_: Any) -> None:
        """Measure again after :data:`DEBOUNCE_MS` ms without further changes."""
        if not self._stopped and self.ENABLED:
            self._timer.start()

    def show_budget(self, *_: Any) -> None:
        """Redraw the line for a new "train for" budget (nothing is measured)."""
        if self.estimate is not None and not self._stopped:
            self.label.value = PREFIX + self.estimate.line(*self._budget())

    def pause(self) -> None:
        """Training starts: stop measuring (the step cost is shown by the run itself)."""
        self._timer.stop()
        self._cancel_current()
        if self.estimate is None:
            self.label.value = ""

    def stop(self, wait_ms: int = 15000) -> None:
        """The widget is closing: cancel everything; no widget is touched afterwards.

        A running measurement stops at its next step; Qt's thread pool is given up
        to ``wait_ms`` for that, so that no worker outlives the Qt objects it reports to.
        """
        self._stopped = True
        try:
            self._timer.stop()
        except RuntimeError:  # already deleted with its parent
            pass
        for worker, cancel in list(self._workers.items()):
            cancel.set()
            worker.quit()
        if self._workers:
            wait_for_workers(wait_ms)

    def _cancel_current(self) -> None:
        if self._current is not None:
            self._workers[self._current].set()
            self._current.quit()
        self._current, self._key = None, None

    def _measure(self) -> None:
        if self._stopped or self._busy():
            return
        try:
            config, ndim = self._read_inputs()
        except (InputError, ValueError) as err:
            self._cancel_current()
            self.estimate = None
            self.label.value = PREFIX + "? (" + str(err).splitlines()[0][:140] + ")"
            return
        key = (repr(config), ndim)
        if key == self._key and (self.estimate is not None or self._current is not None):
            self.show_budget()
            return
        self._cancel_current()
        self.label.value = PREFIX + "estimating the time per step..."
        if self._workers:  # a superseded one stops at its next step: measure after it
            self._timer.start()
            return
        self._gen += 1
        self._key, self.estimate = key, None
        cancel = threading.Event()
        worker = create_worker(
            _estimate, self._gen, config, ndim, cancel.is_set, _start_thread=False
        )
        worker.returned.connect(lambda result: self._on_result(result))
        worker.finished.connect(lambda w=worker: self._on_finished(w))
        self._workers[worker], self._current = cancel, worker
        worker.start()

    def _on_result(self, result: Result) -> None:
        gen, estimate, error = result
        if self._stopped or gen != self._gen:
            return  # superseded (or closing)
        if estimate is not None:
            self.estimate = estimate
            self.label.value = PREFIX + estimate.line(*self._budget())
        elif error is not None:
            self._key = None  # measure again on the next change
            self.label.value = PREFIX + "? (" + error.splitlines()[0][:140] + ")"

    def _on_finished(self, worker: Any) -> None:
        self._workers.pop(worker, None)
        if worker is self._current:
            self._current = None
