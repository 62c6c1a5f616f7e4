"""Malformed input, the way users meet it: one clear line, nothing lost, nothing left.

Every case is an input class a user can hand to the plugin (damaged MRC/TIFF/STAR files,
odd paths, bad model files, options out of range). The command line runs as a subprocess
with real arguments, as users run it; the napari reader is asked in-process and must
answer (claim and raise, or decline) promptly. For each case:

- no traceback reaches the user; a failing input gets exactly one line naming the file
  and the problem, and the command exits non-zero;
- the input's bytes are unchanged (sha256) and no temporary or partial file is left;
- inputs that are odd but valid (big-endian, NaN voxel size, colour TIFF, unicode names,
  compressed maps) are denoised.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

PROMPT_S = 5.0


# --------------------------------------------------------------------------- builders


def _mrc(data: np.ndarray, voxel: float = 2.0, *, swap: bool = False) -> bytes:
    """The bytes of an MRC file holding ``data`` (big-endian with ``swap``)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(suffix=".mrc")
    os.close(fd)
    try:
        with mrcfile.new(tmp, overwrite=True) as m:
            m.set_data(data)
            m.voxel_size = voxel
        raw = Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)
    return _byteswap_mrc(raw, data) if swap else raw


def _byteswap_mrc(raw: bytes, data: np.ndarray) -> bytes:
    """The same file written big-endian (header words and data)."""
    head = bytearray(raw[:1024])
    words = np.frombuffer(bytes(head[:208]), "<i4").copy()
    floats = np.frombuffer(bytes(head[:208]), "<f4")
    out = bytearray(head)
    # integer words 0-9 and 23 (nsymbt) are ints, the rest of the first 52 words floats
    ints = set(range(10)) | {23, 24, 25, 26}
    for i in range(52):
        value = words[i] if i in ints else floats[i]
        out[4 * i : 4 * i + 4] = np.array(value, ">i4" if i in ints else ">f4").tobytes()
    out[212:216] = b"\x11\x11\x00\x00"  # machine stamp: big-endian
    body = np.ascontiguousarray(data, data.dtype.newbyteorder(">")).tobytes()
    return bytes(out) + body


def _good() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(10, 2, (96, 80)).astype(np.float32)


def _words(offset: int, fmt: str, *values) -> Callable[[], bytes]:
    import struct

    def make() -> bytes:
        raw = bytearray(_mrc(_good()))
        struct.pack_into(fmt, raw, offset, *values)
        return bytes(raw)

    return make


def _tiff(data, **kw) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, **kw)
    return buf.getvalue()


def _png() -> bytes:
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    ihdr = (8).to_bytes(4, "big") + (8).to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    rows = b"".join(b"\x00" + bytes(8) for _ in range(8))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _constant(value: float) -> Callable[[], bytes]:
    return lambda: _mrc(np.full((96, 80), value, np.float32))


def _nan_at(value: float) -> Callable[[], bytes]:
    def make() -> bytes:
        data = _good()
        data[5, 7] = value
        return _mrc(data)

    return make


def _stripes() -> bytes:
    data = np.zeros((96, 80), np.float32)
    data[:, ::2] = 1000.0
    return _mrc(data)


RELION_HEAD = (
    "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\n"
    "_rlnMicrographPixelSize #3\nopticsGroup1 1 2.000000\n\n\n# version 30001\n\n"
    "data_micrographs\n\nloop_\n_rlnMicrographName #1\n_rlnOpticsGroup #2\n"
)


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One input class: the file(s) to write, what the user runs, and what must happen."""

    name: str
    file: str  # the input's file name (in the work folder)
    content: bytes | Callable[[], bytes] | None  # None: made by `make`
    expect: str  # a regex of the problem, or "OK" when the input must be denoised
    make: Callable[[Path], None] | None = None  # special files (FIFO, links, folders)
    alone: bool = False  # stops the whole run before any work: run it by itself
    napari: bool = True  # the napari reader is asked too


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _folder(path: Path) -> None:
    path.mkdir()


def _loop(path: Path) -> None:
    path.symlink_to(path.name)


def _dangling(path: Path) -> None:
    path.symlink_to("nowhere.mrc")


def _device(path: Path) -> None:
    path.symlink_to("/dev/null")


FILE_CASES: list[Case] = [
    # MRC
    Case("empty mrc", "empty.mrc", b"", "empty"),
    Case("100-byte mrc", "short.mrc", b"\x01" * 100, "too short"),
    Case("header only", "head.mrc", lambda: _mrc(_good())[:1024], "truncated"),
    Case("truncated data", "trunc.mrc", lambda: _mrc(_good())[:-100], "truncated"),
    Case("bad magic XXXX", "magic.mrc", _words(208, "4s", b"XXXX"), "map identifier"),
    Case("mode 3", "mode3.mrc", _words(12, "<i", 3), "mode 3"),
    Case("mode 4", "mode4.mrc", _words(12, "<i", 4), "mode 4"),
    Case("mode 99", "mode99.mrc", _words(12, "<i", 99), "mode 99"),
    Case("mode 101", "mode101.mrc", _words(12, "<i", 101), "mode 101"),
    Case("nx 0", "nx0.mrc", _words(0, "<i", 0), "dimensions"),
    Case("nx negative", "nxneg.mrc", _words(0, "<i", -16), "dimensions"),
    Case("sizes overflow int64", "huge.mrc", _words(0, "<3i", 2**21, 2**21, 2**21), "header"),
    Case("huge extended header", "ext.mrc", _words(92, "<i", 2**31 - 1), "extended header"),
    Case("NaN pixels", "nan.mrc", _nan_at(float("nan")), "NaN"),
    Case("Inf pixels", "inf.mrc", _nan_at(float("inf")), "(Inf|infinite|NaN)"),
    Case("constant image", "const.mrc", _constant(7.0), "OK"),
    Case("1x1 image", "one.mrc", lambda: _mrc(np.ones((1, 1), np.float32)), "OK"),
    Case("stripes", "stripes.mrc", _stripes, "OK"),
    Case("big-endian", "big.mrc", lambda: _mrc(_good(), swap=True), "OK"),
    Case("zero voxel size", "vox0.mrc", lambda: _mrc(_good(), voxel=0.0), "OK"),
    Case("negative voxel size", "voxneg.mrc", _words(40, "<3f", -5.0, -5.0, -5.0), "OK"),
    Case("NaN voxel size", "voxnan.mrc", _words(40, "<3f", *[float("nan")] * 3), "OK"),
    Case("random bytes", "random.mrc", np.random.default_rng(7).bytes(4096), "MRC"),
    Case("TIFF renamed .mrc", "tiff.mrc", lambda: _tiff(_good()), "TIFF"),
    Case("PNG renamed .mrc", "png.mrc", _png, "PNG"),
    Case("gzip under .mrc", "gz.mrc", lambda: gzip.compress(_mrc(_good())), "gzip"),
    Case("compressed map", "emd_1.map.gz", lambda: gzip.compress(_mrc(_good())), "OK"),
    Case("bzip2 map", "emd_2.mrc.bz2", lambda: bz2.compress(_mrc(_good())), "OK"),
    Case("truncated .map.gz", "cut.map.gz", lambda: gzip.compress(_mrc(_good()))[:-300], "gzip"),
    # TIFF
    Case("empty tif", "t_empty.tif", b"", "empty"),
    Case("truncated tif", "t_cut.tif", lambda: _tiff(_good())[:4000], "truncated"),
    Case("RGB tif", "t_rgb.tif", lambda: _tiff(np.zeros((64, 64, 3), np.uint8)), "OK"),
    Case(
        "4D tif",
        "fourd.tif",
        lambda: _tiff(np.zeros((2, 3, 8, 8), np.uint8), imagej=True, metadata={"axes": "TZYX"}),
        "4D",
    ),
    Case("complex tif", "t_complex.tif", lambda: _tiff(np.ones((8, 8), np.complex64)), "complex"),
    Case("PNG renamed .tif", "t_png.tif", _png, "PNG"),
    Case("MRC renamed .tif", "t_mrc.tif", lambda: _mrc(_good()), "MRC"),
    Case("1-bit tif", "t_bits.tif", lambda: _tiff(np.ones((8, 8), bool)), "1-bit"),
    # names
    Case("unicode name", "mïcrograph_α β.mrc", lambda: _mrc(_good()), "OK"),
    # special paths
    Case("FIFO named .mrc", "pipe.mrc", None, "(not a regular file|FIFO)", make=_fifo),
    Case("folder named .mrc", "dir.mrc", None, "(folder|no input)", make=_folder, alone=True),
    Case("symlink loop", "loop.mrc", None, "(loop|symlink)", make=_loop, alone=True),
    Case(
        "dangling symlink", "gone.mrc", None, "(no such file|dangling|does not exist)", _dangling
    ),
    Case("device named .mrc", "dev.mrc", None, "(not a regular file|device)", make=_device),
]


# --------------------------------------------------------------------------- helpers


def _sha(path: Path) -> str | None:
    try:
        if path.is_file() and not path.is_fifo():
            return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
    return None


def _write_case(case: Case, folder: Path) -> Path:
    path = folder / case.file
    if case.make is not None:
        case.make(path)
    else:
        content = case.content() if callable(case.content) else case.content
        path.write_bytes(content)
    return path


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NAPARI_CRYODENOISE_OFFLINE": "1"}
    env.pop("CRYODENOISE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "napari_cryodenoise", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


def _leftovers(folder: Path) -> list[str]:
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if ".partial" in p.name or p.name.startswith(".outstar")
    )


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ": error:" in ln or "internal error" in ln]


def _ask_napari(path: Path) -> None:
    """The napari reader answers promptly: declines, or claims and reads/raises one line."""
    from napari_cryodenoise._napari.reader import napari_get_reader

    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            reader = napari_get_reader(str(path))
            outcome["claimed"] = reader is not None
            if reader is not None:
                reader(str(path))
                outcome["read"] = True
        except Exception as err:  # noqa: BLE001 - what napari would show
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PROMPT_S)
    if thread.is_alive() and path.is_fifo():
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # unblock, then fail
    assert not thread.is_alive(), f"napari's reader hangs on {path.name}"
    err = outcome.get("error")
    if err is not None:
        msg = str(err)
        assert "\n" not in msg.strip() and path.name in msg, msg


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A tiny 2D model (affine, random weights) in the native format, offline."""
    from napari_cryodenoise.models import build_model, save_model

    return save_model(build_model("affine"), tmp_path_factory.mktemp("model") / "affine.pt")


# --------------------------------------------------------------------------- file cases


def test_there_are_at_least_50_input_classes():
    assert len(FILE_CASES) + len(STAR_CASES) + len(MODEL_CASES) + len(OPTION_CASES) >= 50


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory, model_file):
    """Every file case that does not stop the run, denoised in one CLI call."""
    work = tmp_path_factory.mktemp("batch")
    inputs = work / "in"
    inputs.mkdir()
    cases = [c for c in FILE_CASES if not c.alone]
    paths = {c.name: _write_case(c, inputs) for c in cases}
    before = {name: _sha(p) for name, p in paths.items()}
    names = [p.name for p in paths.values()]
    proc = _cli("denoise", *names, "-o", work / "out", "-m", model_file, "-d", "cpu", cwd=inputs)
    return work, paths, before, proc


@pytest.mark.parametrize("case", [c for c in FILE_CASES if not c.alone], ids=lambda c: c.name)
def test_file_case(case, batch_run):
    work, paths, before, proc = batch_run
    _no_traceback(proc)
    path = paths[case.name]
    assert _sha(path) == before[case.name], f"{case.file} was changed"
    assert _leftovers(work) == []
    named = re.compile(rf"(^|[\s/(]){re.escape(case.file)}($|[\s:)])")
    mine = [ln for ln in _error_lines(proc.stderr) if named.search(ln)]
    out = work / "out"
    if case.expect == "OK":
        assert mine == [], mine
        stem = case.file.split(".")[0]
        assert any(p.name.startswith(stem) for p in out.iterdir()), proc.stderr
    else:
        assert len(mine) == 1, f"{case.file}: {proc.stderr}"
        assert re.search(case.expect, mine[0], re.I), mine[0]
        assert proc.returncode != 0
    if case.napari:
        _ask_napari(path)


@pytest.mark.parametrize("case", [c for c in FILE_CASES if c.alone], ids=lambda c: c.name)
def test_path_case_alone(case, tmp_path, model_file):
    path = _write_case(case, tmp_path)
    proc = _cli("denoise", path.name, "-o", tmp_path / "out", "-m", model_file, cwd=tmp_path)
    _no_traceback(proc)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and re.search(case.expect, lines[0], re.I), proc.stderr
    assert _leftovers(tmp_path) == []
    _ask_napari(path)


# --------------------------------------------------------------------------- STAR lists


def _star_quoted(folder: Path) -> str:
    (folder / "my dir").mkdir()
    (folder / "my dir" / "mic 3.mrc").write_bytes(_mrc(_good()))
    return RELION_HEAD + "'my dir/mic 3.mrc' 1\n"


STAR_CASES: dict[str, tuple[Callable[[Path], bytes | str], str]] = {
    "short row": (lambda d: RELION_HEAD + "a.mrc\n", r"line \d+"),
    "junk line": (lambda d: RELION_HEAD + "a.mrc 1\n}}} junk {{{ 4 5 6\n", r"line \d+"),
    "non-UTF-8": (lambda d: (RELION_HEAD + "a.mrc 1\n").encode() + b"\xff\xfe\x80 1\n", "UTF-8"),
    "missing file": (lambda d: RELION_HEAD + "nowhere/b.mrc 1\n", "(no such file|missing)"),
    "no micrograph column": (
        lambda d: "data_x\nloop_\n_rlnSomething #1\n3\n",
        "rlnMicrographName",
    ),
    "empty star": (lambda d: "", "(empty|no )"),
    "quoted names with spaces": (_star_quoted, "OK"),
}


@pytest.mark.parametrize("name", list(STAR_CASES))
def test_star_case(name, tmp_path, model_file):
    make, expect = STAR_CASES[name]
    (tmp_path / "a.mrc").write_bytes(_mrc(_good()))
    content = make(tmp_path)
    star = tmp_path / "mics.star"
    star.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = _sha(star)
    out = tmp_path / "out"
    proc = _cli("denoise", star.name, "-o", out, "-m", model_file, "-d", "cpu", cwd=tmp_path)
    _no_traceback(proc)
    assert _sha(star) == before and _leftovers(tmp_path) == []
    if expect == "OK":
        assert proc.returncode == 0, proc.stderr
        assert (out / "mic 3.mrc").is_file()
    else:
        lines = _error_lines(proc.stderr)
        assert proc.returncode != 0 and len(lines) == 1, proc.stderr
        assert re.search(expect, lines[0], re.I) and (
            "mics.star" in lines[0] or "b.mrc" in lines[0]
        )


# --------------------------------------------------------------------------- models

SIDE_EFFECT = "side_effect_happened"


class _Evil:
    """Unpickling this would create a file: a model file must never run code."""

    def __reduce__(self):
        return (open, (SIDE_EFFECT, "w"))


def _pickle_with_side_effect(path: Path) -> None:
    import torch

    torch.save({"model": _Evil()}, path)


def _wrong_shapes(path: Path) -> None:
    import torch

    from napari_cryodenoise.models import build_model

    state = build_model("affine").state_dict()
    state = {k: torch.zeros(3, *v.shape) for k, v in state.items()}
    torch.save(state, path)


MODEL_CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...], str]] = {
    "corrupt model": (lambda p: p.write_bytes(os.urandom(300)), (), "model"),
    "empty model": (lambda p: p.write_bytes(b""), (), "(empty|model)"),
    "wrong shapes": (_wrong_shapes, (), "(shape|architecture|model)"),
    "pickle with a side effect": (_pickle_with_side_effect, (), "pickle"),
    "pickle with a side effect, --allow-pickle": (
        _pickle_with_side_effect,
        ("--allow-pickle",),
        "(not allowed|refus|unsupported|model)",
    ),
    "model is a folder": (lambda p: p.mkdir(), (), "(folder|directory|model)"),
}


@pytest.mark.parametrize("name", list(MODEL_CASES))
def test_model_case(name, tmp_path):
    make, extra, expect = MODEL_CASES[name]
    (tmp_path / "a.mrc").write_bytes(_mrc(_good()))
    model = tmp_path / "bad.pt"
    make(model)
    before = _sha(model)
    proc = _cli("denoise", "a.mrc", "-o", "out", "-m", model.name, *extra, cwd=tmp_path)
    _no_traceback(proc)
    assert proc.returncode != 0
    lines = _error_lines(proc.stderr)  # (--allow-pickle also warns that it unpickles)
    assert len(lines) == 1, proc.stderr
    assert "bad.pt" in lines[0] and re.search(expect, lines[0], re.I), lines[0]
    assert not (tmp_path / SIDE_EFFECT).exists(), "unpickling ran code"
    assert _sha(model) == before and _leftovers(tmp_path) == []
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --------------------------------------------------------------------------- options

OPTION_CASES: dict[str, tuple[tuple[str, ...], str]] = {
    "--gaussian nan": (("--gaussian", "nan"), "--gaussian"),
    "--gaussian 1e6": (("--gaussian", "1e6"), "--gaussian"),
    "--lowpass -1": (("--lowpass", "-1"), "--lowpass"),
    "--lowpass 0": (("--lowpass", "0"), "--lowpass"),
    "--lowpass nan": (("--lowpass", "nan"), "--lowpass"),
    "--bin 0": (("--bin", "0"), "--bin"),
    "--bin 1e9": (("--bin", "1e9"), "(--bin|bin)"),
    "--bin 40 (too small a result)": (("--bin", "40"), "a.mrc"),
    "--patch-size 0": (("--patch-size", "0"), "--patch-size"),
    "--precision fp64": (("--precision", "fp64"), "--precision"),
}


@pytest.mark.parametrize("name", list(OPTION_CASES))
def test_option_case(name, tmp_path, model_file):
    extra, expect = OPTION_CASES[name]
    (tmp_path / "a.mrc").write_bytes(_mrc(_good()))
    before = _sha(tmp_path / "a.mrc")
    proc = _cli("denoise", "a.mrc", "-o", "out", "-m", model_file, *extra, cwd=tmp_path)
    _no_traceback(proc)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "error" in ln]
    assert len(lines) == 1 and re.search(expect, lines[0]), proc.stderr
    assert _sha(tmp_path / "a.mrc") == before and _leftovers(tmp_path) == []
    out = tmp_path / "out"
    assert not out.exists() or not [p for p in out.iterdir() if p.suffix == ".mrc"]
