import os

import mrcfile
import numpy as np
import pytest

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io import (
    read_image,
    read_star_micrographs,
    write_mrc,
    write_star_micrographs,
)

MODES = {0: np.int8, 1: np.int16, 2: np.float32, 6: np.uint16, 12: np.float16}


@pytest.mark.parametrize("mode,dtype", MODES.items())
@pytest.mark.parametrize("shape", [(31, 47), (3, 20, 17)])
def test_round_trip_every_mode(tmp_path, mode, dtype, shape):
    rng = np.random.default_rng(mode)
    data = (rng.random(shape) * 100).astype(dtype)
    path = write_mrc(
        tmp_path / "x.mrc", data, voxel_size=(2.0, 1.25, 1.25), dtype=dtype, origin=(3.0, 2.0, 1.0)
    )
    back, info = read_image(path)
    assert back.dtype == dtype and back.shape == shape
    np.testing.assert_array_equal(back, data)
    assert info.mode == mode
    assert info.voxel_size[1:] == (1.25, 1.25)
    assert not info.voxel_size_is_placeholder
    assert info.origin == (3.0, 2.0, 1.0)


def test_files_written_by_mrcfile_directly(tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    with mrcfile.new(tmp_path / "a.mrcs") as mrc:
        mrc.set_data(data)
        mrc.set_image_stack()
        mrc.voxel_size = 0.85
    back, info = read_image(tmp_path / "a.mrcs")
    np.testing.assert_array_equal(back, data)
    assert info.kind == "stack" and info.pixel_size == pytest.approx(0.85)


def test_kind_from_suffix_and_space_group(tmp_path):
    vol = np.zeros((4, 5, 6), np.float32)
    assert read_image(write_mrc(tmp_path / "v.mrc", vol, kind="volume"))[1].kind == "volume"
    assert read_image(write_mrc(tmp_path / "s.mrc", vol, kind="stack"))[1].kind == "stack"
    assert read_image(write_mrc(tmp_path / "v.rec", vol))[1].kind == "volume"
    assert read_image(write_mrc(tmp_path / "s.mrcs", vol))[1].kind == "stack"
    assert read_image(write_mrc(tmp_path / "i.mrc", vol[0]))[1].kind == "image"


def test_reading_is_memory_mapped_and_not_float64(tmp_path):
    path = write_mrc(tmp_path / "m.mrc", np.ones((64, 64), np.uint16), dtype=np.uint16)
    data, _ = read_image(path)
    assert isinstance(data, np.memmap) and data.dtype == np.uint16


def test_placeholder_pixel_size_falls_back_to_one(tmp_path):
    for value in (0.0, 1.0):
        path = write_mrc(
            tmp_path / f"p{value}.mrc", np.zeros((8, 8), np.float32), voxel_size=value
        )
        _, info = read_image(path)
        assert info.voxel_size == (1.0, 1.0, 1.0) and info.voxel_size_is_placeholder


def test_header_statistics_are_correct(tmp_path):
    data = np.random.default_rng(0).normal(5, 2, (40, 30)).astype(np.float32)
    path = write_mrc(tmp_path / "s.mrc", data)
    with mrcfile.open(path) as mrc:
        h = mrc.header
        assert h.dmin == pytest.approx(data.min()) and h.dmax == pytest.approx(data.max())
        assert h.dmean == pytest.approx(data.mean(), rel=1e-5)
        assert h.rms == pytest.approx(data.std(), rel=1e-4)
        assert h.mode == 2


def test_write_is_atomic_and_protects_inputs(tmp_path):
    src = write_mrc(tmp_path / "in.mrc", np.ones((8, 8), np.float32))
    before = src.read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_mrc(tmp_path / "in.mrc", np.zeros((8, 8)), protect=[src])
    assert src.read_bytes() == before
    with pytest.raises(FileExistsError):
        write_mrc(src, np.zeros((8, 8)), overwrite=False)

    class Boom(np.ndarray):
        pass

    # a failure half-way leaves neither a partial file nor a damaged target
    with pytest.raises(InputError):
        write_mrc(tmp_path / "in.mrc", np.zeros((2, 2, 2, 2)))
    assert src.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]


def test_truncated_file_is_a_clear_error(tmp_path):
    path = write_mrc(tmp_path / "t.mrc", np.ones((64, 64), np.float32))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 100])
    with pytest.raises(InputError, match="truncated"):
        read_image(path)


def test_unknown_mode_is_a_clear_error(tmp_path):
    path = write_mrc(tmp_path / "u.mrc", np.ones((8, 8), np.float32))
    raw = bytearray(path.read_bytes())
    raw[12:16] = np.int32(3).tobytes()  # mode 3: complex int16
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="mode 3 is not supported"):
        read_image(path)


def test_garbage_and_missing_files(tmp_path):
    bad = tmp_path / "bad.mrc"
    bad.write_bytes(b"hello" * 10)
    with pytest.raises(InputError, match="bad.mrc"):
        read_image(bad)
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.mrc")
    with pytest.raises(InputError, match="unknown image type"):
        read_image(bad.with_suffix(".xyz"))


def test_tiff_stack(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    data = np.arange(2 * 6 * 7, dtype=np.uint16).reshape(2, 6, 7)
    tifffile.imwrite(tmp_path / "movie.tif", data)
    back, info = read_image(tmp_path / "movie.tif")
    np.testing.assert_array_equal(back, data)
    assert info.kind == "stack"


def test_star_micrograph_lists(tmp_path):
    (tmp_path / "a.mrc").touch()
    star = write_star_micrographs(tmp_path / "list.star", ["a.mrc", "b.mrc"], pixel_size=1.1)
    paths = read_star_micrographs(star)
    assert [p.name for p in paths] == ["a.mrc", "b.mrc"]
    assert paths[0] == tmp_path / "a.mrc"


def test_real_fei_micrograph_opens(shared_data):
    data, info = read_image(shared_data / "micrographs" / "fei-extended.mrc")
    assert data.shape == (3838, 3710) and data.dtype == np.uint16
    assert info.mode == 6 and info.extended_header_type == "FEI1"
    assert info.pixel_size == pytest.approx(0.8538, abs=1e-3)


def test_concatenate_mrc_streams_parts_with_whole_file_header(tmp_path):
    import mrcfile

    from napari_cryodenoise.io import concatenate_mrc

    rng = np.random.default_rng(0)
    a = rng.normal(3, 2, (5, 30, 40)).astype(np.float32)
    b = rng.normal(-1, 1, (1, 30, 40)).astype(np.float32)  # one plane: read back as 2D
    kw = {"voxel_size": (2.0, 1.5, 1.5), "origin": (1.0, 2.0, 3.0), "kind": "volume"}
    parts = [write_mrc(tmp_path / "a.mrc", a, **kw), write_mrc(tmp_path / "b.mrc", b, **kw)]
    joined = concatenate_mrc(parts, tmp_path / "c.mrc")
    ref = write_mrc(tmp_path / "ref.mrc", np.concatenate([a, b]), **kw)
    with mrcfile.open(joined) as got, mrcfile.open(ref) as want:
        np.testing.assert_array_equal(got.data, want.data)
        for field in ("dmin", "dmax", "dmean", "rms", "ispg", "origin", "cella", "nz"):
            assert np.allclose(got.header[field].tolist(), want.header[field].tolist(), rtol=1e-6)
    with pytest.raises(InputError, match="does not fit"):
        concatenate_mrc([parts[0], write_mrc(tmp_path / "d.mrc", a[:, :10])], tmp_path / "e.mrc")
    with pytest.raises(InputError, match="refusing to overwrite"):
        concatenate_mrc(parts, parts[0], protect=parts)
    assert not list(tmp_path.glob(".*partial"))
