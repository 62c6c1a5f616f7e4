"""The command line RELION gives an External job, and what it asks of this one.

RELION passes ``--o JOB/ --in_mics STAR --j N`` and the Params tab's labels and values as
``--LABEL VALUE`` (a label without a value is a flag; "Additional arguments" come as typed).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

__all__ = [
    "PROG",
    "USAGE",
    "JobArgs",
    "RelionJobError",
    "output_subfolder",
    "parse_job_args",
    "split_args",
]

PROG = "cryodenoise-relion"

#: Job parameter (label on the Params tab, ``-`` or ``_``) -> ``cryodenoise denoise`` option.
_DENOISE_OPTIONS = {
    "model": "--model",
    "bin": "--bin",
    "pixel_size": "--pixel-size",
    "device": "--device",
    "precision": "--precision",
    "gaussian": "--gaussian",
    "lowpass": "--lowpass",
    "patch_size": "--patch-size",
    "batch_size": "--batch-size",
}
#: Parameters that are flags (given without a value).
_FLAGS = {"restore_size": "--restore-size", "ensemble": "--ensemble"}
#: Other input nodes RELION may pass; a denoising job has no use for them.
_IGNORED_INPUTS = ("in_movies", "in_parts", "in_coords", "in_3dref", "in_mask")
_KNOWN = sorted({"o", "in_mics", "j", "train", *_DENOISE_OPTIONS, *_FLAGS, *_IGNORED_INPUTS})

USAGE = f"""usage: {PROG} --o External/jobNNN/ --in_mics MICS.star [--j N] [--PARAM VALUE ...]

Denoise micrographs as a RELION External job (run from the RELION project directory).
Parameters (RELION's Params tab: label, value):
  model NAME|PATH    model alias or file (default unet); with train: the starting point
  bin N|auto         Fourier-bin by N before denoising ('auto': towards ~2.4 A/px)
  pixel_size A       Fourier-bin to this pixel size instead
  restore_size       (no value) pad binned results back to the input grid
  ensemble           (no value) average over 8 rotations/mirrors (8x the compute)
  device D           auto, cpu, cuda, cuda:N (default auto)
  precision P        fp32, bf16 or fp16
  gaussian SIGMA     Gaussian pre-filter sigma in pixels
  lowpass F          Fourier low-pass factor before denoising
  patch_size N       output pixels per tile side
  batch_size N       tiles per forward pass
  train MINUTES      first train a Noise2Noise model for MINUTES on the even/odd sums of the
                     input (rlnMicrographNameEven/Odd columns, or X_EVN/X_ODD files beside
                     the micrographs), then denoise with it
--j N: CPU threads (RELION's Running tab). --in_movies/--in_parts/--in_coords/--in_3dref/
--in_mask are accepted and ignored.
"""


class RelionJobError(Exception):
    """A problem with the job's arguments or inputs, reported as one line."""


@dataclass
class JobArgs:
    """The parsed command line of the job.

    Attributes
    ----------
    outdir : str
        The job folder (``--o``), relative to the project directory.
    in_mics : str
        The input micrographs STAR (``--in_mics``).
    threads : int or None
        CPU threads (``--j``).
    train_minutes : float or None
        Train for this long before denoising (``--train``).
    denoise : list of str
        ``cryodenoise denoise`` options from the job's parameters (not ``--model``).
    model : str or None
        The model to denoise with, or to start training from (``--model``).
    device : str or None
        ``--device``, for training and denoising.
    notes : list of str
        Arguments accepted but not used, to mention in the log.

    """

    outdir: str
    in_mics: str | None = None
    threads: int | None = None
    train_minutes: float | None = None
    denoise: list[str] = field(default_factory=list)
    model: str | None = None
    device: str | None = None
    notes: list[str] = field(default_factory=list)


def split_args(argv: Sequence[str]) -> list[tuple[str, str | None]]:
    """Pair names and values: ``--a v1 v2 --flag`` -> ``[("a", "v1 v2"), ("flag", None)]``.

    Words after a name up to the next ``--`` word are its value (RELION does not quote
    values, so a path with spaces arrives as several words); ``-1`` is a value.
    """
    items: list[tuple[str, str | None]] = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token.lstrip("-").partition("=")
            items.append((name.replace("-", "_"), value if eq else None))
        elif not items:
            raise RelionJobError(f"unexpected argument {token!r} (parameters are --NAME VALUE)")
        else:
            name, value = items[-1]
            items[-1] = (name, token if value is None else f"{value} {token}")
    return items


def parse_job_args(argv: Sequence[str]) -> JobArgs:
    """Parse RELION's command line; raise :class:`RelionJobError` for anything unusable."""
    items = split_args(argv)
    values = dict(items)
    if not values.get("o"):
        raise RelionJobError("--o JOB_FOLDER is missing (RELION passes --o External/jobNNN/)")
    args = JobArgs(outdir=values["o"])
    seen: set[str] = set()
    for name, value in items:
        if name in seen:
            raise RelionJobError(f"--{name} is given twice")
        seen.add(name)
        if name not in _KNOWN:
            close = difflib.get_close_matches(name, _KNOWN, n=1)
            hint = f" (did you mean --{close[0]}?)" if close else ""
            raise RelionJobError(
                f"unknown parameter --{name}{hint}; known: "
                + ", ".join(k for k in _KNOWN if k != "o")
            )
        if name in _FLAGS:
            if value is not None:
                raise RelionJobError(f"--{name} takes no value (got {value!r})")
            args.denoise.append(_FLAGS[name])
            continue
        if name in _IGNORED_INPUTS:
            args.notes.append(f"--{name} {value or ''} ignored: this job denoises --in_mics")
            continue
        if value is None or not value.strip():
            raise RelionJobError(f"--{name} needs a value")
        if name == "in_mics":
            args.in_mics = value
        elif name == "j":
            args.threads = _number(name, value, int)
        elif name == "train":
            args.train_minutes = _number(name, value, float)
        elif name != "o":
            if name == "model":
                args.model = value  # for training too, given to denoise at the end
                continue
            args.denoise += [_DENOISE_OPTIONS[name], value]
            if name == "device":
                args.device = value
    if not args.in_mics:
        raise RelionJobError(
            "--in_mics is missing: set 'Input micrographs' on the External job's Input tab "
            "(e.g. MotionCorr/job002/corrected_micrographs.star)"
        )
    if "bin" in seen and "pixel_size" in seen:
        raise RelionJobError("give --bin or --pixel_size, not both")
    if args.train_minutes is not None and ({"bin", "pixel_size"} & seen):
        raise RelionJobError(
            "--train learns the noise of the micrographs at their own pixel size: leave out "
            "--bin/--pixel_size when training (the trained model must see the same scale)"
        )
    return args


def _number(name: str, value: str, kind: Callable[[str], float]) -> float:
    try:
        number = kind(value)
    except ValueError:
        raise RelionJobError(f"--{name} {value}: not a {kind.__name__} number") from None
    if not number > 0:
        raise RelionJobError(f"--{name} {value}: must be > 0")
    return number


def output_subfolder(names: Sequence[str]) -> str:
    """Where the denoised micrographs go below the job folder, RELION style.

    The common folder of the micrographs below their own job folder
    (``MotionCorr/job002/Movies/GridSquare_1/x.mrc`` -> ``Movies/GridSquare_1``); empty
    (the job folder itself) for absolute paths or paths outside the project.
    """
    common: list[str] | None = None
    for name in names:
        parts = list(PurePosixPath(name.replace("\\", "/")).parts[:-1])
        if not parts or parts[0] == "/" or ".." in parts:
            return ""
        if len(parts) >= 2 and re.fullmatch(r"job\d+", parts[1]):
            parts = parts[2:]
        if common is None:
            common = parts
        else:
            n = 0
            while n < min(len(common), len(parts)) and common[n] == parts[n]:
                n += 1
            common = common[:n]
    return "/".join(common or [])
