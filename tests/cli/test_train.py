"""``cryodenoise train`` end to end on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_cryodenoise.cli import main
from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.simulate import simulate_movie
from napari_cryodenoise.training import load_network, load_training_checkpoint

TINY = [
    "--arch",
    "unet-fast",
    "--crop",
    "32",
    "--batch-size",
    "2",
    "--val-every",
    "2",
    "--device",
    "cpu",
    "--quiet",
]


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("movies")
    paths = []
    for seed in range(2):
        sim = simulate_movie((64, 64), n_frames=6, seed=seed)
        path = folder / f"m{seed}.mrcs"
        write_mrc(path, sim.frames)
        paths.append(path)
    return paths


def test_train_from_movies_then_resume(movies, tmp_path, capsys):
    out = tmp_path / "model.pt"
    args = ["train", *TINY, "--movies", *map(str, movies), "--frames", "0:6", "-o", str(out)]
    assert main([*args, "--steps", "1", "--save-pairs", str(tmp_path / "halves")]) == 0
    printed = capsys.readouterr().out
    assert "trained 1 steps" in printed and str(out) in printed
    model = load_network(out)
    assert model(torch.zeros(1, 1, 33, 47)).shape == (1, 1, 33, 47)
    ckpt = tmp_path / "model.ckpt.pt"
    resume = ["train", "--movies", *map(str, movies), "--frames", "0:6", "-o", str(out)]
    assert main([*resume, "--quiet", "--steps", "2", "--resume", str(ckpt)]) == 0
    assert load_training_checkpoint(ckpt)[1]["step"] == 2
    assert (tmp_path / "halves" / "m0_even.mrc").is_file()


def test_train_from_halves_and_single_images(tmp_path):
    rng = np.random.default_rng(0)
    for half in ("even", "odd"):
        (tmp_path / half).mkdir()
        write_mrc(tmp_path / half / "a.mrc", rng.normal(size=(48, 48)).astype(np.float32))
    out = tmp_path / "halves.pt"
    rc = main(
        [
            "train",
            *TINY,
            "--even",
            str(tmp_path / "even"),
            "--odd",
            str(tmp_path / "odd"),
            "-o",
            str(out),
            "--steps",
            "1",
            "--arch",
            "affine",
        ]
    )
    assert rc == 0 and out.is_file()
    rc = main(
        [
            "train",
            "--single",
            str(tmp_path / "even" / "a.mrc"),
            "-o",
            str(tmp_path / "masked.pt"),
            "--steps",
            "1",
            *TINY,
        ]
    )
    assert rc == 0 and (tmp_path / "masked.pt").is_file()


def test_user_errors_are_one_line(movies, tmp_path, capsys):
    assert main(["train", "--movies", str(movies[0]), "-o", str(movies[0]), "--steps", "1"]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert main(["train", "--even", str(movies[0]), "-o", str(tmp_path / "x.pt")]) == 2
    assert "--even needs --odd" in capsys.readouterr().err
    eer = tmp_path / "a.eer"
    eer.write_bytes(b"II*\x00")
    assert main(["train", "--movies", str(eer), "-o", str(tmp_path / "x.pt")]) == 2
    assert "not a readable EER file" in capsys.readouterr().err
    x = str(tmp_path / "x.pt")
    assert main(["train", "--single", str(movies[0]), "--align", "-o", x]) == 2
    assert "need --movies" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_estimate_prints_the_time_per_step_and_writes_nothing(movies, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "model.pt"
    halves = tmp_path / "halves"
    cmd = [sys.executable, "-m", "napari_cryodenoise", "train", *TINY, "--batch-size", "1"]
    cmd += ["--movies", *map(str, movies), "--frames", "0:6", "-o", str(out)]
    cmd += ["--minutes", "8", "--save-pairs", str(halves), "--estimate"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = proc.stdout.strip()
    assert line.startswith("about ") and "s per step of 1 x 32 px crops on cpu" in line, line
    assert line.endswith("steps in 8 min"), line
    assert list(tmp_path.iterdir()) == []  # no model, checkpoint or half sums
