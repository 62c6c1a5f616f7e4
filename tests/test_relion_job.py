"""``cryodenoise-relion`` driven as RELION drives an External job.

A temporary RELION project holds ``MotionCorr/job002/corrected_micrographs.star`` written
as RELION 4 writes it (optics block, ``# version 30001``, trailing blanks, project-relative
paths) and tiny micrographs; the job runs as a subprocess from the project directory with
RELION's arguments, and a tiny saved affine model keeps it offline and fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from relion_star_files import RELION5_TOMOGRAMS, motioncorr_optics
from subprocess_runs import read_until

from napari_cryodenoise.io.star import read_star
from napari_cryodenoise.models import build_model, save_model
from napari_cryodenoise.relion.arguments import (
    RelionJobError,
    output_subfolder,
    parse_job_args,
)

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
IN_MICS = "MotionCorr/job002/corrected_micrographs.star"
JOB = "External/job003/"
EXIT_FILES = ("RELION_JOB_EXIT_SUCCESS", "RELION_JOB_EXIT_FAILURE", "RELION_JOB_EXIT_ABORTED")

RELION4_MOTIONCORR_HEADER = (
    motioncorr_optics(30001)
    + """
# version 30001

data_micrographs

loop_ 
_rlnCtfPowerSpectrum #1 
_rlnMicrographName #2 
_rlnMicrographMetadata #3 
_rlnOpticsGroup #4 
_rlnAccumMotionTotal #5 
_rlnAccumMotionEarly #6 
_rlnAccumMotionLate #7 
"""  # noqa: W291 - RELION writes these trailing blanks
)


def make_project(root: Path, n: int = 3, size: int = 64, halves: bool = False) -> Path:
    """A RELION project after motion correction; returns the project folder."""
    movies = root / "MotionCorr" / "job002" / "Movies"
    movies.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        stem = f"MotionCorr/job002/Movies/mic_{i:04d}"
        for tag in ("", "_EVN", "_ODD") if halves else ("",):
            with mrcfile.new(root / f"{stem}{tag}.mrc") as mrc:
                mrc.set_data(rng.normal(size=(size, size)).astype(np.float32))
                mrc.voxel_size = 0.885
        motion = f"{10 + i:.6f}     2.506308    {7.5 + i:.6f}"
        rows.append(f"{stem}_PS.mrc {stem}.mrc {stem}.star            1    {motion} ")
    (root / IN_MICS).write_text(RELION4_MOTIONCORR_HEADER + "\n".join(rows) + "\n \n")
    save_model(build_model("affine"), root / "affine.pt")
    return root


def relion(project: Path, *params: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the job as RELION does: from the project folder, ``--o``, ``--in_mics``, ``--j``."""
    return subprocess.run(job_command(*params), cwd=project, env=job_env(), **_captured(timeout))


def job_command(*params: str) -> list[str]:
    relion_args = ["--o", JOB, "--in_mics", IN_MICS, "--j", "1", *params]
    return [sys.executable, "-m", "napari_cryodenoise.relion", *relion_args]


def relion_in_process(project: Path, capsys, *params: str) -> tuple[int, str, str]:
    """The same command in this process (torch already loaded: fast); (code, out, err)."""
    from napari_cryodenoise.relion import main

    cwd = os.getcwd()
    os.chdir(project)
    try:
        capsys.readouterr()
        code = main(job_command(*params)[3:])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return code, out, err


def job_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("CRYODENOISE_DEBUG", None)
    return env


def _start_job(project, *args: str) -> subprocess.Popen:
    """The job started as RELION starts it, from the project folder (output piped)."""
    return subprocess.Popen(
        job_command(*args),
        cwd=project,
        env=job_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _captured(timeout: float) -> dict:
    return dict(capture_output=True, text=True, timeout=timeout)


def exit_files(job: Path) -> list[str]:
    return [name for name in EXIT_FILES if (job / name).exists()]


def partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial" in p.name]


def test_job_writes_micrographs_star_nodes_and_success_then_continue_skips(tmp_path, capsys):
    project = make_project(tmp_path)
    job = project / JOB
    job.mkdir(parents=True)
    (job / "RELION_JOB_EXIT_FAILURE").touch()  # from an earlier run: removed at the start
    run = relion(project, "--model", "affine.pt", "--device", "cpu")
    assert run.returncode == 0, run.stderr
    assert exit_files(job) == ["RELION_JOB_EXIT_SUCCESS"]
    outputs = sorted(p.name for p in (job / "Movies").iterdir())
    assert outputs == ["mic_0000.mrc", "mic_0001.mrc", "mic_0002.mrc"]

    before, after = read_star(project / IN_MICS), read_star(job / "denoised_micrographs.star")
    assert list(after) == list(before) == ["optics", "micrographs"]
    assert after["optics"].table.equals(before["optics"].table)
    mics_in, mics_out = before["micrographs"].table, after["micrographs"].table
    assert mics_out.columns.tolist() == mics_in.columns.tolist()
    others = [c for c in mics_in.columns if c != "rlnMicrographName"]
    assert mics_out[others].equals(mics_in[others])
    names = mics_out["rlnMicrographName"].tolist()
    assert names == [f"External/job003/Movies/mic_{i:04d}.mrc" for i in range(3)]
    assert all((project / name).is_file() for name in names)

    nodes = read_star(job / "RELION_OUTPUT_NODES.star")
    assert list(nodes) == ["output_nodes"]
    assert nodes["output_nodes"].records() == [
        {
            "rlnPipeLineNodeName": "External/job003/denoised_micrographs.star",
            "rlnPipeLineNodeTypeLabel": "MicrographGroupMetadata.star.relion",
        }
    ]

    # "Continue": the same command again keeps the finished micrographs
    stamps = {p: p.stat().st_mtime_ns for p in (job / "Movies").iterdir()}
    code, out, err = relion_in_process(project, capsys, "--model", "affine.pt", "--device", "cpu")
    assert code == 0, err
    assert "skipped 3" in out
    assert {p: p.stat().st_mtime_ns for p in (job / "Movies").iterdir()} == stamps
    assert exit_files(job) == ["RELION_JOB_EXIT_SUCCESS"]
    assert read_star(job / "denoised_micrographs.star")["micrographs"].table.equals(mics_out)


def test_abort_file_stops_the_run_cleanly_and_continue_finishes(tmp_path, capsys):
    # a full-size U-Net (random weights) takes a tenth of a second or more per micrograph,
    # so the abort (polled every second) always lands while micrographs remain
    n = 40
    project = make_project(tmp_path, n=n, size=96)
    save_model(build_model("unet"), project / "slow.pt")
    job = project / JOB
    proc = _start_job(project, "--model", "slow.pt", "--device", "cpu")
    try:
        deadline = time.monotonic() + 60
        while not (job / "Movies" / "mic_0001.mrc").exists():  # the run is under way
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        (job / "RELION_JOB_ABORT_NOW").touch()  # the GUI's abort button
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    assert exit_files(job) == ["RELION_JOB_EXIT_ABORTED"]
    assert not (job / "RELION_JOB_ABORT_NOW").exists()
    assert not (job / "RELION_OUTPUT_NODES.star").exists()
    assert partials(job) == []
    done = len(list((job / "Movies").glob("*.mrc")))
    assert 2 <= done < n, f"the abort came too late to test: {done} done"
    assert "aborted" in err.strip().splitlines()[-1]

    # "Continue" after an abort finishes the rest and succeeds
    args = ("--model", "slow.pt", "--device", "cpu")
    code, out, err = relion_in_process(project, capsys, *args)
    assert code == 0, err
    assert f"skipped {done}" in out
    assert exit_files(job) == ["RELION_JOB_EXIT_SUCCESS"]
    assert len(read_star(job / "denoised_micrographs.star")["micrographs"].table) == n


def test_abort_file_present_at_start_aborts_without_work(tmp_path, capsys):
    project = make_project(tmp_path)
    job = project / JOB
    job.mkdir(parents=True)
    (job / "RELION_JOB_ABORT_NOW").touch()
    code, _, _ = relion_in_process(project, capsys, "--model", "affine.pt")
    assert code == 2
    assert exit_files(job) == ["RELION_JOB_EXIT_ABORTED"]
    assert sorted(p.name for p in job.iterdir()) == ["RELION_JOB_EXIT_ABORTED"]


def test_unknown_parameter_fails_with_the_reason_in_stderr(tmp_path):
    project = make_project(tmp_path)
    run = relion(project, "--modle", "affine.pt")
    assert run.returncode == 1
    assert exit_files(project / JOB) == ["RELION_JOB_EXIT_FAILURE"]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("cryodenoise-relion: error: unknown parameter --modle")
    assert "did you mean --model?" in last
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("out", "holds"),
    [
        ("MotionCorr/job002/", f"--in_mics {IN_MICS}"),
        ("MotionCorr/", f"--in_mics {IN_MICS}"),
        ("./", f"--in_mics {IN_MICS}"),
        ("MotionCorr/job002/Movies/", "the input micrograph MotionCorr/job002/Movies/mic_0000"),
    ],
)
def test_output_folder_of_the_input_job_is_refused_and_left_untouched(tmp_path, out, holds):
    """--o at the input's job folder (or above it) would replace that job's exit file and
    write beside its micrographs: the job refuses before writing anything."""
    project = make_project(tmp_path)
    motioncorr = project / "MotionCorr/job002"
    (motioncorr / "RELION_JOB_EXIT_SUCCESS").touch()
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    command = job_command("--model", "affine.pt", "--device", "cpu")
    command[command.index("--o") + 1] = out
    run = subprocess.run(command, cwd=project, env=job_env(), **_captured(120))
    assert run.returncode == 1
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(f"cryodenoise-relion: error: --o {out} holds {holds}")
    assert "another job's folder" in line and line.endswith("nothing was written")
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before
    assert exit_files(motioncorr) == ["RELION_JOB_EXIT_SUCCESS"]


def test_a_misspelt_parameter_with_o_at_the_input_job_leaves_that_job_alone(tmp_path):
    """A parameter error writes RELION_JOB_EXIT_FAILURE into --o; when --o is the input's
    job folder, that replaced the input job's RELION_JOB_EXIT_SUCCESS."""
    project = make_project(tmp_path)
    motioncorr = project / "MotionCorr/job002"
    (motioncorr / "RELION_JOB_EXIT_SUCCESS").touch()
    command = job_command("--modle", "affine.pt")
    command[command.index("--o") + 1] = "MotionCorr/job002/"
    run = subprocess.run(command, cwd=project, env=job_env(), **_captured(120))
    assert run.returncode == 1 and "unknown parameter --modle" in run.stderr
    assert exit_files(motioncorr) == ["RELION_JOB_EXIT_SUCCESS"]


def test_continue_with_other_binning_is_refused_not_mixed_in_one_star(tmp_path, capsys):
    """Finished micrographs are kept on Continue; with --bin changed the STAR would list
    binned and unbinned files at one pixel size. The job refuses and changes nothing."""
    project = make_project(tmp_path)
    job = project / JOB
    run = relion(project, "--model", "affine.pt", "--device", "cpu", "--bin", "2")
    assert run.returncode == 0, run.stderr
    (job / "Movies/mic_0002.mrc").unlink()  # e.g. aborted before the last one
    star = (job / "denoised_micrographs.star").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in (job / "Movies").iterdir()}

    run = relion(project, "--model", "affine.pt", "--device", "cpu")  # bin left out
    assert run.returncode == 1
    assert exit_files(job) == ["RELION_JOB_EXIT_FAILURE"]
    assert run.stderr.strip().splitlines()[-1] == (
        f"cryodenoise-relion: error: the micrographs in {JOB}Movies/ were denoised with "
        "--bin 2, this run asks for no binning: one STAR would list both at one pixel size. "
        f"Run these settings as a new job, or delete the .mrc files in {JOB}Movies/ to "
        "redo them all"
    )
    assert {p: p.stat().st_mtime_ns for p in (job / "Movies").iterdir()} == stamps
    assert (job / "denoised_micrographs.star").read_text() == star

    # the same binning (written another way) continues; --bin 1 is no binning
    code, out, err = relion_in_process(project, capsys, "--model", "affine.pt", "--bin", "2.0")
    assert code == 0, err
    assert "denoised 1, skipped 2" in out
    optics = read_star(job / "denoised_micrographs.star")["optics"].records()
    assert optics[0]["rlnMicrographPixelSize"] == "1.770000"
    for name in ("mic_0000.mrc", "mic_0001.mrc", "mic_0002.mrc"):
        (job / "Movies" / name).unlink()
    code, _, err = relion_in_process(project, capsys, "--model", "affine.pt", "--bin", "1")
    assert code == 0, err
    code, _, err = relion_in_process(project, capsys, "--model", "affine.pt")
    assert code == 0, err


def test_failed_continue_removes_the_output_nodes_of_the_earlier_success(tmp_path):
    """RELION reads RELION_OUTPUT_NODES.star of a job that succeeded (or that the user marks
    as finished): a Continue that fails must not leave the earlier success's file, which
    would declare a STAR that now lists only part of the input."""
    project = make_project(tmp_path)
    job = project / JOB
    params = ("--model", "affine.pt", "--device", "cpu")
    run = relion(project, *params)
    assert run.returncode == 0, run.stderr
    assert (job / "RELION_OUTPUT_NODES.star").is_file()
    star = project / IN_MICS
    good = star.read_text()
    row = next(line for line in good.splitlines() if "mic_0002.mrc" in line)
    star.write_text(good.replace(row, row + "\n" + row.replace("mic_0002", "mic_0003")))

    run = relion(project, *params)  # Continue, with a micrograph that is not there
    assert run.returncode == 1
    assert "denoising failed" in run.stderr.strip().splitlines()[-1]
    assert exit_files(job) == ["RELION_JOB_EXIT_FAILURE"]
    assert not (job / "RELION_OUTPUT_NODES.star").exists()
    assert len(list((job / "Movies").glob("*.mrc"))) == 3  # the finished ones are kept

    (job / "RELION_JOB_ABORT_NOW").touch()  # an aborted Continue writes none either
    run = relion(project, *params)
    assert run.returncode == 2
    assert sorted(p.name for p in job.glob("RELION_*")) == ["RELION_JOB_EXIT_ABORTED"]

    star.write_text(good)  # a Continue that succeeds declares its STAR again
    run = relion(project, *params)
    assert run.returncode == 0, run.stderr
    assert read_star(job / "RELION_OUTPUT_NODES.star")["output_nodes"].records() == [
        {
            "rlnPipeLineNodeName": "External/job003/denoised_micrographs.star",
            "rlnPipeLineNodeTypeLabel": "MicrographGroupMetadata.star.relion",
        }
    ]


def test_tomograms_star_fails_with_one_line_saying_what_it_is(tmp_path):
    project = make_project(tmp_path, n=1)
    star = project / "Tomograms/job010/tomograms.star"
    star.parent.mkdir(parents=True)
    star.write_text(RELION5_TOMOGRAMS)
    command = job_command("--model", "affine.pt", "--device", "cpu")
    command[command.index("--in_mics") + 1] = "Tomograms/job010/tomograms.star"
    run = subprocess.run(command, cwd=project, env=job_env(), **_captured(120))
    assert run.returncode == 1
    assert exit_files(project / JOB) == ["RELION_JOB_EXIT_FAILURE"]
    assert run.stderr.strip().splitlines() == [
        "cryodenoise-relion: error: --in_mics Tomograms/job010/tomograms.star is a RELION 5 "
        "tomogram list (rlnTomoReconstructedTomogram): this job denoises micrographs; denoise "
        "tomograms with: cryodenoise denoise Tomograms/job010/tomograms.star -o DIR -m unet-3d"
    ]


@pytest.mark.parametrize("folder", ["MotionCorr/job002/", "MotionCorr/job002/Movies"])
def test_in_mics_folder_fails_saying_a_star_is_expected(tmp_path, folder):
    project = make_project(tmp_path, n=1)
    command = job_command("--model", "affine.pt", "--device", "cpu")
    command[command.index("--in_mics") + 1] = folder
    run = subprocess.run(command, cwd=project, env=job_env(), **_captured(120))
    assert run.returncode == 1
    assert exit_files(project / JOB) == ["RELION_JOB_EXIT_FAILURE"]
    assert run.stderr.strip().splitlines() == [
        f"cryodenoise-relion: error: --in_mics {folder} is a folder: this job takes a "
        "micrographs STAR file (e.g. MotionCorr/job002/corrected_micrographs.star)"
    ]


def test_failed_micrograph_gives_failure_with_reason(tmp_path, capsys):
    project = make_project(tmp_path)
    (project / "MotionCorr/job002/Movies/mic_0001.mrc").unlink()
    params = ("--model", "affine.pt", "--device", "cpu", "--in_coords", "x.star")
    code, _, err = relion_in_process(project, capsys, *params)
    assert code == 1
    assert exit_files(project / JOB) == ["RELION_JOB_EXIT_FAILURE"]
    assert "mic_0001.mrc" in err
    assert "--in_coords x.star ignored" in err
    assert "denoising failed" in err.strip().splitlines()[-1]
    assert not (project / JOB / "RELION_OUTPUT_NODES.star").exists()


def test_micrographs_sharing_a_file_name_fail_at_once_naming_both(tmp_path):
    """GridSquare_1/mic.mrc and GridSquare_2/mic.mrc would be denoised to one file: the job
    fails before any work with one line naming both, not the output guard's riddle."""
    project = make_project(tmp_path, n=2)
    star = project / IN_MICS
    for i in (0, 1):
        folder = project / f"MotionCorr/job002/Movies/GridSquare_{i}"
        folder.mkdir()
        (project / f"MotionCorr/job002/Movies/mic_{i:04d}.mrc").rename(folder / "mic.mrc")
        text = star.read_text().replace(
            f"Movies/mic_{i:04d}.mrc", f"Movies/GridSquare_{i}/mic.mrc"
        )
        star.write_text(text)
    run = relion(project, "--model", "affine.pt", "--train", "0.05", "--device", "cpu")
    assert run.returncode == 1
    assert exit_files(project / JOB) == ["RELION_JOB_EXIT_FAILURE"]
    assert not (project / JOB / "Training").exists()  # refused before training, too
    assert run.stderr.strip().splitlines() == [
        f"cryodenoise-relion: error: {IN_MICS}: MotionCorr/job002/Movies/GridSquare_0/mic.mrc "
        "and MotionCorr/job002/Movies/GridSquare_1/mic.mrc have the same file name; the "
        "denoised micrographs all go to External/job003/Movies/, so their names must be unique"
    ]
    assert not (project / JOB / "Movies").exists()


def test_micrograph_listed_twice_is_denoised_once_keeps_both_rows_with_a_note(tmp_path):
    """A RELION step keeps every row of its input: a micrograph on two rows (e.g. two
    imports joined) is denoised once, both rows point at it, and run.out says so."""
    project = make_project(tmp_path)
    star = project / IN_MICS
    rows = [line for line in star.read_text().splitlines() if line.startswith("MotionCorr/")]
    name = "MotionCorr/job002/Movies/mic_0001.mrc"
    again = rows[1].replace("11.000000", "21.000000").replace(f" {name}", f" ./{name}")
    star.write_text(star.read_text().replace(rows[2], again + "\n" + rows[2]))
    job = project / JOB
    run = relion(project, "--model", "affine.pt", "--device", "cpu")
    assert run.returncode == 0, run.stderr
    notes = [line for line in run.stdout.splitlines() if "note:" in line]
    assert notes == [
        f"cryodenoise-relion: note: {IN_MICS} lists MotionCorr/job002/Movies/mic_0001.mrc "
        "(2 rows) more than once: each is denoised once, and denoised_micrographs.star keeps "
        "every row, as the input has them"
    ]
    assert "denoised 3, skipped 0, failed 0" in run.stdout
    assert sorted(p.name for p in (job / "Movies").iterdir()) == [
        "mic_0000.mrc",
        "mic_0001.mrc",
        "mic_0002.mrc",
    ]
    mics_in = read_star(star)["micrographs"].table
    mics_out = read_star(job / "denoised_micrographs.star")["micrographs"].table
    assert mics_out["rlnMicrographName"].tolist() == [
        f"External/job003/Movies/mic_{i:04d}.mrc" for i in (0, 1, 1, 2)
    ]
    others = [c for c in mics_in.columns if c != "rlnMicrographName"]
    assert mics_out[others].equals(mics_in[others])  # every row, its own values, in order
    assert mics_out["rlnAccumMotionTotal"].tolist()[1:3] == ["11.000000", "21.000000"]


def test_train_on_even_odd_sums_then_denoise(tmp_path, capsys):
    project = make_project(tmp_path, n=2, size=64, halves=True)
    job = project / JOB
    params = ("--model", "affine.pt", "--train", "0.05", "--device", "cpu")
    run = relion(project, *params)
    assert run.returncode == 0, run.stderr
    assert exit_files(job) == ["RELION_JOB_EXIT_SUCCESS"]
    assert (job / "denoise_model.pt").is_file()
    assert "cryodenoise train --star" in run.stdout
    assert f"--model {JOB}denoise_model.pt" in run.stdout
    star = read_star(job / "denoised_micrographs.star")["micrographs"].table
    assert all((project / name).is_file() for name in star["rlnMicrographName"])
    # Continue keeps the trained model
    code, out, err = relion_in_process(project, capsys, *params)
    assert code == 0, err
    assert "trained by an earlier run" in out
    # an interrupted training (its checkpoint in Training/, no final model) starts again
    (job / "denoise_model.pt").unlink()
    assert (job / "Training" / "model.ckpt.pt").is_file()
    code, out, err = relion_in_process(project, capsys, *params)
    assert code == 0, err
    assert (job / "denoise_model.pt").is_file() and "trained by an earlier run" not in out


def test_abort_during_training_speaks_relion_not_ctrl_c(tmp_path):
    """RELION's Abort stops the training; run.err says so in RELION's words (abort,
    Continue), not the terminal's Ctrl-C and --resume, which mean nothing there."""
    project = make_project(tmp_path, n=2, size=64, halves=True)
    job = project / JOB
    proc = _start_job(project, "--model", "affine.pt", "--train", "5", "--device", "cpu")
    try:
        seen = read_until(proc, "step ")  # the first step is reported at once
        (job / "RELION_JOB_ABORT_NOW").touch()  # the GUI's abort button
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(seen) + rest
    assert proc.returncode == 2, err
    assert exit_files(job) == ["RELION_JOB_EXIT_ABORTED"]
    assert "job aborted: training stops after this step" in err
    stopped = next(line for line in err.splitlines() if line.startswith("training stopped"))
    assert stopped.endswith("(job aborted); Continue the job to train again")
    assert "Ctrl-C" not in err and "--resume" not in err and "Traceback" not in err
    assert "aborted" in err.strip().splitlines()[-1]


def test_train_without_half_sums_fails_and_leaves_no_empty_folder(tmp_path, capsys):
    project = make_project(tmp_path, n=2, size=64, halves=False)
    job = project / JOB
    code, _out, err = relion_in_process(
        project, capsys, "--model", "affine.pt", "--train", "0.05", "--device", "cpu"
    )
    assert code == 1 and "half sums" in err, err
    assert exit_files(job) == ["RELION_JOB_EXIT_FAILURE"]
    assert not (job / "Training").exists()


# --------------------------------------------------------------------------- in-process


def test_parse_relion_style_arguments():
    args = parse_job_args(
        ["--o", "External/job003/", "--in_mics", "a.star", "--j", "4", "--device", "-1"]
        + ["--model", "my", "model.pt", "--restore_size", "--pixel-size=1.5", "--in_parts", "p"]
    )
    assert args.outdir == "External/job003/" and args.in_mics == "a.star"
    assert args.threads == 4 and args.device == "-1" and args.model == "my model.pt"
    assert args.denoise == [
        "--device",
        "-1",
        "--restore-size",
        "--pixel-size",
        "1.5",
    ]
    assert args.notes and "--in_parts" in args.notes[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--in_mics", "a.star"], "--o JOB_FOLDER is missing"),
        (["--o", "J/"], "--in_mics is missing"),
        (["--o", "J/", "--in_mics", "a.star", "--bin"], "--bin needs a value"),
        (["--o", "J/", "--in_mics", "a.star", "--train", "soon"], "--train soon: not a float"),
        (["--o", "J/", "--in_mics", "a.star", "--train", "0"], "--train 0: must be > 0"),
        (["--o", "J/", "--in_mics", "a.star", "--bin", "2", "--pixel_size", "2"], "not both"),
        (["--o", "J/", "--in_mics", "a.star", "--restore_size", "yes"], "takes no value"),
        (["--o", "J/", "--in_mics", "a.star", "--train", "5", "--bin", "2"], "leave out --bin"),
        (["--o", "J/", "--in_mics", "a", "--j", "1", "--j", "2"], "--j is given twice"),
        (["stray", "--o", "J/"], "unexpected argument 'stray'"),
    ],
)
def test_parse_errors_are_one_line(argv, message):
    with pytest.raises(RelionJobError, match=message.replace("(", r"\(")):
        parse_job_args(argv)


def test_output_subfolder_follows_relion_layout():
    assert output_subfolder(["MotionCorr/job002/Movies/a.mrc", "MotionCorr/job002/Movies/b.mrc"])
    assert output_subfolder(["MotionCorr/job002/Movies/a.mrc"]) == "Movies"
    grids = ["MotionCorr/job002/Movies/G1/Data/a.mrc", "MotionCorr/job002/Movies/G2/Data/b.mrc"]
    assert output_subfolder(grids) == "Movies"
    assert output_subfolder(["Micrographs/a.mrc"]) == "Micrographs"
    assert output_subfolder(["MotionCorr/job002/a.mrc"]) == ""
    assert output_subfolder(["/data/mics/a.mrc"]) == ""
    assert output_subfolder(["../elsewhere/a.mrc"]) == ""


def test_console_script_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["cryodenoise-relion"] == "napari_cryodenoise.relion:main"
