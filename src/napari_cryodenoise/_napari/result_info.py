"""The Denoise widget's info line: how a result layer was made (no Qt).

The line is short (file names only, so the dock never widens); its tooltip
holds the full provenance record: input path, every setting, version,
command line and where the layer was saved.
"""

from __future__ import annotations

from typing import Any

from ..provenance import mrc_labels, summary
from .results import is_result, source_facts

__all__ = ["provenance_text"]


def provenance_text(layer: Any, saved: str | None = None) -> tuple[str, str]:
    """``(info line, tooltip)`` for a result layer; empty strings for anything else.

    Parameters
    ----------
    layer : napari.layers.Image or None
        The layer to describe.
    saved : str, optional
        The file the layer was last saved to.

    """
    if layer is None or not is_result(layer):
        return "", ""
    facts = source_facts(layer)
    line = summary(facts)
    if saved:
        line = f"saved {saved.replace(chr(92), '/').rsplit('/', 1)[-1]} ({line})"
    tip = [f"{layer.name}:", *mrc_labels(facts)]
    command = facts.get("denoise", {}).get("command")
    if command:
        tip.append(f"command: {command}")
    if saved:
        tip.append(f"saved to {saved}")
    return line, "\n".join(tip)
