"""Model files and resumable checkpoints (training/checkpoints.py), tested directly."""

from __future__ import annotations

import pytest
import torch

from napari_cryodenoise.errors import InputError
from napari_cryodenoise.models import load_model
from napari_cryodenoise.training.checkpoints import (
    CHECKPOINT_KEY,
    build_network,
    export_topaz,
    load_network,
    load_training_checkpoint,
    save_network,
    save_training_checkpoint,
)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)


def test_build_network_known_and_unknown():
    torch.manual_seed(0)
    assert build_network("affine").arch == "affine"
    with pytest.raises(InputError, match="unknown architecture"):
        build_network("resnet")


def test_save_and_load_network_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = build_network("affine")
    path = save_network(model, tmp_path / "m.pt", metadata={"step": 7})
    assert path == tmp_path / "m.pt" and path.is_file()
    loaded = load_network(path)
    _same_weights(model, loaded)
    assert loaded.metadata["step"] == 7
    assert not list(tmp_path.glob("*partial*"))  # atomic: no temporary left behind


def test_save_network_with_other_weights(tmp_path):
    torch.manual_seed(0)
    model = build_network("affine")
    other = {k: torch.full_like(v, 0.5) for k, v in model.state_dict().items()}
    save_network(model, tmp_path / "best.pt", state_dict=other, metadata={"name": "best"})
    loaded = load_model(tmp_path / "best.pt")
    for v in loaded.state_dict().values():
        assert torch.all(v == 0.5)
    assert loaded.metadata["name"] == "best"


def test_training_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = build_network("affine")
    training = {"step": 3, "history": [{"step": 1, "train_loss": 0.5}], "rng": [1, 2]}
    path = save_training_checkpoint(tmp_path / "c.ckpt.pt", model, training)
    loaded, state = load_training_checkpoint(path)
    _same_weights(model, loaded)
    assert state == training and loaded.name == "affine"
    raw = torch.load(path, weights_only=True)
    assert raw[CHECKPOINT_KEY] == training
    _same_weights(model, load_model(path))  # a checkpoint is also a model file


def test_load_training_checkpoint_errors(tmp_path):
    with pytest.raises(InputError, match="no such checkpoint"):
        load_training_checkpoint(tmp_path / "missing.ckpt.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=r"junk\.pt: not a readable checkpoint"):
        load_training_checkpoint(junk)
    final = save_network(build_network("affine"), tmp_path / "final.pt")
    with pytest.raises(InputError, match="not a training checkpoint.*use --init"):
        load_training_checkpoint(final)


def test_export_topaz(tmp_path):
    torch.manual_seed(0)
    model = build_network("affine")
    path = export_topaz(model, tmp_path / "m.sav")
    state = torch.load(path, weights_only=True)
    torch.testing.assert_close(state["filter.weight"], model.filter.weight)
    with pytest.raises(InputError, match="unet-fast has no Topaz equivalent"):
        export_topaz(build_network("unet-fast"), tmp_path / "fast.sav")
