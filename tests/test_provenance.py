"""Packing a result's provenance into MRC header labels."""

from napari_cryodenoise.provenance import MAX_LABELS, mrc_labels, pack_labels, summary

FACTS = {
    "source_path": "/data/" + "deep/" * 30 + "FoilHole_1_Data_2_fractions.mrc",
    "settings": {
        "model": "unet",
        "device": "auto",
        "precision": "bf16",
        "gaussian": 0.0,
        "bin_factor": 4,
        "mode": "visible region (live)",
    },
    "denoise": {
        "model": "unet",
        "model_arch": "unet",
        "mode": "visible region (live)",
        "stacked": False,
        "version": "1.2.3",
        "device_used": "cpu",
        "created": "2025-05-01T12:00:00Z",
    },
}


def test_labels_fit_the_header_and_keep_every_setting():
    labels = mrc_labels(FACTS)
    assert len(labels) <= MAX_LABELS and all(len(lbl) <= 80 for lbl in labels)
    assert labels[0] == "napari-cryodenoise 1.2.3 denoise 2025-05-01T12:00:00Z"
    text = " ".join(labels)
    for item in ("model=unet", "bin=4", "lowpass=off", "patch=auto", "device=auto(cpu)"):
        assert item in text
    assert "precision=bf16" in text and "mode=live" in text
    # the long input path continues over labels and reads back whole
    path = "".join(lbl.split("=", 1)[1] for lbl in labels if lbl.startswith(("input=", "input+=")))
    assert path == FACTS["source_path"]
    assert mrc_labels({"kind": "image"}) == []  # not a result: no labels


def test_pack_labels_groups_and_limits():
    lines = pack_labels([[("a", 1), ("b", "x y")], [("c", True)]], width=10, max_lines=5)
    assert lines == ["a=1 b=x_y", "c=1"]
    assert len(pack_labels([[("k", "v" * 500)]], max_lines=3)) == 3


def test_summary_is_one_short_line():
    line = summary(FACTS)
    assert line.startswith("FoilHole_1_Data_2_fractions.mrc -> unet, bin 4, low-pass off")
    assert "cpu bf16" in line and line.endswith("v1.2.3")
