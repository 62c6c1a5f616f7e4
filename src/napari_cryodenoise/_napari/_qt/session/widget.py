"""The "Session browser" dock: step through a folder, glob or STAR of micrographs.

A thin container over one evented :class:`~.state.SessionState`:

- :mod:`.panels`: open (source, model, watch OUTDIR), navigate (slider, facts,
  follow), curate (good / bad, counts, Save good as STAR);
- :mod:`.display`: the raw | denoised layers and the live view of the current
  micrograph; :mod:`.prefetch`: denoise-ahead of its neighbours;
- :mod:`.keys`: N / P, Home / End, G / B, Space on the viewer while a session is open.

The session itself (list, place, marks, follow, rescans) is Qt-free:
:class:`~napari_cryodenoise._napari.session.Session`. A folder opened with
``viewer.open(folder, plugin="napari-cryodenoise")`` comes here through
:meth:`SessionWidget.adopt` (the reader's layer becomes the raw layer).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container
from qtpy.QtCore import QTimer

from ....errors import CryoDenoiseError
from ...compute import ModelCache
from ...session import Session, open_session
from ...session_save import save_good_star
from ..live import wait_for_workers
from ..workers import shutdown_quietly
from .display import SessionDisplay
from .keys import KeyBinder, session_keys
from .panels import CuratePanel, NavPanel, OpenPanel
from .state import SessionState

if TYPE_CHECKING:
    from napari.viewer import Viewer

#: Key in a layer's ``metadata["cryodenoise"]`` naming the session it is the first view of.
SESSION_KEY = "session"
#: How often follow mode looks for new micrographs (ms).
SCAN_MS = 2000


class SessionWidget(Container):
    """Dock widget that browses a micrograph session raw | denoised, with denoise-ahead.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer it is docked in (napari passes it by this name).

    """

    def __init__(self, napari_viewer: Viewer) -> None:
        super().__init__(labels=True)
        viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.viewer = viewer
        self.state = state = SessionState()
        self.models = ModelCache()
        self.display = SessionDisplay(viewer, self.models, self._report)
        self.opener = OpenPanel(state, self)
        self.nav = NavPanel(state, self)
        self.curate = CuratePanel(state, self)
        self.keys = KeyBinder(viewer, session_keys(self))
        self.extend([*self.opener.widgets, *self.nav.widgets, *self.curate.widgets])
        self.display.model_name = self.opener.model.value or "unet"
        self.scan_timer = QTimer()
        self.scan_timer.setInterval(SCAN_MS)
        self.scan_timer.timeout.connect(self.scan)
        self.native.destroyed.connect(lambda *_: shutdown_quietly(self))

    # -- opening ------------------------------------------------------------------------------
    @property
    def session(self) -> Session | None:
        """The open session."""
        return self.state.session

    def open(self, source: str | Path, *, index: int = 0) -> Session | None:
        """Open a folder, glob or STAR as the session and show micrograph ``index``."""
        try:
            session = open_session(source)
        except CryoDenoiseError as err:
            self._report(str(err))
            return None
        session.go(index)
        self.opener.source.value = str(source)
        folder = Path(str(source)).expanduser()
        if not self.opener.outdir.value and (folder / "denoised").is_dir():
            self.opener.outdir.value = str(folder / "denoised")
        session.follow = bool(self.nav.follow.value)
        self.state.session = session
        self.keys.bind()
        self.scan_timer.start()
        self._changed(show=True)
        return session

    def adopt(self, layer: Any) -> Session | None:
        """Take a layer the reader opened as a session's first view (its raw layer)."""
        facts = (getattr(layer, "metadata", None) or {}).get("cryodenoise") or {}
        source = facts.get(SESSION_KEY)
        if not source or layer not in self.viewer.layers:
            return None
        self.display.raw_layer = layer
        return self.open(source, index=int(facts.get("session_index", 0)))

    def adopt_later(self, layer: Any) -> None:
        """:meth:`adopt` once napari has finished inserting ``layer`` (from the reader's hook)."""
        QTimer.singleShot(0, lambda: self.adopt(layer))

    def add_model(self, name: str, model: Any) -> None:
        """Register a model built in memory under ``name`` and browse with it."""
        self.models.put(name, model)
        self.opener.add_choice(name)

    def use_model(self, name: str) -> None:
        """Denoise with model ``name`` (a running session is shown again)."""
        if name and name != self.display.model_name:
            self.display.model_name = name
            if self.session is not None:
                self._changed(show=True)

    def use_outdir(self, path: str) -> None:
        """Show micrographs denoised in ``path`` (watch's OUTDIR) from their files."""
        self.display.outdir = path or None
        if self.session is not None:
            self._changed(show=True)

    def set_follow(self, value: bool) -> None:
        """Follow mode on or off."""
        if self.session is not None:
            self.session.follow = value

    # -- stepping and marks -----------------------------------------------------------------
    def go(self, index: int) -> None:
        """Show micrograph ``index``."""
        if self.session is not None and self.session.go(index):
            self._changed(show=True)

    def step(self, delta: int) -> None:
        """Show the next (+1) or previous (-1) micrograph."""
        if self.session is not None and self.session.step(delta):
            self._changed(show=True)

    def first(self) -> None:
        """Show the first micrograph."""
        self.go(0)

    def last(self) -> None:
        """Show the newest micrograph (and follow new ones)."""
        if self.session is not None:
            self.go(len(self.session) - 1)

    def mark(self, value: str | None) -> None:
        """Mark the micrograph shown good or bad."""
        if self.session is not None and self.session.current is not None:
            self.session.mark(value)
            self._marks_changed()

    def toggle_mark(self) -> None:
        """Space: good <-> bad."""
        if self.session is not None and self.session.current is not None:
            self.session.toggle()
            self._marks_changed()

    def save(self, path: str | Path) -> Path | None:
        """Write the good micrographs as a STAR (all input columns kept from a STAR session)."""
        session = self.session
        if session is None:
            self._report("open a session first")
            return None
        if not str(path):
            path = Path(session.source.split("*")[0]).expanduser()
            path = (path.parent if path.suffix else path) / "good_micrographs.star"
            self.curate.save_path.value = str(path)
        try:
            out, n = save_good_star(session, path)
        except CryoDenoiseError as err:
            self._report(str(err))
            return None
        self._report(f"saved {n} good micrographs to {out}")
        return out

    # -- follow mode --------------------------------------------------------------------------
    def scan(self) -> list[Any]:
        """Look for new micrographs; follow mode shows the newest (timer-driven, every 2 s)."""
        session = self.session
        if session is None:
            return []
        before = session.index if len(session) else -1
        new = session.scan()
        if new:
            self._changed(show=session.index != before)
        return new

    # -- internals ----------------------------------------------------------------------------
    def _changed(self, *, show: bool) -> None:
        session = self.session
        if session is None:
            return
        self.state.count = len(session)
        self.state.index = session.index if len(session) else -1
        if show:
            try:
                self.display.show(session)
            except CryoDenoiseError as err:
                self._report(str(err))
        self._update_facts()

    def _marks_changed(self) -> None:
        self.state.marks += 1
        self._update_facts()

    def _update_facts(self) -> None:
        session = self.session
        if session is None:
            return
        item = session.current
        cached = self.display.displays.get(item.key) if item is not None else None
        self.state.facts = session.facts_line(cached.pixel_size if cached else None)

    def _report(self, text: str) -> None:
        self.state.status = text

    @property
    def running_workers(self) -> int:
        """Workers still running (live, prefetch, model load)."""
        return self.display.running_workers

    def shutdown(self, wait_ms: int = 10000) -> None:
        """Stop timers and workers (the viewer or the dock is closing); keys are given back."""
        self.scan_timer.stop()
        self.keys.unbind()
        self.display.close()
        if self.running_workers:
            wait_for_workers(wait_ms)
