"""Progressive live denoising without Qt: tile grid, job planning, store, memory budget."""

import threading

import numpy as np
import pytest

from napari_cryodenoise.engine.preview import preview_shape
from napari_cryodenoise.engine.progressive import (
    Claims,
    LiveJob,
    ProgressiveGrid,
    ProgressiveStore,
    StoreCache,
    clip_box,
    plan_jobs,
)


def test_tile_grid_covers_the_plane_nearest_first():
    grid = ProgressiveGrid((300, 200), 64)
    assert grid.counts == (5, 4)
    assert grid.slices(4, 3) == (slice(256, 300), slice(192, 200))
    tiles = grid.tiles_in_box(((100.0, 140.0), (70.0, 120.0)))
    assert set(tiles) == {(1, 1), (2, 1)}
    assert grid.tiles_in_box(((0.0, 300.0), (0.0, 200.0)))[0] in {(2, 1), (2, 2)}
    assert clip_box(((-50.0, 10.0), (190.0, 400.0)), (300, 200)) == ((0.0, 10.0), (190.0, 200.0))
    assert clip_box(((400.0, 500.0), (0.0, 10.0)), (300, 200)) is None
    assert preview_shape((4096, 3000), 512) == (512, 375)
    assert preview_shape((100, 80), 512) == (100, 80)


def test_plan_orders_preview_visible_neighbours_rest_and_skips_done():
    store = ProgressiveStore((3, 256, 256), 64)
    box = ((64.0, 128.0), (64.0, 128.0))  # exactly tile (1, 1)
    jobs = plan_jobs(store, box, plane=1, neighbours=1, fill=True)
    assert jobs[0] == LiveJob("preview", 1)
    assert jobs[1] == LiveJob("tile", 1, 1, 1)
    rest = jobs[2 : 2 + 15]
    assert {(j.iy, j.ix) for j in rest} == {(y, x) for y in range(4) for x in range(4)} - {(1, 1)}
    assert all(j.plane == 1 for j in rest)
    assert jobs[17:] == [
        LiveJob("preview", 2),
        LiveJob("tile", 2, 1, 1),
        LiveJob("preview", 0),
        LiveJob("tile", 0, 1, 1),
    ]
    store.put(LiveJob("tile", 1, 1, 1), np.ones((64, 64), np.float32))
    again = plan_jobs(store, box, plane=1, neighbours=0, fill=False)
    assert again == [LiveJob("preview", 1)]
    assert plan_jobs(store, box, 1, fill=False, skip=[LiveJob("preview", 1)]) == []


def test_store_is_an_array_with_previews_under_tiles():
    store = ProgressiveStore((2, 600, 550), 256, fill_value=5.0)
    assert store.shape == (2, 600, 550) and store.dtype == np.float32 and store.ndim == 3
    assert np.all(store[0] == 5.0) and store[1, 10:20, :5].shape == (10, 5)
    assert not store.preview_is_exact
    tile = np.full((256, 256), 2.0, np.float32)
    store.put(LiveJob("tile", 0, 0, 1), tile)
    store.put(LiveJob("preview", 0), np.full((600, 550), 1.0, np.float32))
    plane = store[0]
    assert np.all(plane[:256, 256:512] == 2.0)  # a preview never overwrites a finished tile
    assert plane[300, 300] == 1.0 and np.all(store[1] == 5.0)
    assert store[0:1].shape == (1, 600, 550)
    full = np.asarray(store)
    assert full.shape == (2, 600, 550) and full[0, 0, 300] == 2.0
    assert store.is_done(LiveJob("tile", 0, 0, 1)) and not store.is_done(LiveJob("tile", 0, 0, 0))
    assert store.tiles_done(0) == 1 and not store.is_complete()
    with pytest.raises(ValueError):
        store.put(LiveJob("tile", 0, 2, 2), np.zeros((5, 5), np.float32))


def test_store_keeps_block_mean_display_levels():
    from napari_cryodenoise._napari.layers import bin_mean
    from napari_cryodenoise._napari.tiles import pyramid_depth

    assert pyramid_depth((2048, 1000)) == 0 and pyramid_depth((3838, 3710)) == 2
    assert pyramid_depth((5, 4096, 4096)) == 2
    store = ProgressiveStore((2100, 2050), 512, fill_value=1.0, levels=pyramid_depth((2100, 2050)))
    levels = store.layer_data()
    assert [v.shape for v in levels] == [(2100, 2050), (1050, 1025), (525, 512)]
    assert store.shows(levels) and store.shows(store) and not store.shows(np.zeros(3))
    rng = np.random.default_rng(0)
    store.put(LiveJob("preview", 0), rng.normal(size=(2100, 2050)).astype(np.float32))
    store.put(LiveJob("tile", 0, 1, 3), rng.normal(size=(512, 512)).astype(np.float32))
    store.put(LiveJob("tile", 0, 4, 4), rng.normal(size=(52, 2)).astype(np.float32))  # corner
    full = np.asarray(store)
    np.testing.assert_allclose(np.asarray(levels[1]), bin_mean(full), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        levels[2][100:200, 300:], bin_mean(full, 4)[100:200, 300:], rtol=1e-5, atol=1e-6
    )
    assert store.nbytes == sum(v.size * 4 for v in levels)


def test_small_images_get_an_exact_preview():
    store = ProgressiveStore((100, 90), 32)
    assert store.preview_is_exact
    store.put(LiveJob("preview", 0), np.zeros((100, 90), np.float32))
    assert store.is_complete()
    assert plan_jobs(store, ((0.0, 100.0), (0.0, 90.0)), 0) == []


def test_volume_store_slabs_and_3d_preview():
    store = ProgressiveStore((40, 128, 128), 64, volume=True, slab=16)
    assert store.n_job_planes == 3 and store.plane_job_index(35) == 2
    assert store.slab_range(2) == (32, 40) and not store.preview_is_exact
    store.put(LiveJob("preview", -1), np.arange(8 * 8 * 8, dtype=np.float32).reshape(8, 8, 8))
    assert store[39].shape == (128, 128) and store[39][0, 0] == 7 * 64  # nearest upsampling
    slab = np.full((8, 64, 64), 3.0, np.float32)
    store.put(LiveJob("tile", 2, 0, 0), slab)
    assert store.is_done(LiveJob("tile", 2, 0, 0))
    assert np.all(store[33][:64, :64] == 3.0) and store[33][100, 100] == 6 * 64 + 6 * 8 + 6
    jobs = plan_jobs(store, ((0.0, 128.0), (0.0, 128.0)), plane=33, fill=False)
    assert LiveJob("tile", 2, 0, 0) not in jobs and LiveJob("tile", 2, 1, 1) in jobs


def test_cache_budget_evicts_least_recent_unpinned_planes():
    cache = StoreCache(budget=3 * 64 * 64 * 4)
    a = cache.put("a", ProgressiveStore((5, 64, 64), 32))
    for z in range(5):
        a.put(LiveJob("tile", z, 0, 0), np.zeros((32, 32), np.float32))
        a.claims.add(LiveJob("tile", z, 0, 0))
    evicted = cache.enforce({id(a): {0}})
    assert [p for _, p, _ in evicted] == [1, 2]
    assert cache.nbytes <= cache.budget
    assert a.planes_lru() == [0, 3, 4]
    assert LiveJob("tile", 1, 0, 0) not in a.claims and LiveJob("tile", 3, 0, 0) in a.claims
    assert not a.is_done(LiveJob("tile", 1, 0, 0))


def test_claims_are_thread_safe_sets():
    claims = Claims()
    threads = [
        threading.Thread(target=lambda i=i: claims.add(LiveJob("tile", 0, i, 0)))
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claims.snapshot()) == 20
    claims.discard_all([LiveJob("tile", 0, 0, 0)])
    assert LiveJob("tile", 0, 0, 0) not in claims


def test_sketch_comes_first_only_on_an_empty_plane_and_never_over_a_preview():
    store = ProgressiveStore((2, 512, 512), 256, fill_value=1.0)
    box = ((0.0, 512.0), (0.0, 512.0))
    jobs = plan_jobs(store, box, plane=1, fill=False, sketch=True)
    assert jobs[:2] == [LiveJob("sketch", 1), LiveJob("preview", 1)]
    assert plan_jobs(store, box, plane=1, fill=False)[0] == LiveJob("preview", 1)
    sketch = np.full((512, 512), 3.0, np.float32)
    assert store.put(LiveJob("sketch", 1), sketch) == [1]
    assert store[1, 5, 5] == 3.0 and store.is_done(LiveJob("sketch", 1))
    assert not store.is_done(LiveJob("preview", 1))  # the preview is still to do
    assert plan_jobs(store, box, plane=1, fill=False, sketch=True)[0] == LiveJob("preview", 1)
    store.put(LiveJob("preview", 1), np.full((512, 512), 4.0, np.float32))
    assert store.put(LiveJob("sketch", 1), sketch) == []  # late: dropped
    assert store[1, 5, 5] == 4.0
    store.put(LiveJob("tile", 0, 0, 0), np.zeros((256, 256), np.float32))
    assert not store.wants_sketch(0)  # something denoised shows there already
    assert not ProgressiveStore((256, 256), 128).wants_sketch(0)  # the preview is exact
    store.evict(1)
    assert store.wants_sketch(1)
