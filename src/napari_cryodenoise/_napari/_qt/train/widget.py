"""The "Train (Noise2Noise)" dock widget: data, settings, Start/Cancel, loss plot, live preview.

Training runs in a napari worker on frozen inputs (a
:class:`~..train_jobs.TrainData` with read-only arrays or file paths,
and a :class:`~napari_cryodenoise.training.TrainConfig`). The training core's
callbacks run on the worker thread and only emit queued Qt signals, so steps,
snapshots and messages arrive here on the main thread, which alone touches the
plot and the layers; the plot and the status line are redrawn at most every
:data:`REDRAW_MS` ms. Every ``snapshot_every`` steps the core hands over a
CPU copy of the network, which denoises the visible part of the preview layer
(at most 512 x 512 px around the view centre) in a second worker; the result
goes into one ``<layer> [training preview]`` layer over its source. Before training,
an "expected: ~x s per step" line shows the measured cost of a step with the current
settings (:mod:`.step_time`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from magicgui.widgets import Label
from napari.qt.threading import create_worker
from napari.utils import cancelable_progress
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QObject, QTimer, Signal
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ....errors import Cancelled, CryoDenoiseError, InputError
from ....training import TrainConfig, TrainResult, TrainStatus
from ...save_guard import check_training_outputs, refuse_existing_models
from ...train_jobs import result_text, run_training, status_text
from ..dock import fill_with_scroll_area
from ..handover import open_denoise_dock, select_input
from ..live import ensure_pool_threads, wait_for_workers
from ..plot import make_loss_plot
from ..workers import Relay, bar_updater, is_cpu, shutdown_quietly
from .form import TrainForm
from .form_read import even_base
from .preview import TrainingPreview
from .step_time import COST_FIELDS, StepTimeLine, budget_of, estimate_inputs

REDRAW_MS = 250
#: Longest error line in the status label (it wraps; only a runaway message is cut).
STATUS_MAX = 400
CPU_WARNING = (
    "Training on the CPU: this is slow (a CUDA GPU is typically 20-100x faster). Fine-tuning "
    "for a few minutes already helps; the ETA appears after the first steps."
)


class _Events(QObject):
    """Queued signals from the training thread to the widget (safe after the widget is gone)."""

    step = Signal(object)
    snapshot = Signal(object)
    stage = Signal(str)

    def send(self, signal: str, value: Any) -> None:
        try:
            getattr(self, signal).emit(value)
        except RuntimeError:  # the widget was deleted: nobody to tell
            pass


class TrainWidget(TrainForm):
    """Dock widget that trains (or fine-tunes) a denoiser on the user's data.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer it is docked in (napari passes it by this name).

    """

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(getattr(napari_viewer, "__wrapped__", napari_viewer), parent)
        self.result: TrainResult | None = None
        self.model_path: Path | None = None
        self._trained_for: Any = None  # the layer the model learns from (handed to Denoise)
        self._worker: Any = None
        self._cancel: threading.Event | None = None
        self._keep: list[Any] = []  # relay, events, progress bar of the running job
        self._train_pts: list[tuple[int, float]] = []
        self._val_pts: list[tuple[int, float]] = []
        self._status: TrainStatus | None = None
        self._dirty = False
        self._closed = False  # the widget (or the viewer) is closing: touch no widget
        ensure_pool_threads(6)
        self.plot = make_loss_plot(self.viewer)
        self.expected = Label(value="")
        self._build_layout()
        self._redraw_timer = QTimer()
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self._flush)
        self.live_preview = TrainingPreview(self.viewer)
        self.live_preview.failed.connect(lambda text: setattr(self.note, "value", text))
        self.start_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self.use_button.changed.connect(self.use_in_denoise)
        self._follow_step_time()
        self.destroyed.connect(lambda *_: shutdown_quietly(self))

    def _build_layout(self) -> None:
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.form.native)
        for label in (self.expected, self.status, self.note):
            label.native.setContentsMargins(8, 0, 8, 0)
            layout.addWidget(label.native)
        layout.addWidget(self.plot)
        layout.addStretch(1)
        fill_with_scroll_area(self, content)

    def _follow_step_time(self) -> None:
        """The "expected: ~x s per step" line, measured now and when the step cost changes."""
        self.expected.native.setWordWrap(True)
        self.expected.tooltip = (
            "the measured time of one training step with these settings (on synthetic data); "
            "validation adds a little"
        )
        self.step_time = StepTimeLine(
            self.expected,
            lambda: estimate_inputs(self),
            lambda: budget_of(self),
            lambda: self.busy,
            parent=self,
        )
        for name in COST_FIELDS:
            getattr(self, name).changed.connect(self.step_time.schedule)
        self.budget.changed.connect(self.step_time.show_budget)
        self.budget_unit.changed.connect(self.step_time.show_budget)
        self.step_time.schedule()

    # -- running -------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while training (or reading its data) runs."""
        return self._worker is not None

    @property
    def running_workers(self) -> int:
        """Training and preview workers still running."""
        return (
            int(self._worker is not None) + int(self.live_preview.running) + self.step_time.running
        )

    def start(self, *_: Any) -> Any:
        """Start training with the form's data and settings; returns the worker (or None)."""
        if self.busy:
            show_warning("training is running; cancel it first")
            return None
        try:
            data = self.data()
            config = self.config(data)
            check_training_outputs(config, data, self.source_layers())
            refuse_existing_models(config)
        except (InputError, ValueError) as err:
            self._fail(str(err))
            return None
        self._reset(config)
        preview = self.preview.value if config.snapshot_every else None
        self.live_preview.reset(preview, config.device, sum_frames=self.preview_sum())
        self._trained_for = self.trained_layer() or preview
        cancel = threading.Event()
        pbar = cancelable_progress(total=0, desc="training", cancel_callback=cancel.set)
        relay = Relay(bar_updater(pbar))
        events = _Events()
        events.step.connect(self._on_step)
        events.snapshot.connect(self._on_snapshot)
        events.stage.connect(self._on_stage)
        worker = create_worker(
            run_training,
            data,
            config,
            progress=relay.emit,
            cancel=cancel.is_set,
            on_step=lambda s: events.send("step", s),
            on_snapshot=None if preview is None else (lambda m: events.send("snapshot", m)),
            on_stage=lambda t: events.send("stage", t),
            _start_thread=False,
            _ignore_errors=True,
        )
        worker.returned.connect(self._on_done)
        worker.errored.connect(self._report)
        worker.finished.connect(lambda: self._on_finished(worker))
        self._worker, self._cancel, self._keep = worker, cancel, [relay, events, pbar]
        self.step_time.pause()
        self.start_button.enabled, self.cancel_button.enabled = False, True
        if is_cpu(config.device):
            show_warning(CPU_WARNING)
        self._redraw_timer.start()
        worker.start()
        return worker

    def _reset(self, config: TrainConfig) -> None:
        self.result, self.model_path = None, None
        self.use_button.enabled = False
        self._train_pts, self._val_pts, self._status = [], [], None
        self.plot.clear()
        self.note.value = ""
        self.status.value = "starting..."

    def cancel(self, *_: Any) -> None:
        """Stop after the current step; the checkpoint and the best model so far are kept."""
        if self._cancel is None:
            return
        self._cancel.set()
        self.cancel_button.enabled = False
        self.status.value = (
            "cancelling after the current step (the checkpoint and the best model so far "
            "are kept)..."
        )

    def shutdown(self, wait_ms: int = 30000) -> None:
        """Cancel everything (the viewer or the widget is closing); touches no widget.

        A running training stops after its current step and writes its
        checkpoint and best model; this waits for it (at most ``wait_ms``) so
        that they are on disk and no worker outlives the Qt objects it reports to.
        """
        self._closed = True
        self.disconnect_viewer()
        if self._cancel is not None:
            self._cancel.set()
        if self._worker is not None:
            self._worker.quit()
        self.live_preview.stop()
        self.step_time.stop()
        try:
            self._redraw_timer.stop()
        except RuntimeError:
            pass
        if self._worker is not None:
            wait_for_workers(wait_ms)

    @property
    def _cancelling(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def _on_stage(self, text: str) -> None:
        # the "cancelling..." line stays until the run ends
        if not self._cancelling and not self._closed:
            self.status.value = text

    def _on_step(self, status: TrainStatus) -> None:
        if self._closed:
            return
        self._status = status
        self._train_pts.append((status.step, status.train_loss))
        if status.val_loss is not None:
            self._val_pts.append((status.step, status.val_loss))
        for line in (status.message or "").splitlines():
            if line.startswith("CPU speed"):
                show_info(line)
            if not line.startswith("training on the CPU"):
                self.note.value = line
        self._dirty = True

    def _flush(self) -> None:
        """Redraw the plot and the status line if steps arrived (timer, <= 4 per second)."""
        if not self._dirty or self._closed:
            return
        self._dirty = False
        self.plot.set_history(self._train_pts, self._val_pts)
        if self._status is not None and self.busy and not self._cancelling:
            self.status.value = status_text(self._status)

    def _on_done(self, result: TrainResult) -> None:
        if self._closed:
            return
        self._dirty = True
        self._flush()
        self.result = result
        self.model_path = result.model_path
        text = result_text(result)
        self.status.value = text
        self.use_button.enabled = self.model_path is not None
        show_info(f"Training {text}")
        if "output" not in self._touched:  # the next run gets a new default file
            self._on_data_changed()

    def _on_finished(self, worker: Any) -> None:
        if self._worker is not worker:
            return
        pbar = self._keep[-1] if self._keep else None
        if pbar is not None:
            pbar.close()
        self._worker, self._cancel, self._keep = None, None, []
        if self._closed:
            return
        self._redraw_timer.stop()
        self._flush()
        self.start_button.enabled, self.cancel_button.enabled = True, False
        self.step_time.schedule()

    def _report(self, err: BaseException) -> None:
        if self._closed:
            return
        if isinstance(err, Cancelled):
            self.status.value = "cancelled before training started (nothing was written)"
            show_info(self.status.value)
            return
        if isinstance(err, CryoDenoiseError):
            message = str(err)
        elif isinstance(err, MemoryError) or "out of memory" in str(err).lower():
            message = (
                f"out of memory ({str(err).splitlines()[0][:80]}); lower the crop or the batch "
                "size (e.g. crop 96, batch 2), or train unet-fast"
            )
        else:
            message = f"{type(err).__name__}: {err}"
        self._fail(message)

    def _fail(self, message: str) -> None:
        line = (message.splitlines() or [""])[0]  # the whole line: its end says what to do
        if len(line) > STATUS_MAX:
            line = line[: STATUS_MAX - 1].rstrip() + "…"
        self.status.value = "failed: " + line
        show_error(f"Training failed: {message}")

    # -- live preview --------------------------------------------------------------------
    @property
    def preview_layer(self) -> Any:
        """The ``<layer> [training preview]`` layer (None before the first preview)."""
        layer = self.live_preview.layer
        return layer if layer is not None and layer in self.viewer.layers else None

    def _on_snapshot(self, model: Any) -> None:
        if self._closed:
            return
        self.live_preview.submit(model, self._status.step if self._status is not None else 0)

    # -- hand over -----------------------------------------------------------------------
    def _denoise_input(self) -> Any:
        """The layer to hand to Denoise, the image a user denoises.

        The full sum ``X`` when it is open beside the halves ``X_EVN``/``X_ODD`` trained on
        (same shape), else the layer the model was trained on.
        """
        layer = self._trained_for
        if layer is None:
            return None
        base = even_base(layer.name)
        full = next((x for x in self.viewer.layers if x.name == base), None)
        if base != layer.name and full is not None and full.data.shape == layer.data.shape:
            return full
        return layer

    def use_in_denoise(self, *_: Any) -> Any:
        """Find (or open) the Denoise widget; select the trained model and its layer there.

        An open Denoise dock is reused however it was opened (Plugins or
        Layers menu); the input becomes the layer the model was trained on,
        never a result or a training preview.
        """
        path = self.model_path
        if path is None or not Path(path).is_file():
            show_warning("no trained model yet: train first (the best model is saved as it runs)")
            return None
        try:
            dock, widget = open_denoise_dock(self.viewer)
            widget.use_model_file(path)
            select_input(widget, self._denoise_input())
        except (CryoDenoiseError, RuntimeError, KeyError, ValueError) as err:
            show_error(f"cannot hand the model to the Denoise widget: {err}")
            return None
        if dock is not None:
            dock.show()
            dock.raise_()
        show_info(f"Denoise now uses {Path(path).name}; press Denoise to run it")
        return widget
