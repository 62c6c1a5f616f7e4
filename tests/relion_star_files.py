"""STAR files exactly as RELION writes them, shared by the tests that read them.

Trailing spaces and the blank line with one space after each loop are RELION's.
"""

# ruff: noqa: W291, W293, E501  (RELION files, trailing spaces and all)
from __future__ import annotations


def motioncorr_optics(version: int) -> str:
    """The ``data_optics`` block of a MotionCorr job (one optics group: 0.885 A/px, 300 kV).

    With RELION's leading blank line, ``# version`` line and the line with one blank after
    the loop; ``version`` is 30001 (RELION 3.1 and 4) or 50001 (RELION 5).
    """
    return f"""
# version {version}

data_optics

loop_ 
_rlnOpticsGroupName #1 
_rlnOpticsGroup #2 
_rlnMicrographOriginalPixelSize #3 
_rlnVoltage #4 
_rlnSphericalAberration #5 
_rlnAmplitudeContrast #6 
_rlnMicrographPixelSize #7 
opticsGroup1            1     0.885000   300.000000     2.700000     0.100000     0.885000 
 
"""


#: RELION 5 MotionCorr ``corrected_micrographs.star`` of a job that wrote even/odd sums
#: (the ``_rlnMicrographNameEven`` / ``_rlnMicrographNameOdd`` columns): two micrographs.
RELION5_MOTIONCORR_EVEN_ODD = (
    motioncorr_optics(50001)
    + """
# version 50001

data_micrographs

loop_ 
_rlnMicrographName #1 
_rlnMicrographMetadata #2 
_rlnOpticsGroup #3 
_rlnAccumMotionTotal #4 
_rlnMicrographNameEven #5 
_rlnMicrographNameOdd #6 
MotionCorr/job002/Movies/mic_0001.mrc MotionCorr/job002/Movies/mic_0001.star            1    16.420306 MotionCorr/job002/Movies/mic_0001_EVN.mrc MotionCorr/job002/Movies/mic_0001_ODD.mrc 
MotionCorr/job002/Movies/mic_0002.mrc MotionCorr/job002/Movies/mic_0002.star            1    19.121300 MotionCorr/job002/Movies/mic_0002_EVN.mrc MotionCorr/job002/Movies/mic_0002_ODD.mrc 
 
"""
)

#: RELION 5 ``tomograms.star`` of a tomogram reconstruction job with half tomograms (two).
RELION5_TOMOGRAMS = """
# version 50001

data_global

loop_ 
_rlnTomoName #1 
_rlnVoltage #2 
_rlnSphericalAberration #3 
_rlnAmplitudeContrast #4 
_rlnMicrographOriginalPixelSize #5 
_rlnTomoHand #6 
_rlnTomoTiltSeriesPixelSize #7 
_rlnTomoTiltSeriesStarFile #8 
_rlnTomoTomogramBinning #9 
_rlnTomoSizeX #10 
_rlnTomoSizeY #11 
_rlnTomoSizeZ #12 
_rlnTomoReconstructedTomogram #13 
_rlnTomoReconstructedTomogramHalf1 #14 
_rlnTomoReconstructedTomogramHalf2 #15 
TS_01   300.000000     2.700000     0.100000     0.675000    -1.000000     1.350000 AlignTiltSeries/job008/tilt_series/TS_01.star     7.407407        296        296        178 Tomograms/job010/tomograms/rec_TS_01.mrc Tomograms/job010/tomograms/rec_TS_01_half1.mrc Tomograms/job010/tomograms/rec_TS_01_half2.mrc 
TS_02   300.000000     2.700000     0.100000     0.675000    -1.000000     1.350000 AlignTiltSeries/job008/tilt_series/TS_02.star     7.407407        296        296        178 Tomograms/job010/tomograms/rec_TS_02.mrc Tomograms/job010/tomograms/rec_TS_02_half1.mrc Tomograms/job010/tomograms/rec_TS_02_half2.mrc 
 
"""
