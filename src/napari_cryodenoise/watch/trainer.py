"""On-the-fly training: a Noise2Noise model from the first micrographs' even/odd sums.

:class:`TrainFirst` collects the even/odd half sums written beside the micrographs a
watch takes (``X_EVN``/``X_ODD`` or ``X_even``/``X_odd``, the motion-correction
conventions of :mod:`napari_cryodenoise.training.half_names`); when it has ``count``
of them it trains in a background thread with the same trainer as ``cryodenoise
train`` (:func:`napari_cryodenoise.training.train`), writing the model to a file. The
watch asks :meth:`TrainFirst.poll` between micrographs and switches to the model once it
is there. Stopping (Ctrl-C) cancels the training within a step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal

from ..messages import one_line
from ..training.config import TrainConfig

__all__ = ["TrainFirst"]

State = Literal["collecting", "training", "done", "failed"]


class TrainFirst:
    """Collect even/odd pairs from arriving micrographs, then train in the background.

    Parameters
    ----------
    count : int
        Micrographs with half sums to train on.
    config : TrainConfig
        The training settings (budget, network); ``output`` is the model file.
    log : callable
        Receives one line per event (training started, finished, failed).

    """

    def __init__(self, count: int, config: TrainConfig, log: Callable[[str], None]) -> None:
        if not config.output:
            raise ValueError("the training config needs an output file")
        self.count = int(count)
        self.config = config
        self.log = log
        self.state: State = "collecting"
        self.files: list[tuple[Path, Path]] = []
        self.waiting: list[Path] = []  # micrographs whose halves have not (all) arrived
        self.model_path: Path | None = None
        self.fraction = 0.0
        self.error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def finished(cls, model: str | Path, config: TrainConfig, log: Callable[[str], None]):
        """A trainer whose model was trained by an earlier run of the watch."""
        self = cls(0, config, log)
        self.state, self.model_path, self.fraction = "done", Path(model), 1.0
        return self

    # ------------------------------------------------------------------ collecting

    def offer(self, micrograph: Path) -> None:
        """Look for the half sums of a micrograph the watch has taken."""
        if self.state != "collecting":
            return
        if not self._add(micrograph):
            self.waiting.append(micrograph)
        self._maybe_start()

    def _add(self, micrograph: Path) -> bool:
        from ..io.completeness import output_is_complete
        from ..training.half_names import half_files_beside

        if len(self.files) >= self.count:
            return True
        halves = half_files_beside(micrograph)
        if halves is None or not all(output_is_complete(h) for h in halves):
            return False
        if halves not in self.files:
            self.files.append(halves)
        return True

    def _maybe_start(self) -> None:
        if self.state == "collecting" and len(self.files) >= self.count:
            self.start()

    def poll(self) -> State:
        """Recheck micrographs whose halves were missing; return the state."""
        if self.state == "collecting" and self.waiting:
            self.waiting = [m for m in self.waiting if not self._add(m)][-1000:]
            self._maybe_start()
        return self.state

    @property
    def active(self) -> bool:
        """Training is running."""
        return self.state == "training"

    def describe(self) -> str:
        """Short text for the status line."""
        if self.state == "collecting":
            return f"training waits for pairs {len(self.files)}/{self.count}"
        if self.state == "training":
            return f"training {100 * self.fraction:.0f}%"
        if self.state == "failed":
            return "training failed"
        return ""

    # ------------------------------------------------------------------ training

    def start(self) -> None:
        """Train now on the pairs collected so far (in a background thread)."""
        if self.state != "collecting" or not self.files:
            return
        self.state = "training"
        self.log(
            f"training a Noise2Noise model on the even/odd sums of {len(self.files)} "
            f"micrographs -> {self.config.output}"
        )
        self._thread = threading.Thread(target=self._run, name="watch-train", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from ..training import TrainingCancelled, train
        from ..training.pair_sources import load_file_pairs

        def progress(done: int, total: int) -> None:
            self.fraction = done / total if total else 0.0

        try:
            pairs = load_file_pairs(list(self.files))
            config = replace(self.config, mode="noise2noise")
            result = train(pairs, config, progress=progress, cancel=self._stop.is_set)
            path = Path(result.model_path or config.output)
        except TrainingCancelled:
            self.state = "failed"
            self.error = "stopped"
            return
        except Exception as err:  # noqa: BLE001 - reported on the status line, watch goes on
            self.error = one_line(err)
            self.state = "failed"
            self.log(f"training failed, the watch keeps its model: {self.error}")
            return
        self.model_path = path
        self.fraction = 1.0
        self.state = "done"
        self.log(
            f"trained {result.steps} steps in {result.elapsed / 60:.1f} min; "
            f"denoising with {path} from now on"
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel a running training and wait up to ``timeout`` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
