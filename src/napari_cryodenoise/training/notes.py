"""Lines that tell a user where a training run does not do what its settings say."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .config import TrainConfig
from .data_print import DATA_KEY, data_notes
from .pair import ImagePair
from .sampling import CropSampler

__all__ = ["resume_notes", "setup_notes"]

#: TrainConfig's input share; another value is the user's, noted when it cannot apply.
DEFAULT_INPUT_SHARE = TrainConfig.input_share


def setup_notes(
    config: TrainConfig, pairs: Sequence[ImagePair], sampler: CropSampler
) -> list[str]:
    """Notes on settings the data overrule: a smaller crop, pairing options without frames.

    Parameters
    ----------
    config : TrainConfig
        The complete settings (crop filled in, pairing resolved).
    pairs : sequence of ImagePair
        The training data.
    sampler : CropSampler
        The sampler made for them (its first crop side).

    Returns
    -------
    list of str
        One line per setting that is not followed as given; empty when all are.

    """
    notes = []
    crop = int(config.crop or 0)
    if sampler.max_crop < crop:
        region = min(sampler.train, key=lambda r: min(r.shape))
        smallest = min(region.shape)
        name = sampler.pairs[region.pair].name
        why = (
            f"the smallest training region is {smallest} px ({name})"
            if smallest < crop
            else f"the network needs a multiple of {sampler.multiple} px"
        )
        notes.append(f"crops are {sampler.max_crop} px, not --crop {crop}: {why}")
    if config.mode == "masked":
        return notes
    partitioned = config.pairing == "random" and any(p.groups is not None for p in pairs)
    if config.pairing == "random" and not partitioned:
        notes.append(
            "--pairing random: no movie keeps frame groups (fewer than 4 frames, "
            "--frame-groups 0 or ready-made halves), so the fixed even/odd sums are used"
        )
    if not partitioned and config.input_share != DEFAULT_INPUT_SHARE:
        notes.append(
            f"--input-share {config.input_share:g} is not used: it shares frame groups "
            "between input and target, and these pairs are fixed even/odd sums"
        )
    return notes


#: Settings a resumed run may change, with the option that sets each.
RESUME_CHANGEABLE = (
    ("crop", "--crop", " px"),
    ("batch_size", "--batch-size", ""),
    ("lr", "--lr", ""),
)


def resume_notes(
    config: TrainConfig, state: Mapping[str, Any], data: Mapping[str, Any]
) -> list[str]:
    """Lines on what a resumed run changes: its settings, and the data it trains on.

    Parameters
    ----------
    config : TrainConfig
        The resumed run's complete settings.
    state : mapping
        The checkpoint's training state (its ``"config"``, ``TrainConfig.to_dict`` of
        the earlier run, and its data fingerprint where it has one).
    data : mapping
        :func:`~.data_print.data_fingerprint` of the resumed run's data.

    Returns
    -------
    list of str
        One line listing the crop, batch size and lr that differ from the checkpoint's,
        one line when the data differ (:func:`~.data_print.data_notes`); empty when the
        run continues as it was.

    """
    before = state.get("config") or {}
    changes = [
        f"{option} {getattr(config, key):g}{unit} (was {before[key]:g}{unit})"
        for key, option, unit in RESUME_CHANGEABLE
        if before.get(key) is not None and getattr(config, key) != before[key]
    ]
    notes = [f"resuming {config.resume} with " + ", ".join(changes)] if changes else []
    return notes + data_notes(str(config.resume), state.get(DATA_KEY), data)
