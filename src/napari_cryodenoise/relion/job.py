"""``cryodenoise-relion``: the job itself (train, denoise, report to RELION)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..errors import CryoDenoiseError
from . import protocol as rp
from .arguments import (
    PROG,
    USAGE,
    JobArgs,
    RelionJobError,
    output_subfolder,
    parse_job_args,
    split_args,
)

__all__ = ["OUT_STAR", "TRAINED_MODEL", "main"]

OUT_STAR = "denoised_micrographs.star"
TRAINED_MODEL = "denoise_model.pt"
#: The binning options of the job's micrographs (hidden), compared on Continue.
SCALE_RECORD = ".cryodenoise_binning"


def _cli(argv: list[str]) -> int:
    """``cryodenoise ARGV`` in this process (its own one-line errors on stderr)."""
    from ..cli import main as cryodenoise

    print("running: cryodenoise " + " ".join(_quote(a) for a in argv), flush=True)
    sys.stderr.flush()
    return cryodenoise(argv)


def _quote(arg: str) -> str:
    return f"'{arg}'" if not arg or re.search(r"[\s'\"$]", arg) else arg


class _Failed(Exception):
    """A step of the job failed; the message is the reason."""


def _run(args: JobArgs, job: Path) -> None:
    """Train (optionally) and denoise; raise :class:`_Failed` with the reason."""
    from ..io.star import find_star_table

    if os.path.isdir(args.in_mics):
        raise _Failed(
            f"--in_mics {args.in_mics} is a folder: this job takes a micrographs STAR file "
            "(e.g. MotionCorr/job002/corrected_micrographs.star)"
        )
    if not os.path.isfile(args.in_mics):
        raise _Failed(f"--in_mics {args.in_mics}: no such file (relative to {os.getcwd()})")
    try:
        names = [
            row["rlnMicrographName"] for row in find_star_table(args.in_mics, "rlnMicrographName")
        ]
    except (CryoDenoiseError, OSError, ValueError) as err:  # the reader's one-line message
        if _is_tomogram_list(args.in_mics):
            raise _Failed(
                f"--in_mics {args.in_mics} is a RELION 5 tomogram list "
                "(rlnTomoReconstructedTomogram): this job denoises micrographs; denoise "
                f"tomograms with: cryodenoise denoise {args.in_mics} -o DIR -m unet-3d"
            ) from None
        raise _Failed(
            str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        ) from None
    sub = output_subfolder(names)
    outdir = job / sub if sub else job
    _refuse_shared_names(names, args.in_mics, outdir)  # before any work, training included
    _note_repeated(names, args.in_mics)
    _keep_one_scale(job, outdir, _scale_options(args.denoise))
    threads = ["--threads", str(args.threads)] if args.threads else []
    device = ["--device", args.device] if args.device else []
    model = args.model
    if args.train_minutes is not None:
        model = str(_train(args, job, threads + device))
    model_args = [*args.denoise, *(["--model", model] if model else [])]
    code = _cli(
        ["denoise", args.in_mics, "-o", str(outdir), "--out-star", str(job / OUT_STAR)]
        + ["--skip-existing", *model_args, *threads]
    )
    if code != 0:
        raise _Failed(f"denoising failed (cryodenoise denoise exit code {code}, see above)")


def _is_tomogram_list(star: str) -> bool:
    from ..io.star import find_star_table

    try:
        return bool(find_star_table(star, "rlnTomoReconstructedTomogram"))
    except (CryoDenoiseError, OSError, ValueError):
        return False


def _refuse_shared_names(names: Sequence[str], star: str, outdir: Path) -> None:
    """One clear line when two micrographs share a file name: their outputs would clash."""
    seen: dict[str, str] = {}
    for name in names:
        base = Path(name).name
        if base in seen and os.path.normpath(seen[base]) != os.path.normpath(name):
            raise _Failed(
                f"{star}: {seen[base]} and {name} have the same file name; the denoised "
                f"micrographs all go to {outdir}/, so their names must be unique"
            )
        seen[base] = name


def _note_repeated(names: Sequence[str], star: str) -> None:
    """One note in run.out naming the micrographs listed on more than one row."""
    counts = Counter(os.path.normpath(name) for name in names)
    repeated = [f"{name} ({n} rows)" for name, n in counts.items() if n > 1]
    if repeated:
        shown = ", ".join(repeated[:3]) + (
            f" and {len(repeated) - 3} more" if len(repeated) > 3 else ""
        )
        print(
            f"{PROG}: note: {star} lists {shown} more than once: each is denoised once, and "
            f"{OUT_STAR} keeps every row, as the input has them",
            flush=True,
        )


def _scale_options(denoise: Sequence[str]) -> str:
    """The options that set the pixel size of the outputs, as one text ('' for none)."""
    out = []
    for i, option in enumerate(denoise):
        if option in ("--bin", "--pixel-size"):
            value = denoise[i + 1]
            with contextlib.suppress(ValueError):
                value = f"{float(value):g}"
            if not (option == "--bin" and value == "1"):  # --bin 1: no binning
                out.append(f"{option} {value}")
        elif option == "--restore-size":
            out.append(option)
    return " ".join(out) if out != ["--restore-size"] else ""  # alone, it changes nothing


def _keep_one_scale(job: Path, outdir: Path, scale: str) -> None:
    """Refuse a Continue whose binning differs from the micrographs already there.

    Finished micrographs are kept (``--skip-existing``), so a run with other binning
    would list micrographs of two pixel sizes under one optics group's pixel size.
    """
    from ..io.atomic import atomic_write_text

    record = job / SCALE_RECORD
    before = record.read_text().strip() if record.is_file() else None
    if before is not None and before != scale and any(outdir.glob("*.mrc")):
        raise _Failed(
            f"the micrographs in {outdir}/ were denoised with {before or 'no binning'}, this "
            f"run asks for {scale or 'no binning'}: one STAR would list both at one pixel "
            f"size. Run these settings as a new job, or delete the .mrc files in {outdir}/ to "
            "redo them all"
        )
    if before != scale:
        atomic_write_text(record, scale + "\n")


def _train(args: JobArgs, job: Path, extra: list[str]) -> Path:
    """Train on the input's even/odd sums (once: Continue reuses a finished model)."""
    final = job / TRAINED_MODEL
    if final.is_file():
        print(f"training: using {final}, trained by an earlier run of this job", flush=True)
        return final
    work = job / "Training"
    work.mkdir(parents=True, exist_ok=True)
    # an interrupted training starts again: its best model and checkpoint are replaced
    argv = ["train", "--star", args.in_mics, "-o", str(work / "model.pt"), "--overwrite"]
    argv += ["--minutes", f"{args.train_minutes:g}", *extra]
    if args.model:
        argv += ["--init", args.model]
    from ..cli._stop_words import relion_job

    with relion_job():  # an abort is RELION's, and so is the way on (Continue)
        code = _cli(argv)
    if code != 0:
        with contextlib.suppress(OSError):
            work.rmdir()  # only when empty: a failed start leaves no empty folder behind
        raise _Failed(f"training failed (cryodenoise train exit code {code}, see above)")
    os.replace(work / "model.pt", final)
    return final


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; return 0 (success), 1 (failure) or 2 (aborted), as RELION's programs do."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    try:
        args = parse_job_args(argv)
    except RelionJobError as err:
        given = dict(_safe_split(argv))
        out, in_mics = given.get("o"), given.get("in_mics")
        if out and not (in_mics and _foreign_folder(out, in_mics)):  # not another job's
            rp.prepare(Path(out))
            rp.finish(Path(out), rp.FAILURE)
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    job = Path(args.outdir)
    clash = _foreign_folder(args.outdir, args.in_mics)
    if clash:  # another job's folder: leave its files (exit files included) alone
        print(f"{PROG}: error: {clash}", file=sys.stderr)
        return 1
    rp.prepare(job)
    for note in args.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    watcher = rp.AbortWatcher(job / rp.ABORT_NOW)
    terminated = threading.Event()
    previous_term = rp.on_sigterm(terminated)
    reason: str | None = None
    try:
        try:
            if (job / rp.ABORT_NOW).exists():
                watcher.requested.set()
            else:
                watcher.start()
                _run(args, job)
        finally:
            watcher.stop()
            rp.drain_interrupt()
    except KeyboardInterrupt:
        reason = "interrupted; Continue resumes the job"
    except _Failed as err:
        reason = str(err)
    finally:
        if previous_term is not None:
            rp.restore_sigterm(previous_term)
    if terminated.is_set() and not watcher.requested.is_set():
        reason = "terminated by SIGTERM (e.g. the queue's time limit); Continue resumes the job"
    if watcher.requested.is_set():
        (job / rp.ABORT_NOW).unlink(missing_ok=True)
        rp.finish(job, rp.ABORTED)
        print(f"{PROG}: aborted ({rp.ABORT_NOW}); Continue resumes the job", file=sys.stderr)
        return 2
    if reason is not None:
        rp.finish(job, rp.FAILURE)
        print(f"{PROG}: error: {reason}", file=sys.stderr)
        return 1
    from ..io.atomic import atomic_write_text

    atomic_write_text(job / rp.NODES_FILE, rp.nodes_star(rp.node_name(job / OUT_STAR)))
    rp.finish(job, rp.SUCCESS)
    print(f"{PROG}: done: {rp.node_name(job / OUT_STAR)}", flush=True)
    return 0


def _foreign_folder(outdir: str, in_mics: str) -> str | None:
    """Why ``--o`` must not be used (it holds the input STAR or micrographs), or None."""
    from ..io.star import find_star_table

    folder = os.path.realpath(outdir)
    inputs = [in_mics]
    with contextlib.suppress(CryoDenoiseError, OSError, ValueError):  # _run reports those
        inputs += [
            row["rlnMicrographName"] for row in find_star_table(in_mics, "rlnMicrographName")
        ]
    for path in inputs:
        if os.path.commonpath([folder, os.path.realpath(path)]) == folder:
            what = "--in_mics" if path == in_mics else "the input micrograph"
            return (
                f"--o {outdir} holds {what} {path}: it is another job's folder (or above "
                "one), and this job writes into its own folder only (RELION passes "
                "--o External/jobNNN/); nothing was written"
            )
    return None


def _safe_split(argv: Sequence[str]) -> list[tuple[str, str | None]]:
    try:
        return split_args(argv)
    except RelionJobError:
        return []
