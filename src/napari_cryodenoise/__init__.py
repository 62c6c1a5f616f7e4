"""Denoise cryo-EM micrographs, movies and tomograms with deep networks.

The public API is a handful of names; everything here works without napari or
Qt, from scripts and from the ``cryodenoise`` command line.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-cryodenoise")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
