"""A micrograph session: the list, where the user is, marks, follow mode (no Qt, no napari).

A session is opened from a folder, a glob or a RELION micrograph STAR
(:func:`open_session`); only names are listed (and, for a STAR, its rows
read), never pixels: a micrograph is read when it is shown. Folders and globs
are listed in arrival order (modification time, then name) and rescanned
cheaply (:meth:`Session.scan`) for micrographs that arrived since, taking
only files whose data is complete by their header (a half-copied MRC waits
for the next scan). The Qt side (``_qt/session/``) shows ``session.current``
and asks :meth:`Session.prefetch_plan` what to compute ahead.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..io.atomic import is_partial
from ..io.completeness import output_is_complete

__all__ = [
    "BAD",
    "FOLDER_PATTERN",
    "GOOD",
    "Session",
    "SessionItem",
    "find_output",
    "is_session_folder",
    "list_micrographs",
    "open_session",
]

GOOD, BAD = "good", "bad"
#: Micrographs a folder session lists (motion-corrected sums; movies are left out).
FOLDER_PATTERN = "*.mrc"
#: STAR columns shown in the facts line: label -> caption (defocus in um, others in A).
STAR_FACTS = {
    "rlnDefocusU": "defocus U",
    "rlnDefocusV": "defocus V",
    "rlnCtfMaxResolution": "CTF fit",
    "rlnAccumMotionTotal": "motion",
}


@dataclass(frozen=True)
class SessionItem:
    """One micrograph of a session.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    row : int or None
        Its row in the micrograph block of the STAR it came from.
    star : dict of str to str
        That row's values (exact strings), empty without a STAR.

    """

    path: Path
    row: int | None = None
    star: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        """The file name."""
        return self.path.name

    @property
    def key(self) -> tuple:
        """Identifies the file's content: path, size and modification time (or the path)."""
        try:
            st = self.path.stat()
            return (str(self.path), st.st_size, st.st_mtime_ns)
        except OSError:
            return (str(self.path),)


def _listable(path: Path) -> bool:
    name = path.name
    return not name.startswith(".") and not is_partial(path) and path.is_file()


def _arrival_order(paths: Iterable[Path]) -> list[Path]:
    def key(p: Path) -> tuple:
        try:
            return (p.stat().st_mtime_ns, p.name)
        except OSError:
            return (0, p.name)

    return sorted(paths, key=key)


def list_micrographs(pattern: str, known: Collection[str] = ()) -> list[Path]:
    """Complete micrograph files matching a glob, in arrival order (no pixels are read).

    Paths in ``known`` are left out without being looked at (a rescan checks
    only the headers of new files).
    """
    matches = (Path(m) for m in glob.glob(os.path.expanduser(pattern)))
    paths = (p for p in matches if str(p) not in known)
    return _arrival_order(p for p in paths if _listable(p) and output_is_complete(p))


def is_session_folder(path: str | os.PathLike) -> bool:
    """True for a folder with at least one micrograph matching :data:`FOLDER_PATTERN`."""
    folder = Path(path)
    if not folder.is_dir():
        return False
    return any(_listable(p) for p in folder.glob(FOLDER_PATTERN))


def find_output(item: SessionItem, outdir: str | os.PathLike | None) -> Path | None:
    """``OUTDIR/<stem>.mrc`` when ``cryodenoise watch`` (or ``denoise``) has written it whole."""
    if not outdir:
        return None
    out = Path(outdir) / f"{item.path.stem}.mrc"
    try:
        if out.resolve() == item.path.resolve():
            return None
    except OSError:
        return None
    return out if output_is_complete(out) else None


class Session:
    """The micrographs of a session and the user's place, marks and follow mode.

    Parameters
    ----------
    items : sequence of SessionItem
        The micrographs, in order.
    source : str
        What was opened (folder, glob or STAR file), for messages.
    pattern : str or None
        Glob rescanned by :meth:`scan` (None: a STAR list, which is fixed).
    star : MicrographStar or None
        The STAR the items came from (its blocks are kept for saving).

    """

    def __init__(
        self,
        items: Sequence[SessionItem],
        source: str,
        *,
        pattern: str | None = None,
        star: object | None = None,
    ) -> None:
        self.items: list[SessionItem] = list(items)
        self.source = source
        self.pattern = pattern
        self.star = star
        self.index = 0
        self.marks: dict[Path, str] = {}
        #: Show the newest micrograph when one arrives, if the user is at the last one.
        self.follow = True
        self._known = {str(i.path) for i in self.items}

    # -- where the user is --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    @property
    def current(self) -> SessionItem | None:
        """The micrograph shown (None for an empty session)."""
        return self.items[self.index] if self.items else None

    def go(self, index: int) -> bool:
        """Move to ``index`` (clipped); True if the place changed."""
        if not self.items:
            return False
        new = max(0, min(int(index), len(self.items) - 1))
        changed, self.index = new != self.index, new
        return changed

    def step(self, delta: int) -> bool:
        """Move by ``delta`` (N: +1, P: -1); True if the place changed."""
        return self.go(self.index + int(delta))

    @property
    def at_newest(self) -> bool:
        """True when the last (newest) micrograph is shown."""
        return not self.items or self.index == len(self.items) - 1

    # -- curation -----------------------------------------------------------------------
    def mark(self, value: str | None, item: SessionItem | None = None) -> None:
        """Mark a micrograph (the current one by default) good, bad, or unmarked (None)."""
        item = item or self.current
        if item is None:
            return
        if value is None:
            self.marks.pop(item.path, None)
        elif value in (GOOD, BAD):
            self.marks[item.path] = value
        else:
            raise ValueError(f"a mark is {GOOD!r}, {BAD!r} or None, got {value!r}")

    def toggle(self) -> str:
        """Space: unmarked or bad -> good, good -> bad. Returns the new mark."""
        new = BAD if self.mark_of() == GOOD else GOOD
        self.mark(new)
        return new

    def mark_of(self, item: SessionItem | None = None) -> str | None:
        """The mark of a micrograph (the current one by default)."""
        item = item or self.current
        return None if item is None else self.marks.get(item.path)

    def counts(self) -> dict[str, int]:
        """``{"good": n, "bad": n, "unmarked": n}``."""
        good = sum(1 for i in self.items if self.marks.get(i.path) == GOOD)
        bad = sum(1 for i in self.items if self.marks.get(i.path) == BAD)
        return {GOOD: good, BAD: bad, "unmarked": len(self.items) - good - bad}

    def good_items(self) -> list[SessionItem]:
        """The micrographs marked good, in session order."""
        return [i for i in self.items if self.marks.get(i.path) == GOOD]

    # -- arrivals -----------------------------------------------------------------------
    def scan(self) -> list[SessionItem]:
        """Look for micrographs that arrived since the last scan (cheap: names and headers).

        Returns the new items, already appended. A STAR session never grows.
        """
        if self.pattern is None:
            return []
        return self.add([SessionItem(p) for p in list_micrographs(self.pattern, self._known)])

    def add(self, items: Sequence[SessionItem]) -> list[SessionItem]:
        """Append micrographs that arrived; moves to the newest when following.

        Follow mode moves only if the user was at the newest micrograph (or the
        session was empty): someone who stepped back to look at one stays there.
        """
        items = [i for i in items if str(i.path) not in self._known]
        if not items:
            return []
        follow = self.follow and self.at_newest
        self.items.extend(items)
        self._known.update(str(i.path) for i in items)
        if follow:
            self.index = len(self.items) - 1
        return items

    # -- what to compute ahead ------------------------------------------------------------
    def prefetch_plan(self, radius: int = 1) -> list[int]:
        """Indices to denoise ahead, nearest first, the next before the previous."""
        out: list[int] = []
        for d in range(1, int(radius) + 1):
            for k in (self.index + d, self.index - d):
                if 0 <= k < len(self.items):
                    out.append(k)
        return out

    # -- facts --------------------------------------------------------------------------
    def facts_line(self, pixel_size: float | None = None) -> str:
        """``name  3 / 120  0.67 A/px  defocus U 1.52 um  CTF fit 3.4 A  [good]``."""
        item = self.current
        if item is None:
            return f"{self.source}: no micrographs yet"
        parts = [item.name, f"{self.index + 1} / {len(self.items)}"]
        if pixel_size:
            parts.append(f"{pixel_size:.3g} A/px")
        parts += star_facts(item.star)
        mark = self.mark_of()
        if mark:
            parts.append(f"[{mark}]")
        return "   ".join(parts)

    def counts_line(self) -> str:
        """``good 12  bad 3  unmarked 40``."""
        c = self.counts()
        return f"good {c[GOOD]}   bad {c[BAD]}   unmarked {c['unmarked']}"


def star_facts(row: dict[str, str]) -> list[str]:
    """Defocus (um), CTF fit resolution and total motion (A) of a STAR row, as display strings."""
    out: list[str] = []
    for label, caption in STAR_FACTS.items():
        text = row.get(label)
        try:
            value = float(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if label.startswith("rlnDefocus"):
            out.append(f"{caption} {value / 1e4:.2f} um")
        else:
            out.append(f"{caption} {value:.1f} A")
    return out


def open_session(text: str | os.PathLike, project_dir: str | os.PathLike | None = None) -> Session:
    """Open a folder, a glob or a RELION micrograph STAR as a session (no pixels read).

    Raises
    ------
    InputError
        One line naming what was given and the problem (nothing there, no
        micrographs column, a malformed STAR).

    """
    spec = os.path.expanduser(str(text).strip())
    if not spec:
        raise InputError("session: give a folder, a glob (e.g. Micrographs/*.mrc) or a STAR file")
    path = Path(spec)
    if path.is_dir():
        pattern = str(path / FOLDER_PATTERN)
        return Session([SessionItem(p) for p in list_micrographs(pattern)], spec, pattern=pattern)
    if path.suffix.lower() == ".star" and path.is_file():
        from ..io.star_micrographs import read_micrograph_star

        star = read_micrograph_star(path, project_dir)
        rows = star.blocks[star.block].records()
        items = [
            SessionItem(mic, row=r, star=dict(rows[r])) for r, mic in enumerate(star.micrographs)
        ]
        if not items:
            raise InputError(f"{path}: the STAR file lists no micrographs")
        return Session(items, spec, star=star)
    if any(c in spec for c in "*?["):
        return Session([SessionItem(p) for p in list_micrographs(spec)], spec, pattern=spec)
    if path.is_file():
        raise InputError(
            f"{path}: a session is a folder, a glob or a STAR file; open one file with File > Open"
        )
    raise InputError(f"{path}: no such folder or STAR file")
