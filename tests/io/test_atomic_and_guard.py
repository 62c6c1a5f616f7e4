"""The one atomic-write rule and the one output guard."""

import os

import pytest

from napari_cryodenoise.io.atomic import (
    atomic_path,
    atomic_write_text,
    is_partial,
    partial_files,
    partial_path,
    remove_partials,
)
from napari_cryodenoise.io.output_guard import OutputPathError, check_outputs, same_file


def test_atomic_write_replaces_and_leaves_nothing(tmp_path):
    out = tmp_path / "a.star"
    out.write_text("old")
    atomic_write_text(out, "new")
    assert out.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.star"]


def test_atomic_path_failure_keeps_old_file(tmp_path):
    out = tmp_path / "a.mrc"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert out.read_text() == "old"
    assert partial_files(out) == []


def test_atomic_path_fsyncs_file_and_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    atomic_write_text(tmp_path / "x.txt", "data")
    assert len(synced) >= 2  # the file, then the folder


def test_partial_names_keep_suffix_and_are_found(tmp_path):
    out = tmp_path / "mic [1].tif"
    tmp = partial_path(out)
    assert tmp.suffix == ".tif" and is_partial(tmp) and not is_partial(out)
    tmp.write_text("x")
    (tmp_path / "other.tif").write_text("y")
    assert partial_files(out) == [tmp]
    assert remove_partials([out]) == 1 and not tmp.exists()


@pytest.fixture
def files(tmp_path):
    a = tmp_path / "in.mrc"
    a.write_bytes(b"data")
    (tmp_path / "sym.mrc").symlink_to(a)
    os.link(a, tmp_path / "hard.mrc")
    (tmp_path / "sub").mkdir()
    return tmp_path, a


@pytest.mark.parametrize("name", ["in.mrc", "sym.mrc", "hard.mrc", "sub/../in.mrc"])
def test_guard_refuses_an_input(files, name):
    tmp_path, a = files
    with pytest.raises(OutputPathError, match="would overwrite the input") as info:
        check_outputs([("--out-star", tmp_path / name)], [a])
    assert "--out-star" in str(info.value) and "\n" not in str(info.value)


def test_guard_refuses_folder_loop_and_duplicate(files):
    tmp_path, a = files
    with pytest.raises(OutputPathError, match="is a folder"):
        check_outputs([("--csv", tmp_path / "sub")], [a])
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(OutputPathError, match="symlink loop"):
        check_outputs([("-o", tmp_path / "loop")], [a])
    with pytest.raises(OutputPathError, match="also the output of --checkpoint"):
        check_outputs({"--checkpoint": tmp_path / "m.pt", "-o": tmp_path / "m.pt"}, [a])
    check_outputs([tmp_path / "new.mrc", None], [a])  # fine
    assert same_file(a, tmp_path / "hard.mrc") and not same_file(a, tmp_path / "new.mrc")
