"""Denoising as a RELION External job: the ``cryodenoise-relion`` console script.

RELION runs the job's executable from the project directory as::

    cryodenoise-relion --o External/job005/ --in_mics MotionCorr/job002/corrected_micrographs.star
                       --j 4 --model unet --bin auto --device cuda:0 ...

and :func:`main` turns that into ``cryodenoise train`` / ``cryodenoise denoise`` runs (the
command line, in-process) while following RELION's External-job protocol:

* the denoised micrographs go under the job folder, in the input's folder layout below its
  job folder (``MotionCorr/job002/Movies/x.mrc`` -> ``External/job005/Movies/x.mrc``), and
  ``denoised_micrographs.star`` keeps every block and column of the input STAR;
* ``RELION_OUTPUT_NODES.star`` declares that STAR as a micrographs node (RELION 4/5 form);
* exactly one of ``RELION_JOB_EXIT_SUCCESS`` / ``_FAILURE`` / ``_ABORTED`` at the end; the
  reason of a failure is the last line on stderr (RELION's ``run.err``);
* "Continue" reruns the same command: finished micrographs and a finished training are kept;
* ``RELION_JOB_ABORT_NOW`` (the GUI's abort) stops the run cleanly within about a second.
"""

from .job import main

__all__ = ["main"]
