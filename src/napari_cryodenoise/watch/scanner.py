"""Which files of a watched folder are whole and ready, in arrival order (no Qt, no torch).

The rules, so that a half-written file is never taken:

* an MRC file is ready when its header says its data is all there (the file holds at
  least ``1024 + extended header + nx*ny*nz*itemsize`` bytes) and it did not change
  since the previous look (or was last written over a second ago). One whose header
  promises more data than it holds is waited for; if it does not grow for
  :data:`STALL_FACTOR` times the settle time, it is taken anyway (and reported as
  truncated by the denoiser);
* any other file (TIFF, EER, compressed MRC, an MRC whose header is not one yet) is
  ready when its size and modification time have not changed for ``settle`` seconds;
  files already there at the first look and last written ``settle`` seconds or more
  ago are ready at once (a restarted watch does not wait for old files);
* a file taken before that changes (replaced by a new version, rewritten in place, or
  repaired after a failure) is offered again once it is whole by the same rules.

Ignored: hidden files (temporary files of writers, ours included), even/odd half sums
(``X_EVN``/``X_ODD``, ``X_even``/``X_odd``: training data, not micrographs), files that
are not images, and anything under the output folder.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["STALL_FACTOR", "Scanner", "mrc_state", "signature"]

#: An MRC file that stays shorter than its header says for this many settle times is taken.
STALL_FACTOR = 10.0
#: A complete-by-header MRC last written this long ago is taken without a second look.
FRESH_SECONDS = 1.0

Signature = tuple[int, int]  # size, mtime_ns


def signature(path: str | os.PathLike) -> Signature | None:
    """``(size, mtime_ns)`` of a file, None if it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return int(st.st_size), int(st.st_mtime_ns)


def mrc_state(path: str | os.PathLike) -> str:
    """``"complete"``, ``"incomplete"`` (header promises more bytes) or ``"unknown"``.

    Reads the first 1024 bytes only: "unknown" is a file with no plausible MRC header
    (not written yet, or not an MRC file).
    """
    from ..io.mrc import SUPPORTED_MODES

    try:
        with open(path, "rb") as fh:
            raw = fh.read(1024)
        size = os.stat(path).st_size
    except OSError:
        return "unknown"
    if len(raw) < 1024:
        return "incomplete" if raw[:4].strip(b"\0") else "unknown"
    for order in "<>":
        nx, ny, nz, mode = (int(v) for v in np.frombuffer(raw, f"{order}i4", count=4))
        ext = int(np.frombuffer(raw, f"{order}i4", count=1, offset=92)[0])
        if 0 < nx < 2**20 and 0 < ny < 2**20 and 0 < nz < 2**20 and mode in SUPPORTED_MODES:
            if ext < 0:
                continue
            itemsize = np.dtype(SUPPORTED_MODES[mode]).itemsize
            need = 1024 + ext + nx * ny * nz * itemsize
            return "complete" if size >= need else "incomplete"
    return "unknown"


@dataclass
class _Seen:
    signature: Signature
    since: float  # monotonic time the signature was first seen
    at_start: bool  # present at the first look


class Scanner:
    """Find the files of a folder that are whole, once each, in arrival order.

    Parameters
    ----------
    folder : path
        The watched folder.
    pattern : str
        Glob matched against file names (e.g. ``"*_DW.mrc"``); default every image file.
    recursive : bool
        Also look in sub-folders (not hidden ones, not ``exclude``).
    settle : float
        Seconds a non-MRC file's size must stay the same before it is taken.
    exclude : sequence of path
        Folders never looked into (the output folder).
    clock : callable
        Monotonic clock (tests).

    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        pattern: str = "*",
        recursive: bool = False,
        settle: float = 5.0,
        exclude: tuple[str | os.PathLike, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = Path(folder)
        self.pattern = pattern or "*"
        self.recursive = recursive
        self.settle = float(settle)
        self.exclude = {os.path.realpath(p) for p in exclude}  # also when given via a link
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._taken: dict[str, Signature] = {}
        self._first = True

    # ------------------------------------------------------------------ listing

    def _wanted(self, name: str) -> bool:
        from ..io import EER_SUFFIXES, image_suffix, is_image_path
        from ..training.half_names import half_of

        if name.startswith("."):
            return False
        if not fnmatch.fnmatch(name, self.pattern):
            return False
        # EER movies are taken to be reported as movies (else they were silently ignored)
        image = is_image_path(name) or image_suffix(name) in EER_SUFFIXES
        return image and half_of(name) is None

    def files(self) -> Iterator[os.DirEntry]:
        """Every wanted file of the folder (and sub-folders with ``recursive``)."""
        stack = [str(self.folder)]
        while stack:
            top = stack.pop()
            try:
                with os.scandir(top) as it:
                    entries = list(it)
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if (
                            self.recursive
                            and not entry.name.startswith(".")
                            and os.path.realpath(entry.path) not in self.exclude
                        ):
                            stack.append(entry.path)
                    elif entry.is_file() and self._wanted(entry.name):
                        yield entry
                except OSError:
                    continue

    # ------------------------------------------------------------------ readiness

    def scan(self) -> list[Path]:
        """Look once; return the files that became ready, oldest first (mtime, then name)."""
        now = self.clock()
        wall = time.time()
        ready: list[tuple[int, str, Path]] = []
        present: set[str] = set()
        for entry in self.files():
            key = entry.path
            present.add(key)
            try:
                st = entry.stat()
            except OSError:
                continue
            sig = (int(st.st_size), int(st.st_mtime_ns))
            if self._taken.get(key) == sig:
                continue  # taken as it is now (a changed file is offered again)
            seen = self._seen.get(key)
            if seen is None or seen.signature != sig:
                previous = seen
                seen = _Seen(sig, now, self._first)
                self._seen[key] = seen
                if previous is not None:  # changed since the last look: not at start any more
                    seen.at_start = False
            if self._is_ready(Path(key), seen, now, wall, st.st_mtime):
                ready.append((sig[1], entry.name, Path(key)))
                self._taken[key] = sig
                self._seen.pop(key, None)
        for key in [k for k in self._seen if k not in present]:
            del self._seen[key]  # deleted before it was ready
        self._first = False
        ready.sort()
        return [p for _, _, p in ready]

    def _is_ready(self, path: Path, seen: _Seen, now: float, wall: float, mtime: float) -> bool:
        from ..io import MRC_SUFFIXES, compression_of, image_suffix

        stable_for = now - seen.since
        old = seen.at_start and wall - mtime >= self.settle
        if image_suffix(path) in MRC_SUFFIXES and compression_of(path) is None:
            state = mrc_state(path)
            if state == "complete":
                # unchanged since an earlier look, or last written a while ago
                return seen.since < now or wall - mtime >= FRESH_SECONDS
            if state == "incomplete":
                return stable_for >= STALL_FACTOR * self.settle or (
                    seen.at_start and wall - mtime >= STALL_FACTOR * self.settle
                )
        return old or stable_for >= self.settle

    # ------------------------------------------------------------------ bookkeeping

    def pending(self) -> int:
        """Files seen but not ready yet (being written, or settling)."""
        return len(self._seen)

    def settling(self) -> list[str]:
        """The paths of the files seen but not ready yet (see :meth:`pending`)."""
        return list(self._seen)

    def mark_taken(self, path: str | os.PathLike) -> None:
        """Never offer ``path`` (as it is now)."""
        sig = signature(path)
        if sig is not None:
            self._taken[str(path)] = sig
