import numpy as np
import pytest

from napari_cryodenoise._napari.reader import napari_get_reader
from napari_cryodenoise._napari.writer import WriterError, write_mrc_layer
from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io import read_image, write_mrc


def test_reader_claims_our_suffixes_and_explains_bad_files(tmp_path):
    good = write_mrc(tmp_path / "a.mrc", np.ones((16, 16), np.float32), voxel_size=1.3)
    assert napari_get_reader(str(good)) is not None
    bad = tmp_path / "b.mrc"
    bad.write_bytes(b"\x00" * 10)
    reader = napari_get_reader(str(bad))  # claimed, so napari shows our error
    assert reader is not None
    with pytest.raises(InputError, match="b.mrc: file is only 10 bytes"):
        reader(str(bad))
    assert napari_get_reader(str(tmp_path / "c.png")) is None
    assert napari_get_reader(str(tmp_path / "missing.mrc")) is None
    assert napari_get_reader(str(tmp_path / "sub")) is None
    (tmp_path / "empty").mkdir()
    assert napari_get_reader(str(tmp_path / "empty")) is None  # no micrographs: not a session
    assert napari_get_reader(str(tmp_path)) is not None  # a folder with a.mrc opens as a session


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


def test_file_save_of_a_large_micrograph_writes_full_resolution(make_napari_viewer, tmp_path):
    """File > Save Selected Layers of a micrograph above 2048 px (shown multiscale) wrote
    its smallest display level (1050 x 1150 of 2100 x 2300) with the full-size pixel size."""
    data = np.random.default_rng(3).normal(size=(2100, 2300)).astype(np.float32)
    path = write_mrc(tmp_path / "big.mrc", data, voxel_size=0.83)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-cryodenoise")
    assert layer.multiscale
    viewer.layers.selection.active = layer
    target = tmp_path / "saved.mrc"
    viewer.layers.save(str(target), selected=True, plugin="napari-cryodenoise")
    back, info = read_image(target)
    np.testing.assert_array_equal(back, data)
    assert info.pixel_size == pytest.approx(0.83)


def test_file_save_keeps_the_mrc_start_and_origin(make_napari_viewer, tmp_path):
    """An MRC with nonzero nxstart/nystart/nzstart and origin, opened and saved from
    File > Save Selected Layers: the saved header has the same start and origin."""
    import mrcfile

    path = tmp_path / "mic.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.random.default_rng(4).normal(size=(48, 64)).astype(np.float32))
        mrc.voxel_size = 1.34
        mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = 12, -7, 2
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = 16.08, -9.38, 0.0
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-cryodenoise")
    viewer.layers.selection.active = layer
    target = tmp_path / "saved.mrc"
    viewer.layers.save(str(target), selected=True, plugin="napari-cryodenoise")
    with mrcfile.open(target, header_only=True) as mrc:
        h = mrc.header
        assert (int(h.nxstart), int(h.nystart), int(h.nzstart)) == (12, -7, 2)
        assert float(h.origin.x) == pytest.approx(16.08)
        assert float(h.origin.y) == pytest.approx(-9.38)


# ----------------------------------------------------------------- opened as a user opens them


def _in_thread(fn, timeout=5.0):
    import threading

    box = []

    def run():
        try:
            box.append(fn())
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            box.append(err)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return (not t.is_alive()), (box[0] if box else None)


def test_viewer_opens_a_compressed_emdb_map(make_napari_viewer, tmp_path):
    import gzip

    viewer = make_napari_viewer()
    data = np.random.default_rng(0).normal(size=(8, 12, 10)).astype(np.float32)
    raw = write_mrc(tmp_path / "x.map", data, voxel_size=4.2).read_bytes()
    path = tmp_path / "emd_1234.map.gz"
    path.write_bytes(gzip.compress(raw))
    (layer,) = viewer.open(str(path), plugin="napari-cryodenoise")
    assert layer.name == "emd_1234"
    np.testing.assert_array_equal(np.asarray(layer.data), data)
    np.testing.assert_allclose(layer.scale, (4.2, 4.2, 4.2))
    assert tuple(layer.axis_labels) == ("z", "y", "x")


def test_viewer_declines_a_fifo_at_once(make_napari_viewer, tmp_path):
    import os

    viewer = make_napari_viewer()
    fifo = tmp_path / "pipe.mrc"
    os.mkfifo(fifo)
    try:
        done, reader = _in_thread(lambda: napari_get_reader(str(fifo)))
        assert done, "napari_get_reader blocked on a FIFO"
        assert reader is None
        with pytest.raises(ValueError, match="pipe.mrc"):
            viewer.open(str(fifo), plugin="napari-cryodenoise")
    finally:
        try:  # release a reader stuck in open() if the check above failed
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    assert len(viewer.layers) == 0


def test_viewer_shows_our_error_for_a_damaged_mrc(make_napari_viewer, tmp_path):
    import tifffile

    viewer = make_napari_viewer()
    renamed = tmp_path / "scan.mrc"
    tifffile.imwrite(renamed, np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="scan.mrc: is a TIFF file, not MRC; rename it scan.tif"):
        viewer.open(str(renamed), plugin="napari-cryodenoise")
    empty = tmp_path / "empty.mrc"
    empty.touch()
    with pytest.raises(InputError, match="empty.mrc: file is empty"):
        viewer.open(str(empty), plugin="napari-cryodenoise")
    assert len(viewer.layers) == 0


def _imagej_tomogram(path):
    import tifffile

    data = np.random.default_rng(1).integers(0, 255, (12, 30, 20), dtype=np.uint8)
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 1.052, 1 / 1.052),
        metadata={"axes": "ZYX", "unit": "nm", "spacing": 1.052},
    )
    return data


def test_viewer_opens_a_tiff_tomogram_as_an_isotropic_volume(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    path = tmp_path / "tomo.tif"
    data = _imagej_tomogram(path)
    (layer,) = viewer.open(str(path), plugin="napari-cryodenoise")
    np.testing.assert_array_equal(np.asarray(layer.data), data)
    np.testing.assert_allclose(layer.scale, (10.52, 10.52, 10.52), rtol=1e-6)
    assert tuple(layer.axis_labels) == ("z", "y", "x")
    assert layer.metadata["cryodenoise"]["kind"] == "volume"


# shared_data first: a skip during set-up must come before napari's viewer fixture starts
def test_viewer_opens_the_real_tomograms_as_volumes(shared_data, make_napari_viewer):
    viewer = make_napari_viewer()
    for name in ("13pf_MT.tif", "14pf_MT.tif"):
        (layer,) = viewer.open(str(shared_data / "tomograms" / name), plugin="napari-cryodenoise")
        np.testing.assert_allclose(layer.scale, (10.52, 10.52, 10.52), rtol=1e-6)
        assert tuple(layer.axis_labels) == ("z", "y", "x")


def test_viewer_opens_an_rgb_tiff_as_one_grey_image(make_napari_viewer, tmp_path):
    import tifffile

    viewer = make_napari_viewer()
    path = tmp_path / "photo.tif"
    tifffile.imwrite(path, np.full((64, 64, 3), 100, np.uint8))
    with pytest.warns(UserWarning, match="converted to grey"):
        (layer,) = viewer.open(str(path), plugin="napari-cryodenoise")
    assert layer.data.shape == (64, 64) and layer.ndim == 2
