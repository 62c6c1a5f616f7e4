"""Remember a dock widget's form per user: a small JSON file in the user config folder.

The folder is ``platformdirs.user_config_dir("napari-cryodenoise")`` (e.g.
``~/.config/napari-cryodenoise`` on Linux), or ``$CRYODENOISE_CONFIG_DIR``
when set (tests point it at a temporary folder). Values are written when the
user changes a field and restored when the widget opens; a value that no
longer fits (a model that is gone, a device that is not here) is skipped.
Nothing here raises: a broken or unwritable file only loses the memory.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from magicgui.widgets import FileEdit
from magicgui.widgets.bases import CategoricalWidget

from ...io.atomic import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["ENV_DIR", "FormMemory", "settings_dir"]

#: Environment variable that overrides the folder.
ENV_DIR = "CRYODENOISE_CONFIG_DIR"


def settings_dir() -> Path:
    """The per-user folder for remembered settings."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("napari-cryodenoise", appauthor=False))


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return None  # layers and other objects are not remembered


class FormMemory:
    """Remember the values of some magicgui value widgets under a name.

    Parameters
    ----------
    name : str
        File stem (``<name>.json``).
    fields : mapping of str to ValueWidget
        The widgets to remember, by key; a ComboBox only takes back a value
        that is among its choices.

    """

    def __init__(self, name: str, fields: Mapping[str, Any]) -> None:
        self.name = name
        self.fields = dict(fields)
        self.defaults = {key: w.value for key, w in self.fields.items()}
        self._muted = False

    @property
    def path(self) -> Path:
        """The JSON file."""
        return settings_dir() / f"{self.name}.json"

    def values(self) -> dict[str, Any]:
        """The current values (JSON-friendly)."""
        return {key: _plain(w.value) for key, w in self.fields.items()}

    def load(self) -> dict[str, Any]:
        """What was remembered (empty when nothing or unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def restore(self) -> list[str]:
        """Put the remembered values into the form; returns the keys restored."""
        done = []
        self._muted = True
        try:
            for key, value in self.load().items():
                widget = self.fields.get(key)
                if widget is None or value is None or not self._fits(widget, value):
                    continue
                try:
                    widget.value = value
                    done.append(key)
                except (ValueError, TypeError) as err:
                    log.debug("not restoring %s=%r: %s", key, value, err)
        finally:
            self._muted = False
        return done

    @staticmethod
    def _fits(widget: Any, value: Any) -> bool:
        if isinstance(widget, CategoricalWidget):
            return value in list(widget.choices)
        if isinstance(widget, FileEdit):
            return Path(str(value)).exists()
        return True

    def save(self, *_: Any) -> None:
        """Write the current values (connect this to the fields' ``changed``)."""
        if self._muted:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(self.values(), indent=1, sort_keys=True))
        except OSError as err:
            log.debug("cannot remember settings in %s: %s", self.path, err)

    def connect(self) -> None:
        """Save whenever a field changes."""
        for widget in self.fields.values():
            widget.changed.connect(self.save)

    def reset(self) -> None:
        """Back to the defaults (the values at construction); forget the file."""
        self._muted = True
        try:
            for key, widget in self.fields.items():
                try:
                    widget.value = self.defaults[key]
                except (ValueError, TypeError) as err:
                    log.debug("cannot reset %s: %s", key, err)
        finally:
            self._muted = False
        try:
            self.path.unlink()
        except OSError:
            pass
