"""What data a training run learnt from, kept in its checkpoint, and the note on resuming.

A checkpoint records a light fingerprint of its training data (:func:`data_fingerprint`:
how many images, their names, shapes and pixel sizes; no pixels). Resuming on other data
is allowed (it is fine-tuning), but :func:`data_notes` says so in one line: a resume that
meant to continue the same run on the same files should not silently train on others.
Checkpoints written before the fingerprint existed get no note.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from .pair import ImagePair

__all__ = ["DATA_KEY", "data_fingerprint", "data_notes"]

#: Key of the fingerprint in a checkpoint's training state.
DATA_KEY = "data"
#: Names kept in the fingerprint (all names enter its digest).
MAX_NAMES = 200
#: Names quoted in the note.
QUOTED = 2


def _digest(names: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]


def data_fingerprint(pairs: Sequence[ImagePair]) -> dict[str, Any]:
    """The fingerprint of training data: count, names, shapes and pixel sizes.

    Parameters
    ----------
    pairs : sequence of ImagePair
        The training images (their order does not matter).

    Returns
    -------
    dict
        ``count``; ``names`` (sorted, at most :data:`MAX_NAMES`) and ``names_digest``
        (of all names); ``shapes`` and ``pixel_sizes`` (the distinct ones, sorted; pixel
        sizes only where a header gave one). Plain Python values.

    """
    names = sorted(p.name for p in pairs)
    return {
        "count": len(pairs),
        "names": names[:MAX_NAMES],
        "names_digest": _digest(names),
        "shapes": sorted({tuple(int(s) for s in p.shape) for p in pairs}),
        "pixel_sizes": sorted({round(float(p.pixel_size), 4) for p in pairs if p.pixel_size}),
    }


def _images(n: Any) -> str:
    return f"{n} image" + ("" if n == 1 else "s")


def _px(shape: Sequence[int]) -> str:
    return " x ".join(str(s) for s in tuple(shape)[::-1]) + " px"


def _names_change(before: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """How the names differ; None when they do not, or when images were only left out."""
    if before.get("names_digest") == now["names_digest"]:
        return None
    old, new = set(before.get("names") or ()), set(now["names"])
    if len(old) != before.get("count") or len(new) != now["count"]:
        return "other image names"  # too many to compare name by name
    added = sorted(new - old)
    if not added:
        return None  # a subset: the count says it
    quoted = ", ".join(added[:QUOTED]) + (", ..." if len(added) > QUOTED else "")
    return f"{len(added)} of {_images(now['count'])} new ({quoted})"


def data_notes(
    checkpoint: str, before: Mapping[str, Any] | None, now: Mapping[str, Any]
) -> list[str]:
    """One line when a resumed run trains on other data than its checkpoint did.

    Parameters
    ----------
    checkpoint : str
        The checkpoint resumed (named in the line).
    before : mapping or None
        The checkpoint's fingerprint (None: an older checkpoint without one: no note).
    now : mapping
        :func:`data_fingerprint` of this run's data.

    Returns
    -------
    list of str
        Empty when the data are the same (or not known); else one line saying how they
        differ and that training goes on from the checkpoint (fine-tuning it).

    """
    if not before:
        return []
    changes = []
    if before.get("count") != now["count"]:
        changes.append(f"{_images(now['count'])} (was {before.get('count')})")
    names = _names_change(before, now)
    if names is not None:
        changes.append(names)
    old_shapes = [tuple(s) for s in before.get("shapes") or ()]
    if old_shapes and old_shapes != [tuple(s) for s in now["shapes"]]:
        shown = ", ".join(_px(s) for s in now["shapes"][:QUOTED])
        was = ", ".join(_px(s) for s in old_shapes[:QUOTED])
        changes.append(f"{shown} (was {was})")
    old_apix, apix = list(before.get("pixel_sizes") or ()), list(now["pixel_sizes"])
    if old_apix and apix and old_apix != apix:
        shown = ", ".join(f"{a:g}" for a in apix[:QUOTED])
        was = ", ".join(f"{a:g}" for a in old_apix[:QUOTED])
        changes.append(f"pixel size {shown} A (was {was} A)")
    if not changes:
        return []
    return [
        f"resuming {checkpoint} on other data than it was trained on: "
        + "; ".join(changes)
        + " (training goes on from the checkpoint: fine-tuning it on these)"
    ]
