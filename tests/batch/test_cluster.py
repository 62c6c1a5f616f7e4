"""--cluster parsing and the worker-count default (no cluster is started)."""

from __future__ import annotations

import pytest

from napari_cryodenoise.batch.cluster import default_local_workers, parse_cluster


def test_parse_cluster():
    assert parse_cluster("local") is None
    assert parse_cluster("local:3") == 3
    for bad in ("local:0", "local:x", "slurm", ""):
        with pytest.raises(ValueError):
            parse_cluster(bad)


def test_default_local_workers_is_positive():
    assert default_local_workers() >= 1
