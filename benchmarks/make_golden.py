"""Generate the golden files that prove our networks compute what Topaz's do.

The reference outputs come from Topaz-Denoise's own model classes, run once
here; Topaz is never installed, imported by the tests, or kept in the repo.

How to regenerate (one-off, needs the network for the first step)::

    pip download --no-deps topaz-em==0.3.20 -d /tmp/topaz
    mkdir -p /tmp/topaz_src && unzip -q -o /tmp/topaz/topaz_em-0.3.20-py3-none-any.whl \
        -d /tmp/topaz_src
    python benchmarks/make_golden.py --topaz /tmp/topaz_src \
        --real /tmp/topaz_src/topaz/pretrained/denoise --out tests/data

Outputs (float64 reference rounded to float32):

* ``tests/data/golden_random.npz``: for every architecture, deterministic
  weights (``numpy.random.RandomState(WEIGHT_SEED)``, see
  :func:`deterministic_state_dict`, duplicated in ``tests/test_models.py``)
  applied to ``RandomState(INPUT_SEED)`` normal inputs of a few odd and even
  sizes. Keys: ``<arch>/<case>/shape``, ``<arch>/<case>/output`` (full output,
  or ``.../index`` + ``.../values`` for a sample of a 3D output) and
  ``<arch>/checksum`` (sum |w| of the weights, to catch a drifting generator).
* ``tests/data/golden_real.npz`` (with ``--real``): the pretrained weights
  files applied to a fixed input; only 256 sampled output values per file are
  stored (never weights), plus the file's sha256.

This script is not imported by the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

WEIGHT_SEED = 1234
INPUT_SEED = 42
REAL_SEED = 7

# arch -> input shapes (N, C, *spatial); odd sizes exercise non-doubling
# upsampling, even ones the exact-2x (phase) path.
CASES: dict[str, list[tuple[int, ...]]] = {
    "unet": [(1, 1, 67, 45), (1, 1, 64, 40)],
    "unet-v0.2.1": [(1, 1, 67, 45), (1, 1, 48, 40)],
    "unet-small": [(1, 1, 45, 37), (1, 1, 40, 36)],
    "fcnn": [(1, 1, 33, 29)],
    "affine": [(1, 1, 33, 29)],
    "unet-3d": [(1, 1, 32, 33, 34), (1, 1, 32, 32, 32)],
}
N_SAMPLE_3D = 1024
N_SAMPLE_REAL = 256

REAL_FILES = {
    "unet_L2_v0.2.2.sav": "unet",
    "unet_L2_v0.2.1.sav": "unet-v0.2.1",
    "unet_small_L1_v0.2.2.sav": "unet-small",
    "fcnn_L1_v0.2.2.sav": "fcnn",
    "affine_L1_v0.2.2.sav": "affine",
    "unet-3d-10a-v0.2.4.sav": "unet-3d",
    "unet-3d-20a-v0.2.4.sav": "unet-3d",
}
REAL_SHAPES = {2: (1, 1, 64, 64), 3: (1, 1, 32, 32, 32)}


def deterministic_state_dict(shapes: dict[str, tuple[int, ...]], seed: int) -> dict:
    """Weights from one RandomState, keys in sorted order; He-like scale, small biases."""
    rs = np.random.RandomState(seed)
    out = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if key.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
            w = rs.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        else:
            w = 0.1 * rs.standard_normal(shape)
        out[key] = torch.from_numpy(w.astype(np.float32))
    return out


def topaz_model(arch: str):
    """Build the network with Topaz's own classes, as its load_model does."""
    from topaz.denoising import models as tm
    from topaz.filters import AffineDenoise

    return {
        "unet": lambda: tm.UDenoiseNet(base_width=11, top_width=5),
        "unet-v0.2.1": lambda: tm.UDenoiseNet(base_width=7, top_width=3),
        "unet-small": lambda: tm.UDenoiseNetSmall(width=11, top_width=5),
        "fcnn": lambda: tm.DenoiseNet2(64, width=11),
        "affine": lambda: AffineDenoise(max_size=31),
        "unet-3d": lambda: tm.UDenoiseNet3D(base_width=7),
    }[arch]().eval()


def _run64(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.double()(torch.from_numpy(x).double()).numpy()


def make_random(out: Path, check_ours: bool) -> None:
    data: dict[str, np.ndarray] = {
        "weight_seed": np.int64(WEIGHT_SEED),
        "input_seed": np.int64(INPUT_SEED),
    }
    for arch, shapes in CASES.items():
        ref = topaz_model(arch)
        sd = deterministic_state_dict(
            {k: tuple(v.shape) for k, v in ref.state_dict().items()}, WEIGHT_SEED
        )
        ref.load_state_dict(sd, strict=True)
        checksum = sum(float(v.double().abs().sum()) for v in sd.values())
        data[f"{arch}/checksum"] = np.float64(checksum)
        ours = None
        if check_ours:
            from napari_cryodenoise.models import build_model

            ours = build_model(arch)
            ours.load_state_dict(sd, strict=True)
        for case, shape in enumerate(shapes):
            x = np.random.RandomState(INPUT_SEED).standard_normal(shape).astype(np.float32)
            y = _run64(ref, x).astype(np.float32)
            key = f"{arch}/{case}"
            data[f"{key}/shape"] = np.array(shape, dtype=np.int64)
            if len(shape) == 5:
                idx = np.random.RandomState(INPUT_SEED + 1).choice(y.size, N_SAMPLE_3D, False)
                data[f"{key}/index"] = np.sort(idx).astype(np.uint16)
                data[f"{key}/values"] = y.ravel()[np.sort(idx)]
            else:
                data[f"{key}/output"] = y
            if ours is not None:
                with torch.no_grad():
                    mine = ours(torch.from_numpy(x)).numpy()
                err = np.abs(mine - y).max() / np.abs(y).max()
                print(f"{arch} {shape}: ours vs topaz max rel diff {err:.2e}")
    np.savez_compressed(out / "golden_random.npz", **data)


def make_real(folder: Path, out: Path, check_ours: bool) -> None:
    data: dict[str, np.ndarray] = {"input_seed": np.int64(REAL_SEED)}
    for fname, arch in REAL_FILES.items():
        path = folder / fname
        sd = torch.load(path, map_location="cpu", weights_only=True)
        ref = topaz_model(arch)
        ref.load_state_dict(sd, strict=True)
        ndim = 3 if arch == "unet-3d" else 2
        shape = REAL_SHAPES[ndim]
        x = np.random.RandomState(REAL_SEED).standard_normal(shape).astype(np.float32)
        y = _run64(ref, x).astype(np.float32)
        idx = np.sort(np.random.RandomState(REAL_SEED + 1).choice(y.size, N_SAMPLE_REAL, False))
        data[f"{fname}/sha256"] = np.array(hashlib.sha256(path.read_bytes()).hexdigest())
        data[f"{fname}/shape"] = np.array(shape, dtype=np.int64)
        data[f"{fname}/index"] = idx.astype(np.uint16)
        data[f"{fname}/values"] = y.ravel()[idx]
        if check_ours:
            from napari_cryodenoise.models import load_model

            ours = load_model(path)
            with torch.no_grad():
                mine = ours(torch.from_numpy(x)).numpy()
            err = np.abs(mine - y).max() / np.abs(y).max()
            print(f"real {fname}: ours vs topaz max rel diff {err:.2e}")
    np.savez_compressed(out / "golden_real.npz", **data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--topaz",
        required=True,
        type=Path,
        help="folder containing the unpacked 'topaz' package (from the wheel)",
    )
    parser.add_argument("--real", type=Path, help="folder with Topaz's pretrained .sav files")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "tests" / "data")
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="do not compare napari_cryodenoise's networks while generating",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.topaz))
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    make_random(args.out, not args.no_check)
    if args.real:
        make_real(args.real, args.out, not args.no_check)
    for f in sorted(args.out.glob("golden_*.npz")):
        print(f"{f}: {f.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
