"""run_batch on a real dask.distributed LocalCluster: identical results, resume, faults."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
torch = pytest.importorskip("torch")

from napari_cryodenoise import batch  # noqa: E402
from napari_cryodenoise.batch import split as batch_split  # noqa: E402
from napari_cryodenoise.batch import worker as batch_worker  # noqa: E402
from napari_cryodenoise.errors import InputError  # noqa: E402
from napari_cryodenoise.io import read_image, read_star_micrographs, write_mrc  # noqa: E402

SIZE = (96, 80)


# ----------------------------------------------------------------- helpers run on the workers


def reference_item(in_path: Path, out_path: Path, models: list, settings) -> None:
    """The per-micrograph function the batch runs by default."""
    batch.denoise_item(in_path, out_path, models, settings)


def kill_once(
    in_path: Path, out_path: Path, models: list, settings, *, marker: str, victim: str
) -> None:
    """Die (hard, like an OOM kill) in the middle of writing ``victim``, the first time only."""
    if Path(in_path).name == victim and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        partial = Path(out_path).with_name(f".{Path(out_path).name}.{os.getpid()}.partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"\0" * 512)  # a half-written temporary file
        os._exit(1)
    reference_item(in_path, out_path, models, settings)


def fail_some(
    in_path: Path, out_path: Path, models: list, settings, *, bad: tuple[str, ...]
) -> None:
    """Raise (a retryable error) for the inputs named in ``bad``."""
    if Path(in_path).name in bad:
        raise RuntimeError(f"simulated crash on {Path(in_path).name}")
    reference_item(in_path, out_path, models, settings)


def _load_count() -> int:
    return batch_worker._LOAD_COUNT


def _torch_threads() -> int:
    return torch.get_num_threads()


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    # the workers import this module by name to unpickle the helpers above
    sys.path.insert(0, str(Path(__file__).parent))
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=0,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    from napari_cryodenoise.models import build_model, save_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "tiny.pt"
    return save_model(build_model("fcnn", nf=4, kernel=5), path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("in")
    rng = np.random.default_rng(1)
    paths = []
    for i in range(6):
        img = rng.poisson(5.0 + 2.0 * rng.random(SIZE)).astype(np.float32)
        paths.append(write_mrc(folder / f"mic_{i:03d}.mrc", img, voxel_size=1.23))
    return paths


@pytest.fixture(scope="module")
def settings() -> dict:
    return {"device": "cpu"}


@pytest.fixture(scope="module")
def expected(inputs, model_path, settings, tmp_path_factory) -> dict[str, np.ndarray]:
    """Single-process results, computed directly with one torch thread."""
    from napari_cryodenoise.models import load_model

    folder = tmp_path_factory.mktemp("ref")
    models = [load_model(model_path)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for p in inputs:
            reference_item(p, folder / p.name, models, settings)
            out[p.name] = read_image(folder / p.name, mmap=False)[0]
    finally:
        torch.set_num_threads(threads)
    return out


def _pairs(inputs: list[Path], outdir: Path) -> list[tuple[Path, Path]]:
    return [(p, outdir / p.name) for p in inputs]


def _assert_identical(outdir: Path, expected: dict[str, np.ndarray]) -> None:
    for name, ref in expected.items():
        got = read_image(outdir / name, mmap=False)[0]
        np.testing.assert_array_equal(got, ref, err_msg=name)
    assert not list(outdir.glob(".*.partial")), "temporary files left behind"


# ----------------------------------------------------------------- no cluster


def test_bad_items_reported_not_run(tmp_path, inputs, model_path):
    pairs = [
        (inputs[0], tmp_path / "a.mrc"),
        (inputs[1], tmp_path / "a.mrc"),
        (inputs[2], inputs[0]),
    ]
    summary = batch.run_batch(pairs, [str(model_path)], {"device": "cpu"})
    assert [r.status for r in summary.results] == ["done", "failed", "failed"]
    assert "also written to" in summary.results[1].reason
    assert "overwrite an input" in summary.results[2].reason
    assert read_image(inputs[0])[0].dtype == np.float32  # untouched input
    with pytest.raises(ValueError):
        batch.run_batch([], [str(model_path)], cluster="local", scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError):
        batch.run_batch([], [str(model_path)], cluster="slurm")
    with pytest.raises(InputError):
        batch.run_batch(pairs, ["no-such-model"])


def test_in_process_run_matches_and_resumes(tmp_path, inputs, model_path, settings, expected):
    out = tmp_path / "out"
    pairs = _pairs(inputs[:3], out)
    seen = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = batch.run_batch(
            pairs,
            [str(model_path)],
            settings,
            item_fn=reference_item,
            progress=lambda d, t: seen.append((d, t)),
        )
    finally:
        torch.set_num_threads(threads)
    assert [r.status for r in summary.results] == ["done"] * 3
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    _assert_identical(out, {p.name: expected[p.name] for p in inputs[:3]})
    again = batch.run_batch(pairs, [str(model_path)], settings, item_fn=reference_item)
    assert [r.status for r in again.results] == ["skipped"] * 3
    assert "0 done, 3 skipped" in again.format()


# ----------------------------------------------------------------- on the LocalCluster


def test_cluster_identical_to_single_process(
    client, tmp_path, inputs, model_path, settings, expected
):
    before = client.run(_load_count)
    out = tmp_path / "out"
    star = tmp_path / "denoised.star"
    summary = batch.run_batch(
        _pairs(inputs, out),
        [str(model_path)],
        settings,
        client=client,
        threads_per_worker=1,
        item_fn=reference_item,
        out_star=star,
    )
    assert summary.ok and len(summary.done) == len(inputs), summary.format()
    _assert_identical(out, expected)
    # both workers took part, and each loaded the model once, not once per micrograph
    assert len({r.worker for r in summary.done}) == 2
    after = client.run(_load_count)
    assert all(after[w] - before.get(w, 0) == 1 for w in after), (before, after)
    assert set(client.run(_torch_threads).values()) == {1}
    # the STAR list names every output, in input order, resolvable from here
    listed = read_star_micrographs(star)
    assert [p.resolve() for p in listed] == [(out / p.name).resolve() for p in inputs]
    assert "_rlnMicrographPixelSize" in star.read_text()


def test_worker_killed_mid_run(client, tmp_path, inputs, model_path, settings, expected):
    out = tmp_path / "out"
    marker = tmp_path / "killed-once"
    fn = functools.partial(kill_once, marker=str(marker), victim=inputs[2].name)
    summary = batch.run_batch(
        _pairs(inputs, out), [str(model_path)], settings, client=client, item_fn=fn
    )
    assert marker.exists(), "the worker was never killed"
    assert summary.ok and len(summary.done) == len(inputs), summary.format()
    _assert_identical(out, expected)
    client.wait_for_workers(2, timeout=60)


def test_failures_retried_reported_then_resumed(
    client, tmp_path, inputs, model_path, settings, expected
):
    out = tmp_path / "out"
    pairs = _pairs(inputs, out)
    # an unreadable input fails at once (not retried); a crashing item is retried, then reported
    garbage = tmp_path / "garbage.mrc"
    garbage.write_bytes(b"\x07" * 100)
    pairs.append((garbage, out / "garbage.mrc"))
    messages: list[str] = []
    fn = functools.partial(fail_some, bad=(inputs[1].name,))
    first = batch.run_batch(
        pairs,
        [str(model_path)],
        settings,
        client=client,
        item_fn=fn,
        retries=1,
        log=messages.append,
    )
    by_name = {r.input.name: r for r in first.results}
    assert by_name[inputs[1].name].status == "failed"
    assert by_name[inputs[1].name].attempts == 2
    assert "simulated crash" in by_name[inputs[1].name].reason
    assert by_name["garbage.mrc"].status == "failed"
    assert by_name["garbage.mrc"].attempts == 1
    assert "too short for an MRC header" in by_name["garbage.mrc"].reason
    assert len(first.done) == len(inputs) - 1
    assert any(m.startswith("retrying") for m in messages)
    assert "FAILED" in first.format()
    assert not (out / inputs[1].name).exists()

    # damage one finished output (as a foreign truncated copy would) and restart
    victim = out / inputs[4].name
    victim.write_bytes(victim.read_bytes()[:2000])
    counted = []
    second = batch.run_batch(
        pairs[:-1],
        [str(model_path)],
        settings,
        client=client,
        item_fn=reference_item,
        progress=lambda d, t: counted.append(d),
    )
    status = {r.input.name: r.status for r in second.results}
    assert status.pop(inputs[1].name) == "done"
    assert status.pop(inputs[4].name) == "done"
    assert set(status.values()) == {"skipped"}
    assert counted[0] == len(inputs) - 2  # skipped items count as progress at once
    _assert_identical(out, expected)


def test_local_cluster_option(tmp_path, inputs, model_path, settings, expected):
    """``cluster="local:1"`` starts and closes its own cluster."""
    out = tmp_path / "out"
    summary = batch.run_batch(
        _pairs(inputs[:2], out),
        [str(model_path)],
        settings,
        cluster="local:1",
        threads_per_worker=1,
        item_fn=reference_item,
    )
    assert summary.ok and summary.workers == 1
    _assert_identical(out, {p.name: expected[p.name] for p in inputs[:2]})


def test_cli_scheduler_resume(client, tmp_path, inputs, model_path, expected, capsys):
    """``cryodenoise denoise --scheduler`` on the running cluster; a rerun skips everything."""
    from napari_cryodenoise.cli import main

    out = tmp_path / "out"
    argv = [
        "denoise",
        str(inputs[0].parent),
        "-o",
        str(out),
        "-m",
        str(model_path),
        "-d",
        "cpu",
        "--threads",
        "1",
        "--scheduler",
        client.scheduler_info()["address"],
    ]
    assert main(argv) == 0
    _assert_identical(out, expected)
    listed = read_star_micrographs(out / "denoised_micrographs.star")
    assert [p.name for p in listed] == [p.name for p in inputs]
    # the rerun attaches through a scheduler file (as dask-jobqueue / `dask scheduler` write)
    scheduler_file = tmp_path / "scheduler.json"
    scheduler_file.write_text(json.dumps({"address": client.scheduler_info()["address"]}))
    assert main([*argv[:-1], str(scheduler_file)]) == 0
    assert f"0 done, {len(inputs)} skipped" in capsys.readouterr().out
    # argparse: --cluster and --scheduler exclude each other (a one-line usage error, exit 2)
    assert main([*argv[:-2], "--cluster", "local", "--scheduler", "tcp://x:1"]) == 2
    assert main([*argv[:-2], "--cluster", "slurm"]) == 2


# ----------------------------------------------------------------- large inputs: planes groups


def _whole_file(in_path: Path, model: Path, folder: Path) -> np.ndarray:
    """Single-process, whole-file result of the default per-file function."""
    from napari_cryodenoise.models import load_model

    out = folder / f"whole_{in_path.name}"
    reference_item(in_path, out, [load_model(model)], {"device": "cpu"})
    return read_image(out, mmap=False)[0]


def test_stack_split_into_plane_groups_on_cluster(client, tmp_path, model_path):
    rng = np.random.default_rng(3)
    stack = rng.poisson(5.0, (7, 48, 40)).astype(np.float32)
    src = write_mrc(tmp_path / "stack.mrcs", stack, voxel_size=1.5)
    out = tmp_path / "out" / "stack.mrcs"
    summary = batch.run_batch(
        [(src, out)], [str(model_path)], {"device": "cpu"}, client=client, planes_per_task=3
    )
    (result,) = summary.results
    assert result.status == "done" and result.worker == "3 tasks", result
    got, info = read_image(out, mmap=False)
    np.testing.assert_array_equal(got, _whole_file(src, model_path, tmp_path))
    assert info.kind == "stack" and np.isclose(info.pixel_size, 1.5)
    assert sorted(p.name for p in out.parent.iterdir()) == ["stack.mrcs"]  # parts removed


def test_volume_slabs_equal_whole_volume_and_parts_resume(tmp_path):
    from napari_cryodenoise.models import build_model, load_model, save_model

    torch.manual_seed(0)
    model = save_model(build_model("unet-3d", nf=4), tmp_path / "tiny3d.pt")
    rng = np.random.default_rng(4)
    volume = rng.normal(2.0, 1.0, (40, 36, 36)).astype(np.float32)
    src = write_mrc(tmp_path / "tomo.rec", volume, voxel_size=(4.0, 4.0, 4.0), kind="volume")
    nets = [load_model(model)]
    cpu = {"device": "cpu"}
    assert batch.plane_groups(src, cpu, nets, 16) == [(0, 16), (16, 32), (32, 40)]
    assert batch.plane_groups(src, {**cpu, "bin_factor": 2.0}, nets, 16) is None  # whole-volume op
    assert batch.plane_groups(src, cpu, nets, None) is None  # small: one task
    assert batch.plane_groups(src, cpu, nets, 0) is None
    whole = _whole_file(src, model, tmp_path)

    out = tmp_path / "out" / "tomo.rec"
    # a previous, interrupted run already finished the middle slab: it is not redone
    done_part = batch.part_path(out, 1, 3)
    write_mrc(done_part, np.full((16, 36, 36), 7.0, np.float32), voxel_size=4.0, kind="volume")
    summary = batch.run_batch([(src, out)], [str(model)], {"device": "cpu"}, planes_per_task=16)
    assert summary.results[0].status == "done", summary.results[0]
    got = read_image(out, mmap=False)[0]
    assert np.all(got[16:32] == 7.0)
    tol = 1e-4 * float(whole.std())
    np.testing.assert_allclose(got[:16], whole[:16], atol=tol)
    np.testing.assert_allclose(got[32:], whole[32:], atol=tol)
    # a fresh run (overwrite) recomputes every slab: equal to the whole-volume result
    summary = batch.run_batch(
        [(src, out)], [str(model)], {"device": "cpu"}, planes_per_task=16, overwrite=True
    )
    np.testing.assert_allclose(read_image(out, mmap=False)[0], whole, atol=tol)
    assert not list(out.parent.glob(".*"))


def test_cli_planes_per_task(client, tmp_path, model_path, capsys):
    from napari_cryodenoise.cli import main

    stack = np.random.default_rng(5).poisson(5.0, (5, 40, 40)).astype(np.float32)
    src = write_mrc(tmp_path / "s.mrcs", stack, voxel_size=1.0)
    argv = ["denoise", str(src), "-o", str(tmp_path / "out"), "-m", str(model_path), "-d", "cpu"]
    assert main([*argv, "--planes-per-task", "2"]) == 2
    assert "use it with --cluster/--scheduler" in capsys.readouterr().err
    address = client.scheduler_info()["address"]
    assert main([*argv, "--planes-per-task", "2", "--scheduler", address]) == 0
    assert "1 done" in capsys.readouterr().out
    np.testing.assert_array_equal(
        read_image(tmp_path / "out" / "s.mrcs", mmap=False)[0],
        _whole_file(src, model_path, tmp_path),
    )


def test_failed_part_fails_the_item_and_a_rerun_does_only_that_part(
    tmp_path, model_path, monkeypatch
):
    stack = np.random.default_rng(6).poisson(5.0, (6, 40, 40)).astype(np.float32)
    src = write_mrc(tmp_path / "s.mrcs", stack, voxel_size=1.0)
    out = tmp_path / "out" / "s.mrcs"
    real = batch.denoise_part
    ran, broken = [], [(2, 4)]

    def flaky(in_path, out_path, models, settings, *, planes):
        ran.append(planes)
        if planes in broken:
            raise InputError(f"{in_path}: simulated bad planes")
        real(in_path, out_path, models, settings, planes=planes)

    monkeypatch.setattr(batch_split, "denoise_part", flaky)
    args = ([(src, out)], [str(model_path)], {"device": "cpu"})
    (result,) = batch.run_batch(*args, planes_per_task=2).results
    assert result.status == "failed" and "part0002of0003" in result.reason, result
    assert not out.exists() and len(list(out.parent.glob(".s.mrcs.part*"))) == 2
    ran.clear()
    broken.clear()
    (result,) = batch.run_batch(*args, planes_per_task=2).results
    assert result.status == "done" and ran == [(2, 4)]
    np.testing.assert_array_equal(
        read_image(out, mmap=False)[0], _whole_file(src, model_path, tmp_path)
    )
