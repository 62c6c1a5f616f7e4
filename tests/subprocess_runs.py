"""Running the command line and napari scripts as users do: in a fresh Python process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import napari_cryodenoise

#: The package's source folder, put first on the child's PYTHONPATH.
SRC = str(Path(napari_cryodenoise.__file__).resolve().parents[1])


def cryodenoise(
    *args: str, cwd: str | Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m napari_cryodenoise ARGS`` with this checkout's source, run in ``cwd``
    (e.g. the RELION project folder); output captured."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "napari_cryodenoise", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def error_line(proc: subprocess.CompletedProcess, *words: str, code: int | None = None) -> str:
    """The one stderr line of a refused run; checks no traceback and the words in it.

    ``code``: the exit status expected (default: any but 0).
    """
    if code is None:
        assert proc.returncode != 0, proc.stdout + proc.stderr
    else:
        assert proc.returncode == code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def assert_script_closes_cleanly(script: str, folder: Path, name: str = "close.py") -> None:
    """Run a napari script that closes the viewer mid-work: it prints "closed", no errors."""
    path = folder / name
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "closed" in proc.stdout
    for bad in ("RuntimeError", "excepthook", "Traceback"):
        assert bad not in proc.stderr, proc.stderr[-3000:]


def read_until(proc: subprocess.Popen, prefix: str) -> list[str]:
    """Read ``proc.stderr`` up to and including the first line starting with ``prefix``.

    Fails the test with what was read when the process ends first.
    """
    import pytest

    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    pytest.fail("".join(seen))
