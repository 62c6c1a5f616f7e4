"""The one rule for an earlier training run's files (used by ``cryodenoise train`` and the
Train widget): which output exists, and the line that says so."""

from __future__ import annotations

import os

from napari_cryodenoise.training.config import TrainConfig
from napari_cryodenoise.training.existing import existing_output, train_outputs


def test_outputs_are_the_model_the_checkpoint_and_the_topaz_export(tmp_path):
    config = TrainConfig(output=str(tmp_path / "m.pt"), export_topaz=str(tmp_path / "m.sav"))
    assert train_outputs(config) == [
        ("model", tmp_path / "m.pt"),
        ("checkpoint", tmp_path / "m.ckpt.pt"),
        ("topaz", tmp_path / "m.sav"),
    ]
    assert existing_output(config) is None


def test_the_first_existing_output_is_named_with_the_way_to_continue(tmp_path):
    config = TrainConfig(output=str(tmp_path / "m.pt"), export_topaz=str(tmp_path / "m.sav"))
    (tmp_path / "m.sav").write_bytes(b"x")
    found = existing_output(config)
    assert (found.kind, found.path, found.checkpoint) == ("topaz", tmp_path / "m.sav", None)
    (tmp_path / "m.ckpt.pt").write_bytes(b"x")
    found = existing_output(config)
    assert (found.kind, found.checkpoint) == ("checkpoint", tmp_path / "m.ckpt.pt")
    os.symlink(tmp_path / "gone.pt", tmp_path / "m.pt")  # a broken link counts too
    found = existing_output(config)
    assert found.kind == "model"
    line = found.message("-o", ["choose another -o", "add --overwrite", "--resume X"])
    assert line == (
        f"-o {tmp_path / 'm.pt'}: already exists (an earlier run's?); nothing was written: "
        "choose another -o, add --overwrite or --resume X"
    )
    assert found.message("x", ["delete it"]).endswith("nothing was written: delete it")


def test_a_resumed_run_goes_on_writing_its_model_and_checkpoint(tmp_path):
    for name in ("m.pt", "m.ckpt.pt"):
        (tmp_path / name).write_bytes(b"x")
    ckpt = str(tmp_path / "m.ckpt.pt")
    assert existing_output(TrainConfig(output=str(tmp_path / "m.pt"), resume=ckpt)) is None
    # another checkpoint file than the one resumed is still an earlier run's
    (tmp_path / "b.ckpt.pt").write_bytes(b"x")
    found = existing_output(
        TrainConfig(output=str(tmp_path / "m.pt"), checkpoint=str(tmp_path / "b.ckpt.pt"),
                    resume=ckpt)
    )  # fmt: skip
    assert (found.kind, found.checkpoint) == ("checkpoint", None)
    # a --resume that is no file resumes nothing: the outputs count
    found = existing_output(TrainConfig(output=str(tmp_path / "m.pt"), resume="nope.ckpt.pt"))
    assert found.kind == "model"
