"""Malformed, mislabelled and unusual input files: one clear line, nothing touched, no hang.

Every bad input must give an :class:`InputError` whose message is one line naming the
file and the problem, leave the folder as it was (no temporary files) and the input's
bytes unchanged, and napari's reader must answer promptly (claiming files with our
suffixes, so that napari shows our message; declining FIFOs, folders and devices
without opening them).
"""

from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import os
import struct
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_cryodenoise.errors import CryoDenoiseError, InputError
from napari_cryodenoise.io import atomic as atomic_mod
from napari_cryodenoise.io import concatenate_mrc, is_image_path, read_image, write_mrc
from napari_cryodenoise.io.atomic import OutputWriteError

PROMPT_S = 5.0

# --------------------------------------------------------------------------- helpers


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _mrc_bytes(
    shape=(16, 16), dtype=np.float32, voxel=1.5, data: np.ndarray | None = None
) -> bytearray:
    """The bytes of a valid MRC file, to be damaged by a test."""
    import tempfile

    if data is None:
        data = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_mrc(Path(tmp) / "x.mrc", data, voxel_size=voxel, dtype=data.dtype)
        return bytearray(path.read_bytes())


def _with_words(offset: int, fmt: str, *values) -> bytes:
    raw = _mrc_bytes()
    struct.pack_into(fmt, raw, offset, *values)
    return bytes(raw)


def _tiff_bytes(data, **kwargs) -> bytes:
    import io

    buf = io.BytesIO()
    tifffile.imwrite(buf, data, **kwargs)
    return buf.getvalue()


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _in_thread(fn: Callable[[], object], timeout: float = PROMPT_S):
    """Run ``fn`` in a daemon thread; return ``(finished, result_or_exception)``."""
    box: list = []

    def run():
        try:
            box.append(fn())
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            box.append(err)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return (not t.is_alive()), (box[0] if box else None)


def _unblock_fifo(path: Path) -> None:
    """Release a reader stuck in ``open()`` on a FIFO (if the code under test hung)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def _assert_one_line(err: BaseException, path: Path, pattern: str) -> None:
    import re

    msg = str(err)
    assert "\n" not in msg, msg
    assert str(path) in msg or path.name in msg, msg
    assert re.search(pattern, msg), f"{pattern!r} not in {msg!r}"
    assert "Traceback" not in msg


# --------------------------------------------------------------------------- bad files

#: name -> (file name, contents, message pattern). Contents may be bytes or a callable.
BAD_FILES: dict[str, tuple[str, object, str]] = {
    "empty mrc": ("a.mrc", b"", "file is empty"),
    "100 bytes": ("a.mrc", b"\x01" * 100, "only 100 bytes, too short"),
    "header only": ("a.mrc", lambda: bytes(_mrc_bytes()[:1024]), "truncated"),
    "truncated data": ("a.mrc", lambda: bytes(_mrc_bytes()[:-100]), "truncated"),
    "bad magic XXXX": ("a.mrc", lambda: _with_words(208, "4s", b"XXXX"), "wrong map identifier"),
    "mode 3": ("a.mrc", lambda: _with_words(12, "<i", 3), "mode 3 is not supported"),
    "mode 4": ("a.mrc", lambda: _with_words(12, "<i", 4), "mode 4 is not supported"),
    "mode 99": ("a.mrc", lambda: _with_words(12, "<i", 99), "mode 99 is not supported"),
    "mode 101": ("a.mrc", lambda: _with_words(12, "<i", 101), "mode 101 is not supported"),
    "nx 0": ("a.mrc", lambda: _with_words(0, "<i", 0), "invalid MRC dimensions 0 x"),
    "nx negative": ("a.mrc", lambda: _with_words(0, "<i", -16), "invalid MRC dimensions -16"),
    "nz negative": ("a.mrcs", lambda: _with_words(8, "<i", -3), r"invalid MRC dimensions .* -3"),
    "2^21 cubed": (
        "a.mrc",
        lambda: _with_words(0, "<3i", 2**21, 2**21, 2**21),
        "damaged MRC header: it describes 2097152 x 2097152 x 2097152",
    ),
    "2^31-1 planes": (
        "a.mrcs",
        lambda: _with_words(8, "<i", 2**31 - 1),
        "describes 16 x 16 x 2147483647",
    ),
    "huge extended header": (
        "a.mrc",
        lambda: _with_words(92, "<i", 2**31 - 1),
        "2147483647-byte extended header",
    ),
    "negative extended header": (
        "a.mrc",
        lambda: _with_words(92, "<i", -5),
        "extended header size -5",
    ),
    "random bytes": (
        "a.mrc",
        lambda: np.random.default_rng(7).integers(0, 256, 4096, np.uint8).tobytes(),
        "MRC",
    ),
    "text file": ("a.map", b"this is not a map\n" * 100, "MRC"),
    "tiff renamed mrc": (
        "a.mrc",
        lambda: _tiff_bytes(np.zeros((8, 8), np.uint8)),
        "is a TIFF file, not MRC; rename it a.tif",
    ),
    "png renamed mrc": ("a.mrc", _png_bytes, "is a PNG file, not MRC"),
    "gzip under .mrc": (
        "a.mrc",
        lambda: gzip.compress(bytes(_mrc_bytes())),
        r"gzip-compressed file under a plain name; rename it a\.mrc\.gz",
    ),
    "bzip2 under .map": (
        "a.map",
        lambda: bz2.compress(bytes(_mrc_bytes())),
        r"bzip2-compressed .*rename it a\.map\.bz2",
    ),
    "xz under .mrc": ("a.mrc", b"\xfd7zXZ\x00" + b"\x00" * 2000, "is compressed with xz"),
    "truncated .mrc.gz": (
        "a.mrc.gz",
        lambda: gzip.compress(bytes(_mrc_bytes((64, 64))))[:-200],
        "damaged or truncated",
    ),
    "gz of a short file": (
        "a.map.gz",
        lambda: gzip.compress(bytes(_mrc_bytes()[:1100])),
        "truncated",
    ),
    "corrupt .map.gz": (
        "a.map.gz",
        lambda: b"\x1f\x8b\x08\x00" + b"\xff" * 2000,
        "gzip data are damaged or truncated",
    ),
    "corrupt .mrc.bz2": ("a.mrc.bz2", b"BZh9" + b"\x00" * 2000, "bzip2 data are damaged"),
    "empty tif": ("a.tif", b"", "file is empty"),
    "png renamed tif": ("a.tif", _png_bytes, "is a PNG file, not TIFF"),
    "mrc renamed tif": ("a.tif", lambda: bytes(_mrc_bytes()), "is an MRC file, not TIFF"),
    "random tif": (
        "a.tiff",
        lambda: np.random.default_rng(3).integers(0, 256, 500, np.uint8).tobytes(),
        "not a TIFF file",
    ),
    "truncated tif": (
        "a.tif",
        lambda: _tiff_bytes(np.ones((64, 64), np.float32))[:5000],
        "truncated",
    ),
    "truncated tif stack": (
        "a.tif",
        lambda: _tiff_bytes(np.ones((4, 64, 64), np.uint16), photometric="minisblack")[:-3000],
        "truncated",
    ),
    "tif header only": ("a.tif", b"II*\x00\x08\x00\x00\x00", "TIFF"),
    "4D tif": (
        "a.tif",
        lambda: _tiff_bytes(
            np.zeros((2, 3, 8, 8), np.uint8), imagej=True, metadata={"axes": "TZYX"}
        ),
        r"is a 4D TIFF \(axes TZYX",
    ),
    "complex tif": ("a.tif", lambda: _tiff_bytes(np.ones((8, 8), np.complex64)), "complex"),
    "1-bit tif": ("a.tif", lambda: _tiff_bytes(np.ones((8, 8), bool)), "1-bit"),
    "gzipped tif": ("a.tif.gz", lambda: gzip.compress(_tiff_bytes(np.ones((8, 8)))), "TIFF"),
    "unknown suffix": ("a.xyz", b"hello", "unknown image type '.xyz'"),
    "unknown compressed suffix": ("a.xyz.gz", b"hello", r"unknown image type '\.xyz\.gz'"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_gives_one_clear_line(case, tmp_path):
    name, contents, pattern = BAD_FILES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / name
    path.write_bytes(contents() if callable(contents) else contents)
    before_files = sorted(os.listdir(folder))
    before_sha = _sha(path)

    with pytest.raises(InputError) as caught:
        read_image(path)
    _assert_one_line(caught.value, path, pattern)

    # napari: answered at once; a file with our suffix is claimed and explains itself
    from napari_cryodenoise._napari.reader import napari_get_reader

    done, reader = _in_thread(lambda: napari_get_reader(str(path)))
    assert done, f"napari_get_reader did not return within {PROMPT_S} s"
    if is_image_path(path):
        assert callable(reader), f"{name} has our suffix but was declined"
        done, err = _in_thread(lambda: reader(str(path)))
        assert done and isinstance(err, InputError), err
        _assert_one_line(err, path, pattern)
    else:
        assert reader is None

    assert sorted(os.listdir(folder)) == before_files
    assert _sha(path) == before_sha


def test_there_are_many_cases():
    assert len(BAD_FILES) >= 40


# --------------------------------------------------------------------------- not files


def _special_paths(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    fifo = tmp_path / "pipe.mrc"
    os.mkfifo(fifo)
    fifo_tif = tmp_path / "pipe.tif"
    os.mkfifo(fifo_tif)
    folder = tmp_path / "folder.mrc"
    folder.mkdir()
    loop = tmp_path / "loop.mrc"
    loop.symlink_to(tmp_path / "loop2.mrc")
    (tmp_path / "loop2.mrc").symlink_to(loop)
    dangling = tmp_path / "dangling.map"
    dangling.symlink_to(tmp_path / "nowhere.map")
    return {
        "fifo": (fifo, r"is not a regular file but a FIFO"),
        "fifo tif": (fifo_tif, r"is not a regular file but a FIFO"),
        "folder": (folder, "is a folder, not an image file"),
        "folder without suffix": (tmp_path, "is a folder"),
        "symlink loop": (loop, "symbolic link loop"),
        "dangling symlink": (dangling, "no such file"),
        "missing": (tmp_path / "missing.rec", "no such file"),
        "device": (Path("/dev/null"), r"is not a regular file but a device"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "fifo",
        "fifo tif",
        "folder",
        "folder without suffix",
        "symlink loop",
        "dangling symlink",
        "missing",
        "device",
    ],
)
def test_special_paths_are_refused_at_once(case, tmp_path):
    from napari_cryodenoise._napari.reader import napari_get_reader

    path, pattern = _special_paths(tmp_path)[case]
    before = sorted(os.listdir(tmp_path))
    try:
        done, reader = _in_thread(lambda: napari_get_reader(str(path)))
        assert done, f"napari_get_reader blocked on {case}"
        assert reader is None
        done, err = _in_thread(lambda: read_image(path))
        assert done, f"read_image blocked on {case}"
        assert isinstance(err, InputError), err
        _assert_one_line(err, path, pattern)
    finally:
        if path.is_fifo():
            _unblock_fifo(path)
    assert sorted(os.listdir(tmp_path)) == before


# --------------------------------------------------------------------------- files that open


def test_compressed_maps_open_like_plain_ones(tmp_path):
    data = np.random.default_rng(0).normal(size=(6, 20, 24)).astype(np.float32)
    plain = write_mrc(tmp_path / "emd_1234.map", data, voxel_size=4.2)
    raw = plain.read_bytes()
    (tmp_path / "emd_1234.map.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "emd_1234.MRC.BZ2").write_bytes(bz2.compress(raw))
    (tmp_path / "stack.mrcs.gz").write_bytes(gzip.compress(raw))
    for name, kind in [
        ("emd_1234.map.gz", "volume"),
        ("emd_1234.MRC.BZ2", "volume"),
        ("stack.mrcs.gz", "stack"),
    ]:
        back, info = read_image(tmp_path / name)
        np.testing.assert_array_equal(back, data)
        assert info.kind == kind and info.pixel_size == pytest.approx(4.2)
        assert info.name in ("emd_1234", "stack")
    # a plain file under a .gz name is simply read (memory-mapped)
    (tmp_path / "plain.mrc.gz").write_bytes(raw)
    back, _ = read_image(tmp_path / "plain.mrc.gz")
    assert isinstance(back, np.memmap)


def test_compressed_reading_warns_for_big_maps_and_refuses_impossible_ones(tmp_path, monkeypatch):
    from napari_cryodenoise.io import compressed as mrc_mod

    raw = write_mrc(tmp_path / "a.map", np.ones((8, 16, 16), np.float32)).read_bytes()
    gz = tmp_path / "a.map.gz"
    gz.write_bytes(gzip.compress(raw))
    monkeypatch.setattr(mrc_mod, "LARGE_DECOMPRESS_BYTES", 1000)
    with pytest.warns(UserWarning, match="decompressing .* into memory"):
        read_image(gz)
    monkeypatch.setattr(mrc_mod, "_physical_memory", lambda: 4000)
    with pytest.raises(InputError, match="more than this machine's memory"):
        read_image(gz)


def test_compressed_outputs_are_written_compressed(tmp_path):
    data = np.ones((8, 8), np.float32)
    out = write_mrc(tmp_path / "o.mrc.gz", data, voxel_size=2.0)
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_image(out)[0], data)


def test_old_style_header_without_map_id_opens(tmp_path):
    raw = _mrc_bytes()
    raw[208:212] = b"\x00\x00\x00\x00"
    (tmp_path / "old.mrc").write_bytes(bytes(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = read_image(tmp_path / "old.mrc")
    assert data.shape == (16, 16)


@pytest.mark.parametrize("value", [0.0, -2.5, float("nan"), float("inf")])
def test_invalid_voxel_size_is_a_placeholder_with_warning(tmp_path, value):
    from napari_cryodenoise._napari.reader import napari_get_reader

    raw = _mrc_bytes(voxel=1.5)
    struct.pack_into("<3f", raw, 40, value, value, value)  # cella
    path = tmp_path / "v.mrc"
    path.write_bytes(bytes(raw))
    _, info = read_image(path)
    assert info.voxel_size_is_placeholder and info.voxel_size == (1.0, 1.0, 1.0)
    with pytest.warns(UserWarning, match="no pixel size"):
        napari_get_reader(str(path))(str(path))


def test_nan_inf_constant_and_tiny_images_read(tmp_path):
    from napari_cryodenoise._napari.layers import robust_contrast_limits

    data = np.zeros((16, 16), np.float32)
    data[0, 0], data[1, 1], data[2, 2] = np.nan, np.inf, -np.inf
    back, _ = read_image(write_mrc(tmp_path / "nan.mrc", data))
    assert np.isnan(back[0, 0]) and np.isinf(back[1, 1])
    lo, hi = robust_contrast_limits(back)
    assert np.isfinite(lo) and np.isfinite(hi) and hi > lo
    const, _ = read_image(write_mrc(tmp_path / "c.mrc", np.full((8, 8), 3.0, np.float32)))
    assert robust_contrast_limits(const)[1] > robust_contrast_limits(const)[0]
    one, info = read_image(write_mrc(tmp_path / "one.mrc", np.ones((1, 1), np.float32)))
    assert one.shape == (1, 1) and info.kind == "image"


def test_big_endian_mrc_reads(tmp_path):
    data = np.arange(12 * 10, dtype=">f4").reshape(12, 10)
    path = tmp_path / "be.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
    back, _ = read_image(path)
    np.testing.assert_array_equal(back, data.astype(np.float32))


@pytest.mark.parametrize(
    "shape,kwargs",
    [
        ((64, 64, 3), {}),
        ((64, 64, 4), {"photometric": "rgb"}),
        ((3, 64, 64), {"photometric": "rgb", "planarconfig": "separate"}),
        ((5, 64, 64, 3), {"photometric": "rgb"}),
    ],
)
def test_colour_tiffs_become_grey_with_a_warning(tmp_path, shape, kwargs):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 255, shape, dtype=np.uint8)
    path = tmp_path / "colour.tif"
    tifffile.imwrite(path, data, **kwargs)
    with pytest.warns(UserWarning, match="colour .* converted to grey"):
        grey, info = read_image(path)
    expect_shape = (5, 64, 64) if len(shape) == 4 else (64, 64)
    assert grey.shape == expect_shape and grey.dtype == np.float32
    rgb = np.moveaxis(data, 0, -1) if shape[0] == 3 else data
    want = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(grey, want, rtol=1e-5)
    assert info.kind == ("stack" if len(shape) == 4 else "image")


def test_grey_tiff_stack_of_three_pages_stays_a_stack(tmp_path):
    data = np.arange(3 * 8 * 9, dtype=np.uint8).reshape(3, 8, 9)
    tifffile.imwrite(tmp_path / "s.tif", data, photometric="minisblack")
    back, info = read_image(tmp_path / "s.tif")
    assert back.shape == (3, 8, 9) and info.kind == "stack"


def _imagej_volume(path: Path, spacing: float | None = 1.052, unit: str = "nm") -> np.ndarray:
    data = np.random.default_rng(1).integers(0, 255, (12, 30, 20), dtype=np.uint8)
    metadata: dict = {"axes": "ZYX", "unit": unit}
    if spacing is not None:
        metadata["spacing"] = spacing
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 1.052, 1 / 1.052), metadata=metadata)
    return data


def test_imagej_tomogram_tiff_opens_as_an_isotropic_volume(tmp_path):
    path = tmp_path / "tomo.tif"
    data = _imagej_volume(path)
    back, info = read_image(path)
    np.testing.assert_array_equal(back, data)
    assert info.kind == "volume"
    assert info.voxel_size == pytest.approx((10.52, 10.52, 10.52))


def test_imagej_stack_without_spacing_stays_a_stack(tmp_path):
    path = tmp_path / "stack.tif"
    _imagej_volume(path, spacing=None)
    _, info = read_image(path)
    assert info.kind == "stack" and info.pixel_size == pytest.approx(10.52)


def test_ome_tiff_with_z_size_opens_as_a_volume(tmp_path):
    path = tmp_path / "v.ome.tif"
    data = np.zeros((5, 8, 8), np.uint16)
    tifffile.imwrite(
        path,
        data,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 0.5,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeY": 0.5,
            "PhysicalSizeYUnit": "nm",
            "PhysicalSizeZ": 1.0,
            "PhysicalSizeZUnit": "nm",
        },
    )
    _, info = read_image(path)
    assert info.kind == "volume" and info.voxel_size == pytest.approx((10.0, 5.0, 5.0))


def test_real_tomogram_tiff_is_a_volume(shared_data):
    for name, shape in [("13pf_MT.tif", (36, 206, 94)), ("14pf_MT.tif", (44, 136, 84))]:
        data, info = read_image(shared_data / "tomograms" / name)
        assert data.shape == shape and info.kind == "volume"
        assert info.voxel_size == pytest.approx((10.52, 10.52, 10.52))


def test_image_suffixes_under_compression():
    assert is_image_path("emd_1832.map.gz") and is_image_path("a.MRCS.bz2")
    assert is_image_path("a.tif") and not is_image_path("a.tif.gz")
    assert not is_image_path("a.gz") and not is_image_path("notes.txt")


def test_training_folders_list_compressed_maps(tmp_path):
    from napari_cryodenoise.training.pairs import pairs_from_folders

    rng = np.random.default_rng(0)
    for half in ("even", "odd"):
        (tmp_path / half).mkdir()
        raw = write_mrc(tmp_path / "x.mrc", rng.normal(size=(32, 32)).astype(np.float32))
        (tmp_path / half / "a.mrc.gz").write_bytes(gzip.compress(raw.read_bytes()))
    (pair,) = pairs_from_folders(tmp_path / "even", tmp_path / "odd")
    assert pair.even.shape == (32, 32)


# --------------------------------------------------------------------------- full disk


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def full_disk(monkeypatch):
    """Every durable write fails as on a full disk (at the flush before the rename)."""
    monkeypatch.setattr(atomic_mod, "_fsync_file", _enospc)


def _check_full_disk(err: BaseException, target: Path, folder: Path, before: list[str]) -> None:
    assert isinstance(err, CryoDenoiseError) and isinstance(err, OSError)
    _assert_one_line(err, target, "cannot write it: no space left on device")
    assert sorted(os.listdir(folder)) == before


def test_full_disk_while_writing_mrc(tmp_path, full_disk):
    target = tmp_path / "out.mrc"
    target.write_bytes(b"previous result")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(OutputWriteError) as caught:
        write_mrc(target, np.ones((8, 8), np.float32))
    _check_full_disk(caught.value, target, tmp_path, before)
    assert target.read_bytes() == b"previous result"


def test_full_disk_while_joining_mrc(tmp_path, monkeypatch):
    a = write_mrc(tmp_path / "a.mrc", np.ones((2, 8, 8), np.float32))
    b = write_mrc(tmp_path / "b.mrc", np.ones((2, 8, 8), np.float32))
    monkeypatch.setattr(atomic_mod, "_fsync_file", _enospc)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(OutputWriteError) as caught:
        concatenate_mrc([a, b], tmp_path / "ab.mrc")
    _check_full_disk(caught.value, tmp_path / "ab.mrc", tmp_path, before)


def test_full_disk_while_saving_a_model_or_checkpoint(tmp_path, full_disk):
    from napari_cryodenoise.models.checkpoint import build_model, save_model
    from napari_cryodenoise.training.checkpoints import save_network

    model = build_model("affine")
    before = sorted(os.listdir(tmp_path))
    for save in (save_model, save_network):
        target = tmp_path / f"{save.__name__}.pt"
        with pytest.raises(OutputWriteError) as caught:
            save(model, target)
        _check_full_disk(caught.value, target, tmp_path, before)


def test_full_disk_during_cli_train_is_one_line(tmp_path):
    rng = np.random.default_rng(0)
    for half in ("even", "odd"):
        (tmp_path / half).mkdir()
        write_mrc(tmp_path / half / "a.mrc", rng.normal(size=(48, 48)).astype(np.float32))
    shas = {p: _sha(p) for p in tmp_path.rglob("*.mrc")}
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    # the disk is "full" for the command only: the patch is made in the child process
    code = (
        "import errno, sys\n"
        "import napari_cryodenoise.io.atomic as a\n"
        "def full(*_):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "a._fsync_file = full\n"
        "from napari_cryodenoise.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "model.pt"
    args = ["train", "--even", str(tmp_path / "even"), "--odd", str(tmp_path / "odd")]
    args += ["-o", str(out), "--steps", "1", "--arch", "affine", "--device", "cpu", "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no space left on device" in lines[0], proc.stderr
    assert str(tmp_path) in lines[0]
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert {p: _sha(p) for p in tmp_path.rglob("*.mrc")} == shas


# --------------------------------------------------------------------------- the CLI


def test_cli_denoise_reports_each_bad_input_in_one_line(tmp_path):
    from napari_cryodenoise.models import build_model, save_model

    model = save_model(build_model("affine"), tmp_path / "m.pt")
    src = tmp_path / "in"
    src.mkdir()
    raw = write_mrc(tmp_path / "g.map", np.ones((40, 40), np.float32), voxel_size=2.0)
    (src / "emd_1.map.gz").write_bytes(gzip.compress(raw.read_bytes()))
    (src / "gz.mrc").write_bytes(gzip.compress(raw.read_bytes()))
    (src / "t.mrc").write_bytes(_tiff_bytes(np.zeros((8, 8), np.uint8)))
    (src / "huge.mrc").write_bytes(_with_words(0, "<3i", 2**21, 2**21, 2**21))
    (src / "xx.mrc").write_bytes(_with_words(208, "4s", b"XXXX"))
    os.mkfifo(src / "pipe.mrc")
    names = ["emd_1.map.gz", "gz.mrc", "t.mrc", "huge.mrc", "xx.mrc", "pipe.mrc"]
    shas = {n: _sha(src / n) for n in names}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "napari_cryodenoise", "denoise"]
    cmd += [str(src / n) for n in names] + ["-o", str(out), "-m", str(model), "--device", "cpu"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    finally:
        _unblock_fifo(src / "pipe.mrc")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    expected = {
        "gz.mrc": "rename it gz.mrc.gz",
        "t.mrc": "is a TIFF file, not MRC",
        "huge.mrc": "damaged MRC header",
        "xx.mrc": "wrong map identifier",
        "pipe.mrc": "is not a regular file but a FIFO",
    }
    assert len(errors) == len(expected), proc.stderr
    for name, words in expected.items():
        assert any(str(src / name) in ln and words in ln for ln in errors), (name, errors)
    assert {n: _sha(src / n) for n in names} == shas
    written = [p.name for p in out.iterdir()]
    assert not [n for n in written if ".partial" in n]
    assert any(n.startswith("emd_1") and n.endswith(".mrc") for n in written), written


# --------------------------------------------------------------------------- leftovers


def test_distributed_partials_delegate_and_find_old_names(tmp_path):
    from napari_cryodenoise.batch.outputs import _partials, remove_partials
    from napari_cryodenoise.io.atomic import partial_path

    out = tmp_path / "mic.tif"
    new = partial_path(out)
    new.write_bytes(b"x")
    old_mrc = tmp_path / ".mic.tif.1234.partial"  # MRC writer of earlier versions
    old_tif = tmp_path / ".mic.1234.partial.tif"  # TIFF/PNG writer of earlier versions
    old_mrc.write_bytes(b"x")
    old_tif.write_bytes(b"x")
    keep = tmp_path / ".other.tif.1.partial.tif"
    keep.write_bytes(b"x")
    assert set(_partials(out)) == {new, old_mrc, old_tif}
    assert remove_partials([out]) == 3
    assert sorted(os.listdir(tmp_path)) == [keep.name]
