"""The Session browser's panels: open, navigate, curate. Each observes :class:`SessionState`.

Panels own their widgets and call the dock's actions (``open``, ``go``,
``mark``, ``save``); what changed comes back through the state's events.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Label, LineEdit, PushButton, Slider

from ...session import GOOD
from ..progress_line import fit_label
from ..workers import model_choices
from .state import SessionState


def _models() -> list[Any]:
    try:
        return list(model_choices())
    except Exception:  # noqa: BLE001 - the zoo listing is a convenience
        return [("unet", "unet")]


class OpenPanel:
    """Where the session comes from: a folder, glob or STAR; the model; watch's OUTDIR."""

    def __init__(self, state: SessionState, actions: Any) -> None:
        self.state = state
        self.source = LineEdit(label="session", tooltip="a folder, a glob or a micrograph STAR")
        self.open_button = PushButton(text="Open session")
        #: models registered in memory (scripts, tests) besides the zoo's
        self.extra: list[str] = []
        self.model = ComboBox(label="model", choices=self._choices)
        if "unet" in self.model.choices:
            self.model.value = "unet"
        self.outdir = LineEdit(
            label="watch outputs",
            tooltip="OUTDIR of `cryodenoise watch`: micrographs denoised there are shown "
            "from the file instead of being recomputed (default: <folder>/denoised)",
        )
        self.open_button.changed.connect(lambda *_: actions.open(self.source.value))
        self.source.native.returnPressed.connect(lambda: actions.open(self.source.value))
        self.model.changed.connect(lambda value: actions.use_model(value))
        self.outdir.changed.connect(lambda value: actions.use_outdir(value))

    def _choices(self, _widget: Any = None) -> list[Any]:
        return _models() + [(name, name) for name in self.extra]

    def add_choice(self, name: str) -> None:
        """Offer (and select) a model registered in memory under ``name``."""
        if name not in self.extra:
            self.extra.append(name)
        self.model.reset_choices()
        self.model.value = name

    @property
    def widgets(self) -> list[Any]:
        """The panel's widgets, in dock order."""
        return [self.source, self.open_button, self.model, self.outdir]


class NavPanel:
    """The slider, the facts line and follow mode."""

    def __init__(self, state: SessionState, actions: Any) -> None:
        self.state = state
        self.slider = Slider(label="micrograph", min=1, max=1, value=1, tracking=False)
        self.slider.enabled = False
        self.facts = Label(value="open a folder, glob or STAR\nN/P step, Home/End, G/B/Space mark")
        self.follow = CheckBox(text="follow new micrographs", value=True)
        self.status = Label(value="")
        fit_label(self.status)
        self.slider.changed.connect(lambda value: actions.go(int(value) - 1))
        self.follow.changed.connect(lambda value: actions.set_follow(bool(value)))
        state.events.index.connect(self._on_index)
        state.events.count.connect(self._on_count)
        state.events.facts.connect(self._on_facts)
        state.events.status.connect(lambda text: setattr(self.status, "value", text))

    def _on_facts(self, text: str) -> None:
        """Two facts a line (the dock is narrow; a wrapped label would be clipped)."""
        parts = text.split("   ")
        self.facts.value = "\n".join("   ".join(parts[i : i + 2]) for i in range(0, len(parts), 2))

    def _on_count(self, count: int) -> None:
        self.slider.enabled = count > 1
        with self.slider.changed.blocked():
            self.slider.max = max(1, count)

    def _on_index(self, index: int) -> None:
        if index >= 0 and self.slider.value != index + 1:
            with self.slider.changed.blocked():
                self.slider.value = index + 1

    @property
    def widgets(self) -> list[Any]:
        """The panel's widgets, in dock order."""
        return [self.slider, self.facts, self.follow, self.status]


class CuratePanel:
    """Good / bad marks, their counts, and "Save good as STAR"."""

    def __init__(self, state: SessionState, actions: Any) -> None:
        self.state = state
        self.good_button = PushButton(text="good (G)")
        self.bad_button = PushButton(text="bad (B)")
        self.counts = Label(value="good 0   bad 0   unmarked 0")
        self.save_path = LineEdit(label="save as", value="")
        self.save_button = PushButton(text="Save good as STAR")
        self.good_button.changed.connect(lambda *_: actions.mark(GOOD))
        self.bad_button.changed.connect(lambda *_: actions.mark("bad"))
        self.save_button.changed.connect(lambda *_: actions.save(self.save_path.value))
        state.events.marks.connect(self._update)
        state.events.count.connect(self._update)

    def _update(self, *_: Any) -> None:
        session = self.state.session
        if session is not None:
            self.counts.value = session.counts_line()

    @property
    def widgets(self) -> list[Any]:
        """The panel's widgets, in dock order."""
        return [self.good_button, self.bad_button, self.counts, self.save_path, self.save_button]
