"""Exceptions shared by the compute core, the CLI and the napari layer."""

from __future__ import annotations


class CryoDenoiseError(Exception):
    """Base class of every error this package raises on purpose."""


class Cancelled(CryoDenoiseError):
    """Long work stopped because the caller's cancel callback asked for it."""


class InputError(CryoDenoiseError, ValueError):
    """An input file or array cannot be used; the message names it and says why."""


class ImageTooSmallError(InputError):
    """An image is smaller than the smallest size a network or operation accepts."""


class WeightsUnavailableError(CryoDenoiseError):
    """Model weights could not be found or fetched; the message says how to provide them."""
