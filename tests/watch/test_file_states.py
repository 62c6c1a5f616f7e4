"""The watch's pending count comes from one state per file: nothing is counted twice.

Driven directly (no folder, no executor, no timing): a stopped Dask watch of 8 files said
"pending 7" after 2 were done, an item in flight being counted again among the stopped.
"""

from __future__ import annotations

from pathlib import Path

from napari_cryodenoise.watch.ledger import FileStates
from napari_cryodenoise.watch.status import WatchStatus

FILES = [Path("in") / f"mic{i}.mrc" for i in range(8)]


def _status(files: FileStates, settling=()) -> WatchStatus:
    status = WatchStatus(
        queued=files.count("queued", "stopped"),
        running=files.count("running"),
        settling=files.settling(settling),
    )
    return status


def test_a_stopped_watch_of_8_files_with_2_done_has_6_pending():
    files = FileStates()
    for path in FILES:
        files.set(path, "queued")
    for path in FILES[:4]:  # two Dask workers, two items each
        files.set(path, "running")
    for path in FILES[:2]:
        files.set(path, "done")
    # the executor hands back its stopped items, which are the ones in flight too
    files.stop()
    for path in FILES[2:4]:
        assert files.get(path) == "stopped"
    assert files.pending == 6
    assert "pending 6" in _status(files).text()
    files.stop()  # stopping twice changes nothing
    assert files.pending == 6 and files.count("done") == 2


def test_a_file_queued_twice_or_settling_again_counts_once():
    files = FileStates()
    files.set(FILES[0], "queued")
    files.set("in/./mic0.mrc", "queued")  # queued and redone: the same file
    assert files.pending == 1
    files.set(FILES[1], "running")
    # taken, then changed while denoised: the scanner sees it settle again
    assert files.settling(["in/mic1.mrc", "./in/mic2.mrc"]) == 1
    assert _status(files, ["in/mic1.mrc", "in/mic2.mrc"]).pending == 3
    files.set(FILES[1], "failed")
    files.set(FILES[0], "done")
    assert files.pending == 0 and files.get("in/mic9.mrc") is None
