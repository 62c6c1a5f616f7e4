"""The Qt-free session model: listing, stepping, follow mode, marks, facts, saving STAR."""

import os
import time

import numpy as np
import pytest

from napari_cryodenoise._napari.session import (
    BAD,
    GOOD,
    SessionItem,
    find_output,
    is_session_folder,
    open_session,
)
from napari_cryodenoise._napari.session_save import save_good_star
from napari_cryodenoise.errors import InputError
from napari_cryodenoise.io import write_mrc
from napari_cryodenoise.io.star import read_star


def _mic(path, seed=0, shape=(32, 40), px=1.5):
    data = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    write_mrc(path, data, voxel_size=px)
    return path


def _folder(tmp_path, n=3):
    folder = tmp_path / "mics"
    folder.mkdir()
    for k in range(n):
        p = _mic(folder / f"m{k}.mrc", k)
        os.utime(p, ns=(10**18 + k * 10**9, 10**18 + k * 10**9))  # arrival order
    return folder


def test_folder_session_lists_in_arrival_order_and_reads_no_pixels(tmp_path):
    folder = _folder(tmp_path)
    (folder / ".m9.mrc").write_bytes(b"x")  # hidden
    (folder / "half.mrc").write_bytes(b"\0" * 100)  # half-written: not complete
    os.utime(folder / "m0.mrc", ns=(2 * 10**18, 2 * 10**18))  # m0 arrived last
    s = open_session(folder)
    assert [i.name for i in s.items] == ["m1.mrc", "m2.mrc", "m0.mrc"]
    assert s.current.name == "m1.mrc" and is_session_folder(folder)
    assert not is_session_folder(tmp_path)


def test_stepping_marks_and_counts(tmp_path):
    s = open_session(_folder(tmp_path))
    assert not s.step(-1) and s.step(1) and s.index == 1
    assert s.go(99) and s.index == 2 and s.at_newest
    s.mark(GOOD)
    s.go(0)
    assert s.toggle() == GOOD and s.toggle() == BAD
    assert s.counts() == {GOOD: 1, BAD: 1, "unmarked": 1}
    assert s.counts_line() == "good 1   bad 1   unmarked 1"
    assert [i.name for i in s.good_items()] == ["m2.mrc"]
    assert s.prefetch_plan() == [1]
    s.go(1)
    assert s.prefetch_plan() == [2, 0]


def test_follow_moves_only_when_at_the_newest(tmp_path):
    folder = _folder(tmp_path, 2)
    s = open_session(folder)
    s.go(1)
    _mic(folder / "new1.mrc", 5)
    assert [i.name for i in s.scan()] == ["new1.mrc"] and s.index == 2
    s.go(0)  # stepped away: stays
    _mic(folder / "new2.mrc", 6)
    assert len(s.scan()) == 1 and s.index == 0 and len(s) == 4
    assert s.scan() == []  # nothing new


def test_empty_folder_session_picks_up_the_first_arrival(tmp_path):
    s = open_session(tmp_path)
    assert len(s) == 0 and s.current is None and "no micrographs" in s.facts_line()
    _mic(tmp_path / "a.mrc")
    s.scan()
    assert s.current.name == "a.mrc"


def test_glob_session(tmp_path):
    folder = _folder(tmp_path)
    s = open_session(str(folder / "m[12].mrc"))
    assert sorted(i.name for i in s.items) == ["m1.mrc", "m2.mrc"]


def test_bad_sources_are_one_line_errors(tmp_path):
    for text, match in [("", "give a folder"), (tmp_path / "nope", "no such folder")]:
        with pytest.raises(InputError, match=match):
            open_session(text)
    with pytest.raises(InputError, match="a session is a folder"):
        open_session(_mic(tmp_path / "one.mrc"))


STAR = """
# version 30001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographPixelSize #3
_rlnVoltage #4
opticsGroup1 1 1.500000 300.0

# version 30001

data_micrographs

loop_
_rlnMicrographName #1
_rlnOpticsGroup #2
_rlnDefocusU #3
_rlnDefocusV #4
_rlnCtfMaxResolution #5
_rlnCtfFigureOfMerit #6
mics/m0.mrc 1 15234.5 14900.1 3.42 0.1234
mics/m1.mrc 1 20000.0 19000.0 5.10 0.0500
mics/m2.mrc 1 11000.0 10500.0 2.90 0.2000
"""


def test_star_session_facts_and_curation_keep_every_column(tmp_path):
    _folder(tmp_path)
    star = tmp_path / "ctf.star"
    star.write_text(STAR)
    s = open_session(star, project_dir=tmp_path)
    assert [i.path for i in s.items] == [tmp_path / "mics" / f"m{k}.mrc" for k in range(3)]
    line = s.facts_line(1.5)
    assert line.startswith("m0.mrc   1 / 3   1.5 A/px")
    assert "defocus U 1.52 um" in line and "CTF fit 3.4 A" in line
    assert s.scan() == []  # a STAR list is fixed
    s.mark(GOOD)
    s.go(2)
    s.mark(GOOD)
    s.go(1)
    s.mark(BAD)
    out, n = save_good_star(s, tmp_path / "good.star")
    assert n == 2
    blocks = read_star(out)
    src = read_star(star)
    assert list(blocks) == list(src)
    assert blocks["optics"].table.equals(src["optics"].table)
    assert blocks["micrographs"].columns == src["micrographs"].columns
    assert blocks["micrographs"].table["rlnMicrographName"].tolist() == [
        "mics/m0.mrc",
        "mics/m2.mrc",
    ]
    assert blocks["micrographs"].table["rlnCtfFigureOfMerit"].tolist() == ["0.1234", "0.2000"]
    with pytest.raises(InputError, match="input"):
        save_good_star(s, star)  # never over the input


def test_folder_curation_writes_a_new_relion_star(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    s = open_session(folder)
    with pytest.raises(InputError, match="no micrograph is marked good"):
        save_good_star(s, tmp_path / "good.star")
    s.go(1)
    s.mark(GOOD)
    out, n = save_good_star(s, tmp_path / "good.star")
    blocks = read_star(out)
    assert n == 1 and list(blocks) == ["optics", "micrographs"]
    assert blocks["micrographs"].table["rlnMicrographName"].tolist() == ["mics/m1.mrc"]
    assert float(blocks["optics"].table["rlnMicrographPixelSize"][0]) == pytest.approx(1.5)


def test_find_output_takes_only_complete_watch_outputs(tmp_path):
    item = SessionItem(_mic(tmp_path / "a.mrc"))
    out = tmp_path / "denoised"
    assert find_output(item, out) is None and find_output(item, None) is None
    out.mkdir()
    (out / "a.mrc").write_bytes(b"\0" * 10)
    assert find_output(item, out) is None
    _mic(out / "a.mrc", 3)
    assert find_output(item, out) == out / "a.mrc"
    assert find_output(item, tmp_path) is None  # the input itself is not an output
    time.sleep(0)
