"""RELION's External-job protocol: exit files, the abort file, the output nodes.

* exactly one of :data:`SUCCESS` / :data:`FAILURE` / :data:`ABORTED` in the job folder at
  the end; those of an earlier run are removed at the start (:func:`prepare`);
* the GUI's abort button creates :data:`ABORT_NOW`; :class:`AbortWatcher` looks for it
  every second and interrupts the main thread (a ``KeyboardInterrupt``, which the
  ``cryodenoise`` command line turns into a clean stop);
* ``RELION_OUTPUT_NODES.star`` names the job's outputs for the pipeliner (:func:`nodes_star`).
  RELION reads it when the job succeeds (or is marked as finished by hand), so it is
  written only by a successful run and removed when a run starts (:func:`prepare`): a
  failed or aborted Continue must not leave an earlier success's nodes behind.
"""

from __future__ import annotations

import _thread
import os
import signal
import threading
import time
from pathlib import Path

__all__ = [
    "ABORTED",
    "ABORT_NOW",
    "FAILURE",
    "MICROGRAPHS_NODE",
    "NODES_FILE",
    "SUCCESS",
    "AbortWatcher",
    "drain_interrupt",
    "finish",
    "node_name",
    "nodes_star",
    "on_sigterm",
    "prepare",
    "restore_sigterm",
]

SUCCESS, FAILURE, ABORTED = (
    "RELION_JOB_EXIT_SUCCESS",
    "RELION_JOB_EXIT_FAILURE",
    "RELION_JOB_EXIT_ABORTED",
)
ABORT_NOW = "RELION_JOB_ABORT_NOW"
NODES_FILE = "RELION_OUTPUT_NODES.star"
#: RELION 4/5 node type label of a micrographs STAR (RELION 3.1: integer type 1).
MICROGRAPHS_NODE = "MicrographGroupMetadata.star.relion"
#: Seconds between two looks for the abort file.
ABORT_POLL_S = 1.0


def nodes_star(star: str) -> str:
    """``RELION_OUTPUT_NODES.star`` declaring ``star`` as a micrographs node (RELION 4/5)."""
    return (
        "\n# version 30001\n\ndata_output_nodes\n\nloop_\n"
        "_rlnPipeLineNodeName #1\n_rlnPipeLineNodeTypeLabel #2\n"
        f"{star} {MICROGRAPHS_NODE}\n\n"
    )


class AbortWatcher:
    """Look for ``RELION_JOB_ABORT_NOW`` every second; on it, interrupt the main thread."""

    def __init__(self, abort_file: Path, interval: float = ABORT_POLL_S) -> None:
        self.abort_file = abort_file
        self.interval = interval
        self.requested = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="relion-abort", daemon=True)

    def start(self) -> None:
        """Start watching (in a daemon thread)."""
        self._thread.start()

    def _watch(self) -> None:
        resend = 0.0
        while not self._stop.wait(self.interval):
            if not self.requested.is_set() and not self.abort_file.exists():
                continue
            now = time.monotonic()
            with self._lock:
                if self._stop.is_set():
                    return
                if not self.requested.is_set() or now >= resend:
                    # the first one lets training stop after its step and keep a checkpoint;
                    # later ones (every 30 s) cut through anything that did not stop
                    self.requested.set()
                    _thread.interrupt_main()
                    resend = now + 30.0

    def stop(self) -> None:
        """Stop watching; no interrupt is sent after this returns."""
        with self._lock:
            self._stop.set()


def drain_interrupt() -> None:
    """Let an interrupt already sent to this thread fire now (inside the caller's try)."""
    for _ in range(1000):
        pass


def finish(job: Path, which: str) -> None:
    """Leave ``which`` as the one exit file of the job folder."""
    for name in (SUCCESS, FAILURE, ABORTED):
        if name != which:
            (job / name).unlink(missing_ok=True)
    (job / which).touch()


def prepare(job: Path) -> None:
    """Create the job folder; remove the exit files and output nodes of an earlier run."""
    job.mkdir(parents=True, exist_ok=True)
    for name in (SUCCESS, FAILURE, ABORTED, NODES_FILE):
        (job / name).unlink(missing_ok=True)


def node_name(path: Path) -> str:
    """``path`` as RELION names nodes: relative to the project directory, ``/``-separated."""
    text = os.path.normpath(path)
    if os.path.isabs(text):
        try:
            inside = os.path.relpath(text)
        except ValueError:  # another drive
            inside = text
        text = text if inside.startswith("..") else inside
    return text.replace(os.sep, "/")


def on_sigterm(terminated: threading.Event):
    """Make SIGTERM (a queue's time limit, ``kill``) stop the run like Ctrl-C.

    Sets ``terminated``; returns the previous handler (None outside the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame) -> None:  # noqa: ANN001
        terminated.set()
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def restore_sigterm(previous) -> None:  # noqa: ANN001
    """Put back the SIGTERM handler :func:`on_sigterm` replaced."""
    signal.signal(signal.SIGTERM, previous)
