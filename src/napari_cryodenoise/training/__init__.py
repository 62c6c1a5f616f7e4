"""Training denoisers: Noise2Noise on even/odd halves of movies, blind-spot on single images.

Typical use::

    from napari_cryodenoise.training import TrainConfig, pairs_from_movies, train_noise2noise

    pairs = pairs_from_movies(["a.mrcs", "b.mrcs"], frames="0:40", align=True)
    result = train_noise2noise(pairs, TrainConfig(minutes=10, output="my_model.pt"))
    result.model  # best network, loadable later with load_model("my_model.pt")

Modules: :mod:`.config` (settings), :mod:`.pair` / :mod:`.pairs` / :mod:`.half_names` /
:mod:`.pair_sources` (training data), :mod:`.alignment` (drift), :mod:`.sampling`
(crops), :mod:`.trainer` (the loop), :mod:`.validation`, :mod:`.checkpoints`,
:mod:`.results`, :mod:`.noise2noise` (entry points), :mod:`.step_time` (time per step).
Names are imported on first use, so
``from napari_cryodenoise.training import TrainConfig`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> submodule that defines it.
_NAMES: dict[str, str] = {
    "TOPAZ_DEFAULTS": "config",
    "TrainConfig": "config",
    "CropSampler": "sampling",
    "split_validation": "sampling",
    "ImagePair": "pair",
    "PairSource": "pair",
    "MovieReader": "pairs",
    "estimate_drift": "alignment",
    "pair_from_arrays": "pairs",
    "pair_from_movie": "pairs",
    "pairs_from_files": "pairs",
    "pairs_from_folders": "pairs",
    "pairs_from_movies": "pairs",
    "parse_frame_range": "pairs",
    "read_single_images": "pairs",
    "pairs_from_pair_folder": "pair_sources",
    "pairs_from_star": "pair_sources",
    "TrainResult": "results",
    "TrainStatus": "results",
    "TrainingCancelled": "results",
    "TrainingDiverged": "results",
    "blind_spot": "masked",
    "build_network": "checkpoints",
    "export_topaz": "checkpoints",
    "load_network": "checkpoints",
    "load_training_checkpoint": "checkpoints",
    "save_network": "checkpoints",
    "save_training_checkpoint": "checkpoints",
    "StepEstimate": "step_time",
    "estimate_step_seconds": "step_time",
    "train": "noise2noise",
    "train_masked": "noise2noise",
    "train_noise2noise": "noise2noise",
    "validation_loss": "validation",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
