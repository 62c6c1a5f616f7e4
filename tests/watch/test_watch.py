"""``cryodenoise watch`` with a simulated microscope writing into a folder over time.

The watch runs as a subprocess (as users run it), is interrupted with SIGINT mid-way
and restarted; its outputs are compared with ``cryodenoise denoise`` on the same files.
The models are a tiny saved affine network (offline, fast).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

import napari_cryodenoise
from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.models import build_model, save_model
from napari_cryodenoise.watch import STATE_NAME, Scanner, StatusLine, WatchStatus, mrc_state

SRC = str(Path(napari_cryodenoise.__file__).resolve().parents[1])
SHAPE = (160, 160)


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("CRYODENOISE_DEBUG", None)
    return env


def start_cli(*args: object) -> subprocess.Popen:
    """Start ``python -m napari_cryodenoise ARGS`` (stderr and stdout captured)."""
    return subprocess.Popen(
        [sys.executable, "-W", "ignore", "-m", "napari_cryodenoise", *map(str, args)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m napari_cryodenoise ARGS`` to the end."""
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "napari_cryodenoise", *map(str, args)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def affine(tmp_path_factory) -> Path:
    return save_model(build_model("affine"), tmp_path_factory.mktemp("m") / "affine.pt")


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=SHAPE) + 5).astype(np.float32)


def _mrc_bytes(tmp: Path, data: np.ndarray) -> bytes:
    path = write_mrc(tmp / f".src{os.getpid()}.mrc", data, voxel_size=1.2)
    raw = path.read_bytes()
    path.unlink()
    return raw


class Microscope(threading.Thread):
    """Write micrographs into a folder over time, as EPU / motion correction would.

    Every third one is written slowly, in several chunks (header first, then the data),
    one is a TIFF written in two pieces, one is a broken file.
    """

    def __init__(self, folder: Path, scratch: Path, names: list[str], gap: float = 0.25):
        super().__init__(daemon=True)
        self.folder, self.scratch, self.names, self.gap = folder, scratch, names, gap
        self.written: list[Path] = []
        self.go = threading.Event()
        self.go.set()

    def run(self) -> None:
        for i, name in enumerate(self.names):
            self.go.wait()
            path = self.folder / name
            if name.startswith("broken"):
                path.write_bytes(b"this is not an image" * 10)
            elif name.endswith(".tif"):
                raw = _tiff_bytes(self.scratch, _image(100 + i))
                with open(path, "wb") as fh:
                    fh.write(raw[: len(raw) // 2])
                    fh.flush()
                    time.sleep(0.3)
                    fh.write(raw[len(raw) // 2 :])
            else:
                raw = _mrc_bytes(self.scratch, _image(i))
                if i % 3 == 1:  # slowly: header, then the data in three chunks
                    with open(path, "wb") as fh:
                        fh.write(raw[:1024])
                        fh.flush()
                        for part in np.array_split(np.frombuffer(raw[1024:], np.uint8), 3):
                            time.sleep(0.3)
                            fh.write(part.tobytes())
                            fh.flush()
                else:
                    path.write_bytes(raw)
            self.written.append(path)
            time.sleep(self.gap)


def _tiff_bytes(tmp: Path, data: np.ndarray) -> bytes:
    path = tmp / f".src{os.getpid()}.tif"
    tifffile.imwrite(path, data)
    raw = path.read_bytes()
    path.unlink()
    return raw


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if "partial" in p.name]


def _labels(path: Path) -> str:
    with mrcfile.open(path, permissive=True) as m:
        return " ".join(
            m.header.label[i].decode(errors="replace") for i in range(int(m.header.nlabl))
        )


def _star_names(star: Path) -> list[str]:
    import starfile

    return [Path(n).name for n in starfile.read(star)["micrographs"]["rlnMicrographName"]]


def test_watch_interrupted_restarted_equals_denoise(tmp_path, affine):
    indir, outdir, scratch = tmp_path / "in", tmp_path / "out", tmp_path / "scratch"
    for d in (indir, scratch):
        d.mkdir()
    names = [f"mic_{i:02d}.mrc" for i in range(7)]
    names[4] = "mic_04.tif"
    names.insert(3, "broken_01.mrc")
    scope = Microscope(indir, scratch, names)
    args = [
        "watch", indir, "-o", outdir, "-m", affine,
        "--settle", "1", "--poll", "0.3", "--stop-after-idle", "4",
    ]  # fmt: skip
    proc = start_cli(*args)
    scope.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(outdir.glob("mic_*.mrc"))) < 3:
        time.sleep(0.05)
    scope.go.clear()  # the microscope pauses while the watch is down
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5, "Ctrl-C should stop the watch within a few seconds"
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not _partials(outdir)
    first = sorted(p.name for p in outdir.glob("mic_*.mrc"))
    assert len(first) >= 3

    proc = start_cli(*args)  # the same command again
    scope.go.set()
    _, err = proc.communicate(timeout=90)
    scope.join(10)
    assert proc.returncode == 1, err  # the broken file
    assert "Traceback" not in err
    assert err.count("broken_01.mrc") == 1, err  # reported once, the watch went on
    good = [p for p in scope.written if not p.name.startswith("broken")]
    outs = sorted(outdir.glob("mic_*.mrc"))
    assert [p.name for p in outs] == sorted(f"{p.stem}.mrc" for p in good)
    assert not _partials(outdir)

    # each output is the one `cryodenoise denoise` writes for that file
    ref = tmp_path / "ref"
    done = run_cli("denoise", *good, "-o", ref, "-m", affine)
    assert done.returncode == 0, done.stderr
    for out in outs:
        with mrcfile.open(out) as a, mrcfile.open(ref / out.name) as b:
            np.testing.assert_array_equal(a.data, b.data)
            assert a.voxel_size == b.voxel_size
        assert "model=" in _labels(out) and "watch" in _labels(out)

    # the STAR lists every output (in the order they were taken, which on a loaded
    # machine can differ from the order the writer started them: a file written slowly in
    # chunks is taken when complete)
    listed = _star_names(outdir / "denoised_micrographs.star")
    assert sorted(listed) == [p.name for p in outs]
    assert len(listed) == len(set(listed)) == len(good)
    assert (outdir / STATE_NAME).is_file()

    # a third run finds nothing to do
    again = run_cli(*args[:-1], "1")
    assert "denoised 0" in again.stdout and f"kept {len(good)} earlier" in again.stdout


def test_train_first_switches_model_and_redoes(tmp_path, affine):
    indir, outdir = tmp_path / "in", tmp_path / "out"
    indir.mkdir()
    for i in range(3):
        signal_ = _image(i)
        rng = np.random.default_rng(50 + i)
        write_mrc(indir / f"m{i}.mrc", signal_, voxel_size=1.2)
        for half in ("EVN", "ODD"):
            noisy = signal_ + rng.normal(size=SHAPE).astype(np.float32)
            write_mrc(indir / f"m{i}_{half}.mrc", noisy, voxel_size=1.2)
    result = run_cli(
        "watch", indir, "-o", outdir, "-m", affine, "--settle", "0.5", "--poll", "0.3",
        "--train-first", "2", "--train-arch", "affine", "--train-steps", "5", "--redo",
        "--stop-after-idle", "1.5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = outdir / "watch_model.pt"
    assert model.is_file()
    assert "training a Noise2Noise model on the even/odd sums of 2" in result.stderr
    assert "redone" in result.stdout
    outs = sorted(outdir.glob("*.mrc"))
    assert [p.name for p in outs] == ["m0.mrc", "m1.mrc", "m2.mrc"]  # half sums not taken
    for out in outs:
        text = _labels(out)
        assert "model=watch_model.pt trained_on_the_fly=1 pairs=2" in text
    ref = tmp_path / "ref"
    done = run_cli("denoise", *(indir / p.name for p in outs), "-o", ref, "-m", model)
    assert done.returncode == 0, done.stderr
    for out in outs:
        with mrcfile.open(out) as a, mrcfile.open(ref / out.name) as b:
            np.testing.assert_array_equal(a.data, b.data)
    assert len(_star_names(outdir / "denoised_micrographs.star")) == 3


def test_refusals_are_one_line(tmp_path, affine):
    (tmp_path / "in").mkdir()
    same = run_cli("watch", tmp_path / "in", "-o", tmp_path / "in", "-m", affine)
    assert same.returncode == 2 and "is the watched folder" in same.stderr
    redo = run_cli("watch", tmp_path / "in", "-o", tmp_path / "o", "--redo")
    assert redo.returncode == 2 and "need --train-first" in redo.stderr
    assert "Traceback" not in same.stderr + redo.stderr


# ---------------------------------------------------------------------- core rules (fast)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_scanner_takes_whole_files_once_in_arrival_order(tmp_path):
    raw = _mrc_bytes(tmp_path, _image(0))
    folder = tmp_path / "in"
    folder.mkdir()
    clock = Clock()
    scanner = Scanner(folder, settle=2.0, clock=clock)
    old = folder / "b_old.mrc"
    old.write_bytes(raw)
    newer = folder / "a_new.mrc"
    newer.write_bytes(raw)
    os.utime(old, (time.time() - 100, time.time() - 100))
    os.utime(newer, (time.time() - 50, time.time() - 50))
    for name in ("x_EVN.mrc", "x_ODD.mrc", ".hidden.mrc", "notes.txt"):
        (folder / name).write_bytes(raw)
    half = folder / "half.mrc"
    half.write_bytes(raw[:1024] + raw[1024:2000])
    tif = folder / "t.tif"
    tif.write_bytes(_tiff_bytes(tmp_path, _image(1)))
    assert [p.name for p in scanner.scan()] == ["b_old.mrc", "a_new.mrc"]  # by mtime
    assert mrc_state(half) == "incomplete"
    assert scanner.pending() == 2  # the half-written MRC and the new TIFF
    clock.t += 2.5
    assert [p.name for p in scanner.scan()] == ["t.tif"]  # stable for the settle time
    with open(half, "ab") as fh:
        fh.write(raw[2000:])
    assert mrc_state(half) == "complete"
    clock.t += 0.1
    scanner.scan()
    clock.t += 0.1
    assert [p.name for p in scanner.scan()] == ["half.mrc"]
    assert scanner.scan() == [] and scanner.pending() == 0


def test_status_line_tty_and_log():
    import io

    status = WatchStatus(done=3, failed=1, queued=2, model="unet", last="a.mrc")
    status.finished_one(0.0)
    status.finished_one(4.0)
    assert "15.0/min" in status.text() and "pending 2" in status.text()
    log = io.StringIO()
    line = StatusLine(log, interval=100, tty=False)
    line.show(status)
    line.show(status)
    line.close(status)
    assert log.getvalue().count("\n") == 1  # plain lines, not repeated
    tty = io.StringIO()
    line = StatusLine(tty, tty=True)
    line.show(status)
    line.message("cryodenoise watch: error: x")
    assert tty.getvalue().startswith("\rwatch: done 3")


def test_dask_workers_write_the_same_outputs(tmp_path, affine):
    distributed = pytest.importorskip("distributed")
    from napari_cryodenoise.watch import WatchConfig, run_watch

    indir = tmp_path / "in"
    indir.mkdir()
    for i in range(3):
        write_mrc(indir / f"m{i}.mrc", _image(i), voxel_size=1.2)
        os.utime(indir / f"m{i}.mrc", (time.time() - 60 + i, time.time() - 60 + i))

    def config(out: str) -> WatchConfig:
        return WatchConfig(
            folder=indir,
            outdir=tmp_path / out,
            models=(str(affine),),
            settle=0.5,
            poll=0.2,
            events=False,
            stop_after_idle=0.5,
            out_star=tmp_path / out / "list.star",
        )

    here = run_watch(config("here"))
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        there = run_watch(config("there"), client=client)
    assert here.done == there.done == 3
    for i in range(3):
        with mrcfile.open(tmp_path / "here" / f"m{i}.mrc") as a:
            with mrcfile.open(tmp_path / "there" / f"m{i}.mrc") as b:
                np.testing.assert_array_equal(a.data, b.data)
    assert _star_names(tmp_path / "there" / "list.star") == ["m0.mrc", "m1.mrc", "m2.mrc"]


def test_the_last_status_of_a_stopped_watch_counts_what_is_left(tmp_path, affine):
    """Stopped with files still queued, the last status line said 'pending 0'."""
    from napari_cryodenoise.watch import WatchConfig, run_watch

    indir = tmp_path / "in"
    indir.mkdir()
    for i in range(4):
        write_mrc(indir / f"m{i}.mrc", _image(i), voxel_size=1.2)
        os.utime(indir / f"m{i}.mrc", (time.time() - 60 + i, time.time() - 60 + i))
    stop = threading.Event()
    shown: list[str] = []

    def show(status: WatchStatus) -> None:
        shown.append(status.text())
        if status.done >= 1:
            stop.set()

    config = WatchConfig(
        folder=indir, outdir=tmp_path / "out", models=(str(affine),), settle=0.5, poll=0.2,
        events=False,
    )  # fmt: skip
    summary = run_watch(config, show=show, stop=stop)
    left = 4 - summary.done
    assert left > 0
    assert shown[-1].startswith(f"watch: done {summary.done}, pending {left},"), shown[-1]
