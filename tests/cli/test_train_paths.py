"""``cryodenoise train`` paths a user walks: reruns, resumes, Ctrl-C, odd movies and options.

Every case runs the command as a subprocess with real arguments on tiny simulated movies.
A refusal is one line on stderr naming the option or file, exit code 2, no traceback,
and nothing written or replaced.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from subprocess_runs import SRC, cryodenoise, error_line, read_until

from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.simulate import simulate_movie

TINY = ("--arch", "unet-fast", "--crop", "32", "--batch-size", "2", "--device", "cpu")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The one line of a refused ``train`` (exit status 2: argparse's and ours)."""
    return error_line(proc, *words, code=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two 8-frame movies (64 px), two 3-frame movies and a 24 px movie."""
    folder = tmp_path_factory.mktemp("train_paths")
    for seed in range(2):
        write_mrc(folder / f"m{seed}.mrcs", simulate_movie((64, 64), n_frames=8, seed=seed).frames)
        frames = simulate_movie((64, 64), n_frames=3, seed=10 + seed).frames
        write_mrc(folder / f"three{seed}.mrcs", frames)
    write_mrc(folder / "small.mrcs", simulate_movie((24, 24), n_frames=4, seed=5).frames)
    return folder


def _train(data: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    movies = [str(data / "m0.mrcs"), str(data / "m1.mrcs")]
    return cryodenoise("train", "--movies", *movies, *TINY, "--quiet", *args, cwd=cwd)


def test_an_earlier_model_is_not_replaced_unasked(data, tmp_path):
    first = _train(data, tmp_path, "-o", "model.pt", "--steps", "2")
    assert first.returncode == 0, first.stderr
    model, ckpt = tmp_path / "model.pt", tmp_path / "model.ckpt.pt"
    shas = {p: _sha(p) for p in (model, ckpt)}
    again = _train(data, tmp_path, "-o", "model.pt", "--steps", "2", "--seed", "3")
    line = _refused(again, "-o model.pt: already exists", "--overwrite")
    assert "--resume model.ckpt.pt" in line
    # only the checkpoint left from an earlier run: still refused
    model.rename(tmp_path / "kept.pt")
    again = _train(data, tmp_path, "-o", "model.pt", "--steps", "2")
    _refused(again, "--checkpoint model.ckpt.pt: already exists")
    assert {p: _sha(p) for p in (tmp_path / "kept.pt", ckpt)} == {
        tmp_path / "kept.pt": shas[model],
        ckpt: shas[ckpt],
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.pt", "model.ckpt.pt"]
    # resuming goes on writing the run's model and checkpoint
    resumed = _train(data, tmp_path, "-o", "model.pt", "--steps", "3", "--resume", "model.ckpt.pt")
    assert resumed.returncode == 0, resumed.stderr
    # --overwrite replaces them
    fresh = _train(data, tmp_path, "-o", "model.pt", "--steps", "2", "--overwrite")
    assert fresh.returncode == 0, fresh.stderr
    assert "trained 2 steps" in fresh.stdout


def test_an_existing_topaz_export_or_checkpoint_file_is_not_replaced_unasked(data, tmp_path):
    """The rule of the training core (the Train widget's too), for every output option."""
    (tmp_path / "old.sav").write_bytes(b"an earlier export")
    proc = _train(data, tmp_path, "-o", "m.pt", "--steps", "2", "--export-topaz", "old.sav")
    line = _refused(proc, "--export-topaz old.sav: already exists (an earlier run's?)")
    assert "choose another --export-topaz or add --overwrite" in line
    (tmp_path / "run.ckpt").write_bytes(b"resumable")
    proc = _train(data, tmp_path, "-o", "m.pt", "--steps", "2", "--checkpoint", "run.ckpt")
    line = _refused(proc, "--checkpoint run.ckpt: already exists", "--resume run.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.sav", "run.ckpt"]


def test_resume_refuses_settings_that_contradict_the_checkpoint(data, tmp_path):
    first = _train(data, tmp_path, "-o", "sgd.pt", "--steps", "2", "--optimizer", "sgd")
    assert first.returncode == 0, first.stderr
    ckpt = tmp_path / "sgd.ckpt.pt"
    sha = _sha(ckpt)
    resume = ("-o", "sgd.pt", "--steps", "4", "--resume", "sgd.ckpt.pt")
    # another optimizer was an internal KeyError before
    _refused(_train(data, tmp_path, *resume, "--optimizer", "adam"), "--optimizer adam", "sgd")
    _refused(
        _train(data, tmp_path, *resume, "--arch", "unet-small"), "--arch unet-small", "unet-fast"
    )
    _refused(_train(data, tmp_path, *resume, "--loss", "l1"), "--loss l1")
    single = cryodenoise(
        "train", "--single", str(data / "m0.mrcs"), *TINY, "--quiet", *resume, cwd=tmp_path,
    )  # fmt: skip
    _refused(single, "sgd.ckpt.pt", "--single", "--init")
    assert _sha(ckpt) == sha
    # the optimizer and the loss left out are the checkpoint's (it needed --optimizer sgd)
    ok = _train(data, tmp_path, *resume)
    assert ok.returncode == 0, ok.stderr
    assert "trained 4 steps" in ok.stdout
    assert "resuming" not in ok.stdout + ok.stderr


def test_resume_says_which_settings_it_changes(data, tmp_path):
    first = _train(data, tmp_path, "-o", "m.pt", "--steps", "2")
    assert first.returncode == 0, first.stderr
    args = ("-o", "m.pt", "--steps", "3", "--resume", "m.ckpt.pt", "--lr", "5e-4")
    proc = cryodenoise(
        "train", "--movies", str(data / "m0.mrcs"), str(data / "m1.mrcs"), "--arch", "unet-fast",
        "--crop", "48", "--device", "cpu", *args, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "resuming m.ckpt.pt with --crop 48 px (was 32 px), --lr 0.0005 (was 0.001)" in out
    assert "--batch-size" not in out  # taken from the checkpoint: unchanged


def test_resume_on_other_data_says_so_in_one_line(tmp_path):
    """Allowed (fine-tuning), but a note names how the data differ from the checkpoint's."""
    for name, side, apix, seed in (("a", 64, 1.2, 0), ("b", 64, 1.2, 1), ("c", 48, 0.9, 2)):
        frames = simulate_movie((side, side), n_frames=4, seed=seed).frames
        write_mrc(tmp_path / f"{name}.mrcs", frames, voxel_size=apix)
    base = ("train", *TINY, "-o", "m.pt", "--val-fraction", "0")
    first = cryodenoise(*base, "--movies", "a.mrcs", "b.mrcs", "--steps", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "other data" not in first.stderr
    same = ("--movies", "b.mrcs", "a.mrcs")
    again = cryodenoise(*base, *same, "--steps", "2", "--resume", "m.ckpt.pt", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "other data" not in again.stderr
    other = cryodenoise(
        *base, "--movies", "c.mrcs", "--steps", "3", "--resume", "m.ckpt.pt", cwd=tmp_path
    )
    assert other.returncode == 0, other.stderr
    assert "trained 3 steps" in other.stdout
    notes = [ln for ln in other.stderr.splitlines() if "other data" in ln]
    assert len(notes) == 1, other.stderr
    for part in (
        "resuming m.ckpt.pt on other data than it was trained on: 1 image (was 2)",
        "1 of 1 image new (c)",
        "48 x 48 px (was 64 x 64 px)",
        "pixel size 0.9 A (was 1.2 A)",
    ):
        assert part in notes[0], notes[0]


def test_a_file_that_is_no_checkpoint_is_one_line(data, tmp_path):
    (tmp_path / "junk.ckpt.pt").write_text("not a checkpoint\n")
    proc = _train(data, tmp_path, "-o", "m.pt", "--steps", "2", "--resume", "junk.ckpt.pt")
    _refused(proc, "junk.ckpt.pt: not a readable checkpoint")
    (tmp_path / "folder").mkdir()
    proc = _train(data, tmp_path, "-o", "m.pt", "--steps", "2", "--resume", "folder")
    _refused(proc, "folder: is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "junk.ckpt.pt"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--input-share", "0"),
        ("--input-share", "1"),
        ("--input-share", "1.5"),
        ("--frame-groups", "-1"),
        ("--frame-groups", "2"),
    ],
)
def test_out_of_range_pairing_options_are_refused_when_parsed(data, tmp_path, option, value):
    proc = _train(data, tmp_path, "-o", "m.pt", "--steps", "2", option, value)
    _refused(proc, f"argument {option}", value)
    assert list(tmp_path.iterdir()) == []


def test_settings_the_data_overrule_are_reported(data, tmp_path):
    three = [str(data / "three0.mrcs"), str(data / "three1.mrcs")]
    proc = cryodenoise(
        "train", "--movies", *three, *TINY, "--pairing", "random", "--input-share", "0.75",
        "-o", "a.pt", "--steps", "2", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--pairing random: no movie keeps frame groups" in proc.stderr
    assert "--input-share 0.75 is not used" in proc.stderr
    small = [str(data / "small.mrcs"), str(data / "m0.mrcs")]
    proc = cryodenoise(
        "train", "--movies", *small, *TINY, "--crop", "48", "-o", "b.pt", "--steps", "2",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "crops are 16 px, not --crop 48" in proc.stderr and "(small)" in proc.stderr
    loaded = cryodenoise("denoise", str(data / "small.mrcs"), "-o", "out/", "--model", "b.pt",
                         "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr


def test_ctrl_c_keeps_a_checkpoint_and_says_so_in_one_line(data, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "napari_cryodenoise", "train", "--movies"]
    cmd += [str(data / "m0.mrcs"), str(data / "m1.mrcs"), *TINY, "-o", "m.pt"]
    cmd += ["--steps", "100000", "--val-every", "100000"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        read_until(proc, "step 1/")  # the first step is reported at once
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest
    last = rest.strip().splitlines()[-1]
    assert last.startswith("training stopped at step "), rest
    assert "checkpoint m.ckpt.pt (continue with --resume m.ckpt.pt" in last
    assert "best model so far m.pt" in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt.pt", "m.pt"]
    step = int(last.split()[4].rstrip(";"))
    more = _train(data, tmp_path, "-o", "m.pt", "--resume", "m.ckpt.pt", "--steps", str(step + 1))
    assert more.returncode == 0, more.stderr
    assert f"trained {step + 1} steps" in more.stdout


def test_movie_errors_name_the_file(tmp_path):
    import numpy as np

    (tmp_path / "in").mkdir()
    write_mrc(tmp_path / "in" / "flat.mrcs", np.ones((4, 48, 48), np.float32))
    write_mrc(tmp_path / "in" / "one.mrcs", np.ones((48, 48), np.float32))
    for name, problem in (("flat.mrcs", "image is constant"), ("one.mrcs", "several frames")):
        proc = cryodenoise(
            "train", "--movies", f"in/{name}", *TINY, "--quiet", "-o", "m.pt", cwd=tmp_path
        )
        _refused(proc, f"in/{name}", problem)
    write_mrc(tmp_path / "in" / "gain.mrc", np.ones((32, 32), np.float32))
    write_mrc(tmp_path / "in" / "m.mrcs", simulate_movie((48, 48), n_frames=4, seed=1).frames)
    proc = cryodenoise(
        "train", "--movies", "in/m.mrcs", "--gain", "in/gain.mrc", *TINY, "--quiet",
        "-o", "m.pt", cwd=tmp_path,
    )  # fmt: skip
    _refused(proc, "in/gain.mrc: gain reference is 32 x 32 px", "in/m.mrcs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
