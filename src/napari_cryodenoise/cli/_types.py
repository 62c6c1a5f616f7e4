"""Argument types shared by the ``cryodenoise`` subcommands (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse
import math

__all__ = ["bin_arg", "fraction", "positive_float", "positive_int"]


def positive_int(text: str) -> int:
    """Parse an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def positive_float(text: str) -> float:
    """Parse a finite number > 0."""
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def fraction(text: str) -> float:
    """Parse a number in [0, 1)."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def bin_arg(text: str) -> float | str:
    """Parse a binning factor: a positive number or ``auto`` (from the header pixel size)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return positive_float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive number or 'auto', got {text}"
        ) from None
