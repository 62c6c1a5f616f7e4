"""Argument types shared by the ``cryodenoise`` subcommands (argparse ``type=`` callables).

Every number a user types is checked here, at parse time, before any file is read or
written: ``nan``, ``inf`` and values outside a sensible range are refused with one line
that says what the option accepts (argparse prefixes the option name).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ..options import GAUSSIAN_MAX, LOWPASS_MAX, check_gaussian, check_lowpass

__all__ = [
    "GAUSSIAN_MAX",
    "LOWPASS_MAX",
    "bin_arg",
    "bin_factor",
    "check_gaussian",
    "check_lowpass",
    "fraction",
    "frame_groups",
    "gaussian_sigma",
    "int_range",
    "lowpass_factor",
    "nonnegative_float",
    "nonnegative_int",
    "open_fraction",
    "positive_float",
    "positive_int",
]

#: Largest binning factor accepted at parse time (the image size is checked later).
BIN_MAX = 1000.0


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """Parse an integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def nonnegative_int(text: str) -> int:
    """Parse an integer >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def int_range(lo: int, hi: int, what: str = "") -> Callable[[str], int]:
    """An integer type accepting ``lo <= value <= hi``."""
    unit = f" {what}" if what else ""

    def parse(text: str) -> int:
        value = _integer(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}{unit}, got {text}")
        return value

    parse.__name__ = "integer"
    return parse


def positive_float(text: str) -> float:
    """Parse a finite number > 0."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """Parse a finite number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """Parse a number in [0, 1)."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def open_fraction(text: str) -> float:
    """Parse a number strictly between 0 and 1."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def frame_groups(text: str) -> int:
    """Parse ``train --frame-groups``: 0 (off) or at least 4 interleaved frame groups."""
    value = _integer(text)
    if value != 0 and value < 4:
        raise argparse.ArgumentTypeError(
            f"must be 0 (even/odd sums only) or at least 4 frame groups, got {text}"
        )
    return value


def gaussian_sigma(text: str) -> float:
    """Parse ``--gaussian``: a finite sigma in pixels, 0 (off) to :data:`GAUSSIAN_MAX`."""
    value = _number(text)
    problem = check_gaussian(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def lowpass_factor(text: str) -> float:
    """Parse ``--lowpass``: a finite factor from 1 (no-op) to :data:`LOWPASS_MAX`."""
    value = _number(text)
    problem = check_lowpass(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def bin_factor(text: str) -> float:
    """Parse ``--bin``: a finite factor from 1 (no binning) to :data:`BIN_MAX`.

    Whether the binned image keeps enough pixels is checked per file, once its size is
    known.
    """
    value = _number(text)
    if not 1 <= value <= BIN_MAX:
        raise argparse.ArgumentTypeError(
            f"the binning factor must be from 1 (no binning) to {BIN_MAX:g}, got {text}"
        )
    return value


def bin_arg(text: str) -> float | str:
    """Parse ``--bin``: a factor from 1 to :data:`BIN_MAX`, or ``auto`` (from the header)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number from 1 to {BIN_MAX:g} or 'auto', got {text!r}"
        ) from None
    return bin_factor(text)
