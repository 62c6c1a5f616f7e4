"""Provenance of a denoised image: one record, packed into MRC header labels (no Qt).

A result layer keeps the full record in ``layer.metadata["cryodenoise"]``
(input path, model, every setting, package version, command line). An MRC
header has only ten 80-character labels; mrcfile writes "Created by
mrcfile.py" first and the writer adds "written by napari-cryodenoise" last,
so :func:`mrc_labels` packs the record into at most eight ``key=value``
lines, by concern::

    napari-cryodenoise 0.1.0 denoise 2025-05-01T12:00:00Z
    model=unet arch=unet
    bin=4 lowpass=off gaussian=0 patch=auto device=auto(cpu) precision=fp32
    mode=whole stacked=0
    input=/data/run1/micrographs/FoilHole_1234_Data_5678_fractions.mrc

A value too long for one line (a long path) continues on the next lines as
``input+=...``; values are written without spaces. The self-ensemble, when on, adds
``ensemble=8`` to the settings (8 rotations/mirrors averaged); files written by the
command line get it as a label of its own (:func:`option_labels`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["LABEL_WIDTH", "MAX_LABELS", "mrc_labels", "option_labels", "pack_labels", "summary"]

#: Characters per MRC label.
LABEL_WIDTH = 80
#: Labels left for the record (mrcfile and the writer add one each).
MAX_LABELS = 8


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace(" ", "_")


def pack_labels(
    groups: Iterable[Sequence[tuple[str, Any]]],
    width: int = LABEL_WIDTH,
    max_lines: int = MAX_LABELS,
) -> list[str]:
    """Pack ``key=value`` items into lines of at most ``width`` characters.

    Parameters
    ----------
    groups : iterable of sequences of (key, value)
        Each group (one concern) starts a new line; its items share lines.
    width : int
        Line length.
    max_lines : int
        Lines kept (later ones are dropped).

    Returns
    -------
    list of str

    """
    lines: list[str] = []
    for group in groups:
        line = ""
        for key, value in group:
            item = f"{key}={_text(value)}"
            if len(item) > width:  # alone, split over continuation lines
                if line:
                    lines.append(line)
                head, rest = item[:width], item[width:]
                lines.append(head)
                cont = f"{key}+="
                while rest:
                    step = width - len(cont)
                    lines.append(cont + rest[:step])
                    rest = rest[step:]
                line = ""
            elif not line:
                line = item
            elif len(line) + 1 + len(item) <= width:
                line = f"{line} {item}"
            else:
                lines.append(line)
                line = item
        if line:
            lines.append(line)
    return lines[:max_lines]


def _mode(text: Any) -> str:
    text = str(text or "")
    return "live" if "live" in text else ("whole" if "whole" in text else _text(text))


def mrc_labels(facts: Mapping[str, Any]) -> list[str]:
    """Header labels for a result's facts (``layer.metadata["cryodenoise"]``).

    Returns an empty list for layers that are not denoising results.
    """
    run = facts.get("denoise")
    if not isinstance(run, Mapping):
        return []
    settings = facts.get("settings", {}) or {}
    device = settings.get("device", "auto")
    used = run.get("device_used")
    if used and str(used) != str(device):
        device = f"{device}({used})"
    head = f"{run.get('package', 'napari-cryodenoise')} {run.get('version', '?')} denoise"
    if run.get("created"):
        head += f" {run['created']}"
    groups: list[list[tuple[str, Any]]] = [
        [("model", settings.get("model", run.get("model"))), ("arch", run.get("model_arch"))],
        [
            ("bin", settings.get("bin_factor", 1)),
            ("lowpass", settings.get("lowpass") or "off"),
            ("gaussian", settings.get("gaussian", 0)),
            ("patch", settings.get("patch_size") or "auto"),
            ("device", device),
            ("precision", settings.get("precision", "fp32")),
            *([("ensemble", 8)] if settings.get("ensemble") else []),
            ("mode", _mode(run.get("mode", settings.get("mode")))),
            ("stacked", bool(run.get("stacked"))),
        ],
        [("input", facts.get("source_path") or facts.get("source_layer"))],
    ]
    return [head[:LABEL_WIDTH], *pack_labels(groups, max_lines=MAX_LABELS - 1)]


def option_labels(options: Any) -> list[str]:
    """MRC header labels for the options of a command-line output that change its pixels.

    Only the self-ensemble for now (``ensemble=8 (rotations/mirrors averaged)``); an
    empty list when it is off, so outputs made without it keep their labels.
    """
    if getattr(options, "ensemble", False):
        return ["ensemble=8 (self-ensemble: 4 rotations x mirror, averaged)"]
    return []


def summary(facts: Mapping[str, Any]) -> str:
    """One short line for the GUI: ``unet, bin 4, low-pass off, ... <- input.mrc``."""
    run = facts.get("denoise")
    if not isinstance(run, Mapping):
        return ""
    s = facts.get("settings", {}) or {}
    model = str(s.get("model", run.get("model", "?")))
    model = model.replace("\\", "/").rsplit("/", 1)[-1]
    device = str(run.get("device_used") or s.get("device", "auto"))
    src = str(facts.get("source_path") or facts.get("source_layer") or "?")
    src = src.replace("\\", "/").rsplit("/", 1)[-1]
    parts = [
        model,
        f"bin {s.get('bin_factor', 1)}",
        f"low-pass {s.get('lowpass') or 'off'}",
        f"gaussian {s.get('gaussian', 0):g}",
        f"patch {s.get('patch_size') or 'auto'}",
        f"{device} {s.get('precision', 'fp32')}",
        *(["self-ensemble x8"] if s.get("ensemble") else []),
        _mode(run.get("mode", s.get("mode"))),
        f"v{run.get('version', '?')}",
    ]
    return f"{src} -> {', '.join(parts)}"
