import numpy as np
import pytest

from napari_cryodenoise._napari.reader import napari_get_reader
from napari_cryodenoise._napari.writer import WriterError, write_mrc_layer
from napari_cryodenoise.io import read_image, write_mrc


def test_reader_claims_only_what_it_can_read(tmp_path):
    good = write_mrc(tmp_path / "a.mrc", np.ones((16, 16), np.float32), voxel_size=1.3)
    assert napari_get_reader(str(good)) is not None
    bad = tmp_path / "b.mrc"
    bad.write_bytes(b"\x00" * 10)
    assert napari_get_reader(str(bad)) is None
    assert napari_get_reader(str(tmp_path / "c.png")) is None


def test_reader_layer_data(tmp_path):
    data = np.random.default_rng(0).normal(size=(3, 20, 30)).astype(np.float32)
    path = write_mrc(tmp_path / "s.mrcs", data, voxel_size=2.5)
    (layer,) = napari_get_reader(str(path))(str(path))
    arr, kwargs, kind = layer
    assert kind == "image" and arr.shape == (3, 20, 30)
    assert kwargs["scale"] == (1.0, 2.5, 2.5)
    assert kwargs["axis_labels"] == ("slice", "y", "x")
    meta = kwargs["metadata"]["cryodenoise"]
    assert meta["mode"] == 2 and meta["path"] == str(path) and meta["units"] == "angstrom"


def test_reader_warns_on_placeholder_pixel_size(tmp_path):
    path = write_mrc(tmp_path / "a.mrc", np.ones((16, 16), np.float32), voxel_size=0.0)
    with pytest.warns(UserWarning, match="no pixel size"):
        napari_get_reader(str(path))(str(path))


def test_writer_round_trip_keeps_voxel_size_and_origin(tmp_path):
    data = np.random.default_rng(1).normal(size=(10, 12)).astype(np.float32)
    meta = {"scale": (0.85, 0.85), "translate": (4.0, 8.0), "metadata": {}}
    (out,) = write_mrc_layer(str(tmp_path / "o.mrc"), data, meta)
    back, info = read_image(out)
    np.testing.assert_array_equal(back, data)
    assert info.pixel_size == pytest.approx(0.85) and info.origin[1:] == (4.0, 8.0)


def test_writer_never_overwrites_the_source(tmp_path):
    src = write_mrc(tmp_path / "src.mrc", np.ones((8, 8), np.float32))
    meta = {
        "scale": (1, 1),
        "translate": (0, 0),
        "metadata": {"cryodenoise": {"path": str(src), "kind": "image"}},
    }
    with pytest.raises(WriterError, match="would overwrite the input"):
        write_mrc_layer(str(src), np.zeros((8, 8)), meta)
    assert read_image(src)[0].max() == 1.0


def test_large_micrographs_get_block_averaged_display_levels(tmp_path):
    data = np.random.default_rng(2).normal(size=(2100, 2300)).astype(np.float32)
    path = write_mrc(tmp_path / "big.mrc", data)
    (layer,) = napari_get_reader(str(path))(str(path))
    levels, kwargs, _ = layer
    assert kwargs["multiscale"] is True
    assert isinstance(levels[0], np.memmap) and levels[0].shape == (2100, 2300)
    assert [lv.shape for lv in levels[1:]] == [(1050, 1150), (525, 575)]
    np.testing.assert_allclose(levels[1][0, 0], data[:2, :2].mean(), rtol=1e-5)
