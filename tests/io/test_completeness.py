"""output_is_complete: whole MRC/TIFF/PNG files, truncated and junk ones."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.io.completeness import output_is_complete


def test_output_is_complete(tmp_path):
    good = write_mrc(tmp_path / "good.mrc", np.ones((8, 8), np.float32))
    assert output_is_complete(good)
    truncated = tmp_path / "truncated.mrc"
    truncated.write_bytes(good.read_bytes()[:-10])
    assert not output_is_complete(truncated)
    junk = tmp_path / "junk.mrc"
    junk.write_bytes(b"not an mrc file at all" * 100)
    assert not output_is_complete(junk)
    assert not output_is_complete(tmp_path / "missing.mrc")


def test_output_is_complete_tiff_png(tmp_path):
    import tifffile

    tif = tmp_path / "a.tif"
    tifffile.imwrite(tif, np.ones((64, 64), np.float32))
    assert output_is_complete(tif)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(tif.read_bytes()[:-100])
    assert not output_is_complete(cut)
    PIL = pytest.importorskip("PIL.Image")
    png = tmp_path / "a.png"
    PIL.fromarray(np.zeros((16, 16), np.uint8)).save(png)
    assert output_is_complete(png)
    cut = tmp_path / "cut.png"
    cut.write_bytes(png.read_bytes()[:-5])
    assert not output_is_complete(cut)
