"""What a watch has done, kept in the output folder so that a restart does only the rest.

The record is a small JSON file, ``OUTDIR/.cryodenoise-watch.json``, rewritten atomically
after every micrograph: each output (in the order it was written) with its input and
the model that made it and the input's size and modification time then (a replaced
input is denoised again), the inputs that failed (with their size and modification time,
so a file is reported once and retried only if it changes), the options the outputs
were made with, and the model trained on the fly once training has finished.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .scanner import signature

__all__ = ["STATE_NAME", "WatchState", "fingerprint"]

#: The record's file name in the output folder.
STATE_NAME = ".cryodenoise-watch.json"
_VERSION = 1


def fingerprint(settings: Any, models: tuple[str, ...]) -> str:
    """A text that changes when anything deciding the pixels changes (options, models)."""
    from dataclasses import asdict, is_dataclass

    values = asdict(settings) if is_dataclass(settings) else dict(vars(settings))
    for key in ("overwrite", "skip_existing", "threads", "batch_size", "device"):
        values.pop(key, None)
    return json.dumps({"settings": values, "models": list(models)}, sort_keys=True, default=str)


@dataclass
class WatchState:
    """The record of one output folder's watch.

    Attributes
    ----------
    path : Path
        The JSON file.
    options : str
        :func:`fingerprint` of the options the outputs were made with.
    outputs : dict
        Output path -> ``{"input": path, "model": label, "input_sig": [size, mtime_ns]}``,
        in the order written.
    failed : dict
        Input path -> ``[size, mtime_ns, reason]``.
    trained : str or None
        The model trained on the fly, once its training has finished.

    """

    path: Path
    options: str = ""
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, list[Any]] = field(default_factory=dict)
    trained: str | None = None

    @classmethod
    def load(cls, outdir: str | os.PathLike) -> WatchState:
        """The record of ``outdir`` (an empty one if there is none or it is unreadable)."""
        path = Path(outdir) / STATE_NAME
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(path)
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            return cls(path)
        return cls(
            path,
            options=str(data.get("options", "")),
            outputs=dict(data.get("outputs", {})),
            failed=dict(data.get("failed", {})),
            trained=data.get("trained"),
        )

    def save(self) -> None:
        """Rewrite the record atomically."""
        from ..io.atomic import atomic_write_text

        data = {
            "version": _VERSION,
            "options": self.options,
            "trained": self.trained,
            "outputs": self.outputs,
            "failed": self.failed,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(data, indent=1))

    def record(self, inp: Path, out: Path, model: str, sig: tuple[int, int] | None = None) -> None:
        """Note that ``out`` was written from ``inp`` with ``model`` (moved to the end).

        ``sig``: the input's ``(size, mtime_ns)`` when it was read, if known.
        """
        self.outputs.pop(str(out), None)
        entry: dict[str, Any] = {"input": str(inp), "model": model}
        if sig is not None:
            entry["input_sig"] = [int(sig[0]), int(sig[1])]
        self.outputs[str(out)] = entry
        self.failed.pop(str(inp), None)

    def input_changed(self, out: Path) -> bool:
        """Whether the input of ``out`` is not the file it was made from (replaced since)."""
        entry = self.outputs.get(str(out)) or {}
        sig = entry.get("input_sig")
        if not sig:
            return False
        now = signature(Path(entry["input"]))
        return now is not None and now != tuple(sig)

    def model_of(self, out: Path) -> str | None:
        """The model label that made ``out`` (None if this watch did not write it)."""
        entry = self.outputs.get(str(out))
        return entry.get("model") if entry else None

    def fail(self, inp: Path, reason: str) -> None:
        """Note that ``inp`` failed, as it is now."""
        sig = signature(inp) or (-1, -1)
        self.failed[str(inp)] = [*sig, reason]

    def failed_as_is(self, inp: Path) -> str | None:
        """The reason ``inp`` failed, if it has not changed since (else None)."""
        entry = self.failed.get(str(inp))
        if not entry:
            return None
        try:
            st = os.stat(inp)
        except OSError:
            return None
        if [int(st.st_size), int(st.st_mtime_ns)] == list(entry[:2]):
            return str(entry[2])
        return None

    def pairs(self) -> list[tuple[Path, Path]]:
        """(input, output) of every output written, in the order written."""
        return [(Path(v["input"]), Path(k)) for k, v in self.outputs.items()]
