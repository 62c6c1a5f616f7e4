"""The self-ensemble option travels: options -> engine kwargs, labels, RELION, batch joins."""

from __future__ import annotations

from napari_cryodenoise.batch.split import Tasks
from napari_cryodenoise.options import DenoiseOptions, FileOptions
from napari_cryodenoise.provenance import mrc_labels, option_labels, summary
from napari_cryodenoise.relion.arguments import parse_job_args


def test_options_forward_to_the_engine():
    assert DenoiseOptions().ensemble is False
    assert DenoiseOptions().engine_kwargs(1.0)["ensemble"] is False
    assert FileOptions(ensemble=True).engine_kwargs(1.0)["ensemble"] is True


def test_labels_only_when_on():
    assert option_labels(FileOptions()) == []
    assert option_labels(FileOptions(ensemble=True))[0].startswith("ensemble=8")
    facts = {"denoise": {"version": "1"}, "settings": {"model": "unet", "ensemble": True}}
    assert any("ensemble=8" in line for line in mrc_labels(facts))
    assert "self-ensemble" in summary(facts)
    facts["settings"]["ensemble"] = False
    assert not any("ensemble" in line for line in mrc_labels(facts))


def test_joined_outputs_keep_the_label():
    assert (
        Tasks.plan([], [], None, FileOptions(ensemble=True), [], None)
        .labels[0]
        .startswith("ensemble=8")
    )
    assert Tasks.plan([], [], None, {"ensemble": False}, [], None).labels == ()


def test_relion_flag():
    job = parse_job_args(["--o", "External/job1/", "--in_mics", "m.star", "--ensemble"])
    assert "--ensemble" in job.denoise
