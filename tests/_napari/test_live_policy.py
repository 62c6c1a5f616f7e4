"""Qt-free parts of the live view: progress/ETA, the contrast policy, holding the last result."""

import numpy as np
import pytest

from napari_cryodenoise._napari.contrast import LiveContrast, apply_preview, data_range, union
from napari_cryodenoise._napari.eta import Eta, format_seconds
from napari_cryodenoise._napari.layers import apply_data_range, layer_kwargs
from napari_cryodenoise._napari.tiles import Job, TileStore, resample_nearest
from napari_cryodenoise.io import ImageInfo


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_eta_interpolates_inside_a_tile_and_estimates_time_left():
    clock = Clock()
    eta = Eta(clock)
    eta.reset(4)
    assert eta.fraction() == 0 and eta.remaining() is None
    clock.t += 3
    assert eta.text() == "0/4 tiles (0%), 3 s so far"
    clock.t += 7
    eta.update(1, 4)  # 10 s per tile
    assert eta.per_step == pytest.approx(10) and eta.remaining() == pytest.approx(30)
    clock.t += 5  # half-way through the second tile: finer than 4 steps
    assert eta.fraction() == pytest.approx(1.5 / 4)
    assert eta.text() == "1/4 tiles (37%), ~25 s left"
    clock.t += 100  # a slow tile never shows as finished before it is
    assert eta.fraction() == pytest.approx(1.95 / 4) and eta.remaining() == 0
    eta.update(4, 4)
    assert eta.fraction() == 1 and eta.text("tiles") == "4/4 tiles (100%)"
    eta.update(0, 9)  # another job
    assert eta.total == 9 and eta.done == 0
    # only part of the rest is planned (live view without "fill")
    eta.reset(10, done=2)
    clock.t += 4
    eta.update(4, 10)
    assert eta.remaining(steps=3) == pytest.approx(6)
    assert "~6 s left" in eta.text(steps=3)
    assert format_seconds(125) == "2 min 5 s" and format_seconds(3700) == "1 h 1 min"


def test_contrast_is_set_by_the_preview_once_and_never_by_the_user_s_back():
    rng = np.random.default_rng(0)
    policy = LiveContrast()
    preview = rng.normal(100, 2, (64, 64))
    limits = policy.on_preview((0, 1), preview)
    assert limits is not None and 90 < limits[0] < limits[1] < 110
    assert policy.on_preview(limits, preview * 10) is None  # tiles/other planes: kept
    policy.new_result()  # settings changed: the next preview sets them again
    again = policy.on_preview(limits, preview + 50)
    assert again is not None and again[0] > 140
    policy.new_result()
    assert policy.on_preview((0, 5), preview) is None and policy.user  # the user's contrast wins

    class Layer:
        contrast_limits = (0.0, 1.0)
        contrast_limits_range = (0.0, 1.0)

    layer = Layer()
    assert apply_preview(layer, LiveContrast(), preview)
    assert layer.contrast_limits_range[1] >= preview.max()
    assert data_range(np.array([[3, 9], [5, 4]])) == (3.0, 9.0)
    assert union((0, 2), (1, 5)) == (0, 5)


def test_holding_the_last_result_until_the_preview():
    store = TileStore((2, 600, 500), 256, fill_value=7.0, levels=1)
    last = np.arange(300 * 250, dtype=np.float32).reshape(300, 250)  # e.g. bin 2 before
    assert store.hold(1, last)
    plane = store[1]
    assert plane.shape == (600, 500) and plane[599, 499] == last[-1, -1]
    assert store[0][0, 0] == 7.0 and not store.is_done(Job("preview", 1))
    assert not store.hold(1, last)  # only an empty plane
    store.put(Job("preview", 1), np.zeros((600, 500), np.float32))
    assert np.all(store[1] == 0) and np.all(store.coarsest(1) == 0)
    assert store.coarsest(1).shape == (300, 250)
    assert resample_nearest(last, (3, 2)).shape == (3, 2)


def test_reader_records_the_data_range_for_the_contrast_slider():
    data = np.full((64, 64), 100, np.uint16)
    data[0, 0], data[5, 5] = 3, 9000
    info = ImageInfo(path=None, kind="image", shape=data.shape, voxel_size=(1.0, 1.0, 1.0))
    kwargs = layer_kwargs(data, info)
    assert kwargs["metadata"]["cryodenoise"]["data_range"] == [3.0, 9000.0]

    class Layer:
        metadata = kwargs["metadata"]
        contrast_limits_range = list(kwargs["contrast_limits"])

    layer = Layer()
    assert apply_data_range(layer) and layer.contrast_limits_range == [3.0, 9000.0]
    assert not apply_data_range(layer)


def test_live_threads_use_every_core_on_small_machines():
    from napari_cryodenoise._napari.threads import RESERVE_CORE_ABOVE, live_threads

    # a reserved core costs half the throughput on 2 cores, a quarter on 4
    assert [live_threads(n) for n in (1, 2, 4)] == [1, 2, 4]
    # larger machines keep one core for the GUI
    assert live_threads(RESERVE_CORE_ABOVE + 1) == RESERVE_CORE_ABOVE
    assert live_threads(16) == 15
    assert live_threads() >= 1
