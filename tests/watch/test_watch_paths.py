"""``cryodenoise watch`` on the paths a session at the microscope walks (as subprocesses).

Restarts with other options, files replaced after they were taken, movies landing in
the folder, outputs that resolve to inputs, leftovers of a killed run. The model is a
tiny saved affine network (offline, fast); images are 128 px.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile
from subprocess_runs import SRC, cryodenoise, error_line

from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.models import build_model, save_model

SHAPE = (128, 128)
FAST = ("--settle", "0.5", "--poll", "0.3")


@pytest.fixture(scope="module")
def affine(tmp_path_factory) -> str:
    return str(save_model(build_model("affine"), tmp_path_factory.mktemp("m") / "affine.pt"))


def _image(seed: int, offset: float = 5.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=SHAPE) + offset).astype(np.float32)


def _micrographs(folder: Path, n: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = write_mrc(folder / f"mic_{i}.mrc", _image(i), voxel_size=1.5)
        old = time.time() - 60 + i
        os.utime(path, (old, old))
        paths.append(path)
    return paths


def _watch(indir: Path, outdir: Path, affine: str, *extra: str, idle: str = "1"):
    return cryodenoise(
        "watch", str(indir), "-o", str(outdir), "-m", affine, *FAST,
        "--stop-after-idle", idle, *extra, timeout=120,
    )  # fmt: skip


def _data(path: Path) -> np.ndarray:
    with mrcfile.open(path) as m:
        return np.array(m.data)


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "napari_cryodenoise", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class _Lines:
    """The lines a process writes to a pipe, read as they come (a thread), to wait on."""

    def __init__(self, pipe) -> None:  # noqa: ANN001
        import threading

        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:  # noqa: ANN001
        for line in pipe:
            self.lines.append(line)

    def wait_for(self, text: str, proc: subprocess.Popen, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not any(text in line for line in self.lines):
            assert proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, f"no line with {text!r}: {self.lines}"
            time.sleep(0.05)

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def test_overwrite_redoes_outputs_an_earlier_run_kept(tmp_path, affine):
    """Outputs kept by a run (made with other options, or not by a watch) are redone by
    the next run with --overwrite (was: kept for ever once a run had recorded them)."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    mics = _micrographs(indir)
    assert _watch(indir, outdir, affine).returncode == 0
    plain = _data(outdir / "mic_0.mrc")
    changed = _watch(indir, outdir, affine, "--lowpass", "2")
    assert changed.returncode == 0, changed.stderr
    assert "other options" in changed.stderr and "kept 2 earlier" in changed.stdout
    # the user stops, then runs the same command with --overwrite: the outputs are redone
    redo = _watch(indir, outdir, affine, "--lowpass", "2", "--overwrite")
    assert redo.returncode == 0, redo.stderr
    assert "denoised 2" in redo.stdout, redo.stdout
    assert not np.array_equal(_data(outdir / "mic_0.mrc"), plain)
    again = _watch(indir, outdir, affine, "--lowpass", "2", "--overwrite")
    assert "denoised 0, kept 2 earlier" in again.stdout, again.stdout  # now they are ours

    # outputs written by `cryodenoise denoise` into the folder before the watch
    other = tmp_path / "other"
    assert cryodenoise("denoise", *map(str, mics), "-o", str(other), "-m", affine).returncode == 0
    kept = _watch(indir, other, affine)
    assert "kept 2 earlier" in kept.stdout, kept.stdout
    redo = _watch(indir, other, affine, "--overwrite")
    assert "denoised 2" in redo.stdout, redo.stdout


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.05)


def test_a_micrograph_replaced_after_it_was_taken_is_denoised_again(tmp_path, affine):
    """Motion correction rewrites a micrograph (renamed over the first version): the
    output becomes the new version's, during the watch and after a restart (was: the
    first version's output was kept for ever)."""
    indir, outdir, ref = tmp_path / "in", tmp_path / "out", tmp_path / "ref"
    _micrographs(indir, 1)
    mic, out = indir / "mic_0.mrc", outdir / "mic_0.mrc"
    proc = _start("watch", str(indir), "-o", str(outdir), "-m", affine, *FAST)
    _wait_for(out, proc)
    first = _data(out)
    time.sleep(1.0)
    write_mrc(mic, _image(7, offset=50.0), voxel_size=1.5)  # atomic: renamed over the old
    deadline = time.monotonic() + 60
    while np.array_equal(_data(out), first) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert cryodenoise("denoise", str(mic), "-o", str(ref), "-m", affine).returncode == 0
    np.testing.assert_array_equal(_data(out), _data(ref / "mic_0.mrc"))

    # replaced while the watch was down: the same command redoes it
    write_mrc(mic, _image(8, offset=-20.0), voxel_size=1.5)
    assert cryodenoise("denoise", str(mic), "-o", str(ref), "-m", affine, "--overwrite")
    again = _watch(indir, outdir, affine)
    assert again.returncode == 0 and "denoised 1" in again.stdout, again.stdout + again.stderr
    np.testing.assert_array_equal(_data(out), _data(ref / "mic_0.mrc"))
    unchanged = _watch(indir, outdir, affine)
    assert "denoised 0, kept 1 earlier" in unchanged.stdout, unchanged.stdout


def test_movies_and_stacks_in_the_folder_are_skipped_not_denoised_as_micrographs(tmp_path, affine):
    """EPU's raw movies beside the sums (multi-page TIFF, EER, MRC with frames, .mrcs): one
    note, skipped, not in the STAR list (was: denoised frame by frame or as a volume with
    the 3D model, and listed as micrographs; with -m an error advised --stack, which
    watch refuses; EER files were silently ignored)."""
    import tifffile

    indir, outdir = tmp_path / "in", tmp_path / "out"
    _micrographs(indir, 1)
    frames = np.stack([_image(10 + k) for k in range(6)])
    tifffile.imwrite(indir / "FoilHole_1_fractions.tiff", frames.astype(np.uint8))
    write_mrc(indir / "movie_2.mrc", frames, voxel_size=1.5)
    write_mrc(indir / "movie_3.mrcs", frames, voxel_size=1.5)
    (indir / "FoilHole_4_EER.eer").write_bytes(b"II*\0" + bytes(60))  # never opened
    for name in ("FoilHole_1_fractions.tiff", "movie_2.mrc", "movie_3.mrcs", "FoilHole_4_EER.eer"):
        os.utime(indir / name, (time.time() - 30, time.time() - 30))
    for extra in ((), ("--overwrite",)):
        run = _watch(indir, outdir, affine, *extra)
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr and "error:" not in run.stderr, run.stderr
        notes = [ln for ln in run.stderr.splitlines() if "not a micrograph" in ln]
        assert len(notes) == 1, run.stderr
        assert "skipped 4 movies/stacks" in run.stdout, run.stdout
    assert sorted(p.name for p in outdir.glob("*.mrc*")) == ["mic_0.mrc"]
    star = starfile.read(outdir / "denoised_micrographs.star")["micrographs"]
    assert [Path(n).name for n in star["rlnMicrographName"]] == ["mic_0.mrc"]


def test_an_output_that_is_a_symlink_to_its_input_is_refused_not_kept(tmp_path, affine):
    """OUTDIR/mic_1.mrc -> ../in/mic_1.mrc: one line naming it, the input untouched and
    not listed as denoised (was: kept as a complete earlier output and listed in the STAR
    list, the raw micrograph passing for a denoised one)."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    mics = _micrographs(indir)
    before = mics[1].read_bytes()
    outdir.mkdir()
    (outdir / "mic_1.mrc").symlink_to(mics[1])
    for extra, lines in (((), 1), (("--overwrite",), 0)):  # reported once, then counted
        run = _watch(indir, outdir, affine, *extra)
        assert run.returncode == 1, run.stderr
        assert "Traceback" not in run.stderr
        errors = [ln for ln in run.stderr.splitlines() if "error:" in ln]
        assert len(errors) == lines and all("mic_1.mrc" in e for e in errors), run.stderr
        assert "failed 1" in run.stdout
        assert mics[1].read_bytes() == before
        star = starfile.read(outdir / "denoised_micrographs.star")
        names = star["micrographs"]["rlnMicrographName"] if isinstance(star, dict) else []
        assert [Path(n).name for n in names] == ["mic_0.mrc"]


def test_output_folder_inside_the_watched_one_through_a_symlink_is_not_taken(tmp_path, affine):
    """-o given through a symlink (or INDIR through one) while the output folder is inside
    the watched one with --recursive: the outputs are not taken as new micrographs (were:
    one 'also the output of' error per output, or its own output denoised again)."""
    indir = tmp_path / "in"
    _micrographs(indir)
    (indir / "den").mkdir()
    (tmp_path / "den_link").symlink_to(indir / "den")
    (tmp_path / "in_link").symlink_to(indir)
    for watched, out in ((indir, tmp_path / "den_link"), (tmp_path / "in_link", indir / "den")):
        for _ in range(2):  # and the restart
            run = _watch(watched, out, affine, "--recursive")
            assert run.returncode == 0, run.stderr
            assert "error" not in run.stderr.replace("errors 0", ""), run.stderr
            assert "failed 0" in run.stdout, run.stdout
    assert sorted(p.name for p in (indir / "den").glob("*.mrc")) == ["mic_0.mrc", "mic_1.mrc"]


def test_restart_after_a_kill_removes_its_partial_outputs(tmp_path, affine):
    """A watch killed (SIGKILL, power cut) while writing leaves hidden temporary files;
    the same command again removes them, keeps the finished outputs and does the rest
    (the temporary files were left for ever)."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    _micrographs(indir, 3)
    proc = _start("watch", str(indir), "-o", str(outdir), "-m", affine, *FAST)
    _wait_for(outdir / "mic_0.mrc", proc)
    proc.kill()
    proc.communicate(timeout=30)
    # what a kill in the middle of writing leaves (the temporary-file rule of io.atomic)
    for name in ("mic_0.mrc", "mic_2.mrc"):
        (outdir / f".{name}.999999-abcdef.partial.mrc").write_bytes(b"\0" * 3000)
    run = _watch(indir, outdir, affine)
    assert run.returncode == 0, run.stderr
    assert "kept" in run.stdout and "failed 0" in run.stdout, run.stdout
    assert sorted(p.name for p in outdir.iterdir()) == [
        ".cryodenoise-watch.json", "denoised_micrographs.star",
        "mic_0.mrc", "mic_1.mrc", "mic_2.mrc",
    ]  # fmt: skip


def test_a_broken_file_repaired_during_the_watch_ends_with_no_failure(tmp_path, affine):
    """A file that failed (copy cut short) and is then written whole is denoised; the end
    line and the exit code count it as done, not failed (were: failed 1, exit code 1)."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    _micrographs(indir, 1)
    bad = indir / "mic_5.mrc"
    bad.write_bytes(b"not yet an image" * 100)
    os.utime(bad, (time.time() - 30, time.time() - 30))
    proc = _start(
        "watch", str(indir), "-o", str(outdir), "-m", affine, *FAST, "--stop-after-idle", "4"
    )  # fmt: skip
    record = outdir / ".cryodenoise-watch.json"
    deadline = time.monotonic() + 60
    while not (record.exists() and "mic_5.mrc" in record.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    write_mrc(bad, _image(5), voxel_size=1.5)
    out, err = proc.communicate(timeout=60)
    assert (outdir / "mic_5.mrc").is_file(), err
    assert [ln for ln in err.splitlines() if "error:" in ln and "mic_5.mrc" in ln], err
    assert "denoised 2" in out and "failed 0" in out, out
    assert proc.returncode == 0, err


def test_watched_folder_that_disappears_and_comes_back_is_said_so(tmp_path, affine):
    """The watched folder goes away (deleted, network file system unmounted): one note
    saying so, and one when it is back; its new micrographs are then denoised (was:
    silence, the status line showing nothing pending)."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    _micrographs(indir, 1)
    proc = _start("watch", str(indir), "-o", str(outdir), "-m", affine, "--no-poll")
    stderr = _Lines(proc.stderr)
    _wait_for(outdir / "mic_0.mrc", proc)
    for path in indir.iterdir():
        path.unlink()
    indir.rmdir()
    stderr.wait_for("no longer there", proc)  # however long a loaded machine takes
    _micrographs(indir, 2)
    _wait_for(outdir / "mic_1.mrc", proc)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    err = stderr.text()
    assert proc.returncode == 130 and "Traceback" not in err, err
    gone = [ln for ln in err.splitlines() if "no longer there" in ln]
    back = [ln for ln in err.splitlines() if "is back" in ln]
    assert len(gone) == 1 and str(indir) in gone[0] and len(back) == 1, err


def test_watched_folder_moved_aside_and_replaced_is_followed_without_polling(tmp_path, affine):
    """--no-poll: the watched folder renamed away and a new one made under its name (a
    session restarted into a fresh folder). The new folder's micrographs are denoised
    (were never seen: the change events followed the old folder, and a look only asked
    whether a folder of that name existed)."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    _micrographs(indir, 1)
    proc = _start("watch", str(indir), "-o", str(outdir), "-m", affine, "--no-poll")
    _wait_for(outdir / "mic_0.mrc", proc)
    indir.rename(tmp_path / "in_old")
    indir.mkdir()
    time.sleep(1.5)  # the events of the move are over: nothing but the new file tells
    write_mrc(indir / "mic_1.mrc", _image(1), voxel_size=1.5)
    _wait_for(outdir / "mic_1.mrc", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err, err
    notes = [ln for ln in err.splitlines() if "another folder now" in ln]
    assert len(notes) == 1 and str(indir) in notes[0], err


def test_indir_that_is_a_file_is_said_so(tmp_path, affine):
    """A micrograph given as INDIR (was: 'no such folder', although it exists)."""
    mic = _micrographs(tmp_path / "in", 1)[0]
    proc = cryodenoise("watch", str(mic), "-o", str(tmp_path / "out"), "-m", affine)
    error_line(proc, "INDIR", str(mic), "a file, not a folder", code=2)
    proc = cryodenoise("watch", str(tmp_path / "nope"), "-o", str(tmp_path / "out"))
    error_line(proc, "INDIR", "no such folder", code=2)


def test_ctrl_c_pressed_several_times_ends_in_one_line_and_130(tmp_path, affine):
    """Impatient users press Ctrl-C again while the watch ends: the exit handlers then
    raised KeyboardInterrupt and the process died of SIGINT (exit status -2)."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    _micrographs(indir, 1)
    proc = _start("watch", str(indir), "-o", str(outdir), "-m", affine, *FAST)
    _wait_for(outdir / "mic_0.mrc", proc)
    for _ in range(6):
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGINT)
        time.sleep(0.03)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().splitlines()[-1] == "cryodenoise watch: interrupted"
    assert not [p for p in outdir.rglob("*") if "partial" in p.name]
    assert (outdir / "denoised_micrographs.star").is_file()


def test_watch_help_offers_only_what_watch_does():
    """--stack/--volume (refused by watch) and 3D models are not in its --help."""
    proc = cryodenoise("watch", "--help")
    assert proc.returncode == 0
    assert "--stack" not in proc.stdout and "--volume" not in proc.stdout
    assert "unet-3d" not in proc.stdout and "(default: unet)" in proc.stdout


def test_an_out_star_that_is_no_star_file_is_refused(tmp_path, affine):
    """--out-star in/mic_0.mrc would replace that micrograph by the STAR list."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    (mic,) = _micrographs(indir, 1)
    before = mic.read_bytes()
    proc = cryodenoise(
        "watch", str(indir), "-o", str(outdir), "-m", affine, "--out-star", str(mic),
        "--stop-after-idle", "1",
    )  # fmt: skip
    error_line(proc, "--out-star", "must be a .star file", code=2)
    assert mic.read_bytes() == before and not outdir.exists()


def test_ctrl_c_between_an_output_and_its_star_row_still_lists_it(tmp_path, affine, monkeypatch):
    """Ctrl-C after a micrograph was written but during the STAR list's rewrite left no
    STAR at all (its partial was removed and nothing wrote it again)."""
    from napari_cryodenoise.watch import WatchConfig, run_watch, runner

    indir, outdir = tmp_path / "in", tmp_path / "out"
    _micrographs(indir, 1)
    original, calls = runner._Watch.write_star, []

    def interrupted_once(self):  # noqa: ANN001, ANN202
        calls.append(len(self.state.pairs()))
        if calls[-1] and calls.count(calls[-1]) == 1:  # the first rewrite with an output
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(runner._Watch, "write_star", interrupted_once)
    config = WatchConfig(
        folder=indir, outdir=outdir, models=(affine,), settle=0.5, poll=0.2, events=False,
        stop_after_idle=5, out_star=outdir / "denoised_micrographs.star",
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run_watch(config)
    star = (outdir / "denoised_micrographs.star").read_text()
    assert "mic_0.mrc" in star
    assert not [p for p in outdir.rglob("*") if "partial" in p.name]
