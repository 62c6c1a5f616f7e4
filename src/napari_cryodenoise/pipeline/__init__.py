"""Plan and run the denoising of one file or one group of planes (no Qt, no Dask).

The layer between the engine (arrays in, arrays out) and its callers that work on
files: the ``cryodenoise denoise`` command and the batch runner
(:mod:`napari_cryodenoise.batch`). Modules:

* :mod:`.inputs`: which files a run takes (:func:`expand_inputs`), their output names
  (:func:`output_path`);
* :mod:`.plan`: the per-file decisions (2D/stack/volume, models, binning) and refusals;
* :mod:`.files`: :func:`denoise_file`, :func:`denoise_planes`, :func:`splittable_planes`;
* :mod:`.write`: MRC/TIFF/PNG output, atomically.

Importing this package loads neither torch nor Dask.
"""

from __future__ import annotations

from ..options import FORMATS, FileOptions
from .files import FileResult, denoise_file, denoise_planes, splittable_planes
from .inputs import expand_inputs, output_path
from .plan import DEFAULT_2D, DEFAULT_3D, Plan, plan_file
from .write import write_output

__all__ = [
    "DEFAULT_2D",
    "DEFAULT_3D",
    "FORMATS",
    "FileOptions",
    "FileResult",
    "Plan",
    "denoise_file",
    "denoise_planes",
    "expand_inputs",
    "output_path",
    "plan_file",
    "splittable_planes",
    "write_output",
]
