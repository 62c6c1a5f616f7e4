"""Random training crops and deterministic validation tiles from image pairs.

Each half is normalised by its own mean and standard deviation (as Topaz
does and as inference normalises a whole micrograph). Training crops are
taken at the same place in both halves, transformed by the same random flip
/ 90-degree rotation, and source and target are swapped at random.
For pairs made from movies that keep their frames in groups, ``pairing="random"``
draws a fresh random partition of the groups into two halves for every crop
instead of the fixed even/odd sums. Validation uses a fixed set of tiles, either
from held-out pairs or, when there are too few pairs to spare one, from a strip
at the bottom of every pair that training crops never touch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ImageTooSmallError, InputError
from .pair import ImagePair

__all__ = ["CropSampler", "Region", "split_validation"]


@dataclass(frozen=True)
class Region:
    """A box of one pair: ``pair`` index and ``(start, stop)`` per axis."""

    pair: int
    box: tuple[tuple[int, int], ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """Size per axis."""
        return tuple(b - a for a, b in self.box)

    def slices(self, offset: Sequence[int] = (), size: Sequence[int] | None = None) -> tuple:
        """Slices of a sub-box at ``offset`` (relative) of ``size`` (default: all)."""
        offset = tuple(offset) or (0,) * len(self.box)
        size = size or self.shape
        return tuple(
            slice(a + o, a + o + s) for (a, _), o, s in zip(self.box, offset, size, strict=True)
        )


def split_validation(
    pairs: Sequence[ImagePair],
    val_fraction: float,
    crop: int,
    val_pairs: Sequence[ImagePair] | None = None,
) -> tuple[list[ImagePair], list[Region], list[Region]]:
    """Decide what trains and what validates.

    Returns
    -------
    all_pairs : list of ImagePair
        ``pairs`` followed by ``val_pairs`` (regions index into this list).
    train : list of Region
        Boxes training crops are drawn from.
    val : list of Region
        Boxes validation tiles are cut from (empty: no validation).

    Whole pairs are held out when ``round(val_fraction * len(pairs))`` is at
    least 1 and leaves at least one pair to train on; otherwise the last
    ``val_fraction`` of the rows (y axis) of every pair is held out.

    """
    pairs = list(pairs)
    if not pairs:
        raise InputError("no training pairs")
    full = [Region(i, tuple((0, s) for s in p.shape)) for i, p in enumerate(pairs)]
    if val_pairs:
        extra = list(val_pairs)
        val = [Region(len(pairs) + i, tuple((0, s) for s in p.shape)) for i, p in enumerate(extra)]
        return pairs + extra, full, val
    if val_fraction <= 0:
        return pairs, full, []
    if not 0 < val_fraction < 1:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(val_fraction * len(pairs)))
    if 1 <= n_val < len(pairs):
        # evenly spread, deterministic choice of held-out pairs
        held = set(np.linspace(0, len(pairs) - 1, n_val + 2)[1:-1].round().astype(int).tolist())
        if len(held) < n_val:
            held = set(range(len(pairs) - n_val, len(pairs)))
        return pairs, [r for r in full if r.pair not in held], [r for r in full if r.pair in held]
    train, val = [], []
    for r in full:
        (y0, y1), *rest = r.box
        height = y1 - y0
        hv = int(round(val_fraction * height))
        hv = min(max(hv, min(crop, height // 4), 8), height // 2)
        train.append(Region(r.pair, ((y0, y1 - hv), *rest)))
        val.append(Region(r.pair, ((y1 - hv, y1), *rest)))
    return pairs, train, val


class CropSampler:
    """Draws normalised, augmented training crops and fixed validation tiles.

    Parameters
    ----------
    pairs : sequence of ImagePair
        Images (``odd`` None for masked training).
    train, val : sequence of Region
        From :func:`split_validation`.
    crop : int
        Crop side (clipped to the smallest training region; rounded down to a
        multiple of ``multiple`` when larger than it).
    multiple : int
        Preferred divisor of the crop side (the network's ``grid``).
    augment, swap : bool
        Random flips / 90-degree rotations; random source/target swap.
    seed : int
        Random seed of the crop positions and augmentations.
    val_max_pixels : int
        Cap on the number of validation pixels (tiles are spread evenly).
    pairing : {"fixed", "random"}
        Random partitions of a pair's frame groups (pairs without groups always use
        their fixed halves).
    input_share : float
        With random partitions: the share of the frame groups summed into the source
        (the target gets the rest); 0.5 = two halves. Above 0.5 the source's dose is
        closer to the full-dose sum the network later denoises.

    """

    def __init__(
        self,
        pairs: Sequence[ImagePair],
        train: Sequence[Region],
        val: Sequence[Region],
        *,
        crop: int,
        multiple: int = 1,
        augment: bool = True,
        swap: bool = True,
        seed: int = 0,
        val_max_pixels: int = 2**20,
        pairing: str = "fixed",
        input_share: float = 0.5,
    ) -> None:
        self.pairs = list(pairs)
        self.train = [r for r in train if min(r.shape) > 0]
        if not self.train:
            raise InputError("no training data left after holding out validation")
        self.ndim = self.pairs[0].ndim
        if any(p.ndim != self.ndim for p in self.pairs):
            raise InputError("all training images must have the same number of dimensions")
        smallest = min(min(r.shape) for r in self.train)
        size = min(int(crop), smallest)
        if size >= multiple and multiple > 1:
            size -= size % multiple
        if size < 8:
            raise ImageTooSmallError(
                f"training images are too small: the smallest usable region is {smallest} px "
                "(at least 8 px are needed; lower --val-fraction or use larger images)"
            )
        self.crop = self.max_crop = size
        self.multiple = max(1, int(multiple))
        self.pairing = pairing
        self.input_share = float(input_share)
        self.augment = augment
        self.swap = swap
        self.rng = np.random.default_rng(seed)
        weights = np.array([float(np.prod(np.array(r.shape) - size + 1)) for r in self.train])
        self._p = weights / weights.sum()
        self.val_tiles = self._tiles(val, val_max_pixels)
        self.masked = self.pairs[0].odd is None

    # -- state for resuming --------------------------------------------------------------

    def get_state(self) -> dict:
        """Random state (plain types) to store in a checkpoint."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state`."""
        self.rng.bit_generator.state = state

    def set_crop(self, size: int) -> int:
        """Change the training crop side (at most the initial one; on the grid); returns it."""
        size = min(int(size), self.max_crop)
        if size >= self.multiple and self.multiple > 1:
            size -= size % self.multiple
        self.crop = max(8, size)
        return self.crop

    # -- reading -------------------------------------------------------------------------

    def _read(self, pair: ImagePair, which: str, slices: tuple) -> np.ndarray:
        arr = pair.even if which == "even" else pair.odd
        return _normalised(pair, np.array(arr[slices], dtype=np.float32), pair.stats(which))

    def _read_partition(self, pair: ImagePair, slices: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Two half sums of a random partition of the pair's frame groups, normalised.

        Each half has the dose of the even/odd sums, so it is normalised with their
        statistics.
        """
        groups = pair.groups[(slice(None), *slices)]  # type: ignore[index]
        n = len(groups)
        order = self.rng.permutation(n)
        k = min(n - 1, max(1, int(round(self.input_share * n))))
        parts: list[tuple[str | float, np.ndarray]]
        if 2 * k == n:
            parts = [("even", order[:k]), ("odd", order[k:])]
        else:
            parts = [(k / n, order[:k]), ((n - k) / n, order[k:])]
        out = []
        for which, members in parts:
            stats = pair.stats(which) if isinstance(which, str) else pair.partition_stats(which)
            acc = np.zeros(groups.shape[1:], np.float32)
            for g in np.sort(members):
                acc += groups[int(g)]
            out.append(_normalised(pair, acc, stats))
        return out[0], out[1]

    def _transform(self, *arrays: np.ndarray) -> list[np.ndarray]:
        k = int(self.rng.integers(4))
        flips = self.rng.integers(2, size=self.ndim).astype(bool)
        out = []
        for a in arrays:
            a = np.rot90(a, k, axes=(-2, -1))
            for axis in np.flatnonzero(flips):
                a = np.flip(a, axis=int(axis))
            out.append(np.ascontiguousarray(a))
        return out

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch ``(source, target)`` of shape ``(batch, 1, *crop)`` (float32, CPU).

        For masked training ``target`` is the same crop as ``source``.
        """
        size = (self.crop,) * self.ndim
        src = np.empty((batch, 1, *size), np.float32)
        tgt = np.empty_like(src)
        for b in range(batch):
            region = self.train[int(self.rng.choice(len(self.train), p=self._p))]
            offset = [int(self.rng.integers(0, s - self.crop + 1)) for s in region.shape]
            sl = region.slices(offset, size)
            pair = self.pairs[region.pair]
            if self.masked:
                (a,) = (
                    self._transform(self._read(pair, "even", sl))
                    if self.augment
                    else (self._read(pair, "even", sl),)
                )
                src[b, 0] = tgt[b, 0] = a
                continue
            partitioned = self.pairing == "random" and pair.groups is not None
            if partitioned:
                a, c = self._read_partition(pair, sl)
            else:
                a, c = self._read(pair, "even", sl), self._read(pair, "odd", sl)
            if self.augment:
                a, c = self._transform(a, c)
            # halves of equal dose may trade places; an unequal partition keeps its order
            symmetric = not partitioned or self.input_share == 0.5
            if self.swap and symmetric and self.rng.integers(2):
                a, c = c, a
            src[b, 0], tgt[b, 0] = a, c
        return torch.from_numpy(src), torch.from_numpy(tgt)

    # -- validation ----------------------------------------------------------------------

    def _tiles(self, regions: Sequence[Region], max_pixels: int) -> list[tuple[int, tuple]]:
        """Cut fixed validation tiles: a grid over each region, spread evenly under the cap."""
        tiles: list[tuple[int, tuple]] = []
        for r in regions:
            size = [min(self.crop, s) for s in r.shape]
            if min(size) < 8:
                continue
            starts = []
            for s, t in zip(r.shape, size, strict=True):
                n = max(1, s // t)
                starts.append(np.linspace(0, s - t, n).round().astype(int).tolist())
            for offset in np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, self.ndim):
                tiles.append((r.pair, r.slices(tuple(int(o) for o in offset), size)))
        if not tiles:
            return []
        per = int(np.prod([s.stop - s.start for s in tiles[0][1]]))
        keep = max(1, min(len(tiles), max_pixels // max(per, 1)))
        if keep < len(tiles):
            idx = np.linspace(0, len(tiles) - 1, keep).round().astype(int)
            tiles = [tiles[i] for i in sorted(set(idx.tolist()))]
        return tiles

    def val_batches(self, batch: int):
        """Yield ``(source, target)`` validation batches of same-shaped tiles (no augmentation)."""
        groups: dict[tuple, list[tuple[int, tuple]]] = {}
        for pair_index, sl in self.val_tiles:
            shape = tuple(s.stop - s.start for s in sl)
            groups.setdefault(shape, []).append((pair_index, sl))
        for tiles in groups.values():
            for start in range(0, len(tiles), batch):
                chunk = tiles[start : start + batch]
                src = np.stack([self._read(self.pairs[i], "even", sl)[None] for i, sl in chunk])
                if self.masked:
                    tgt = src
                else:
                    tgt = np.stack([self._read(self.pairs[i], "odd", sl)[None] for i, sl in chunk])
                yield torch.from_numpy(src), torch.from_numpy(np.ascontiguousarray(tgt))

    @property
    def val_pixels(self) -> int:
        """Number of validation pixels."""
        return int(sum(np.prod([s.stop - s.start for s in sl]) for _, sl in self.val_tiles))


def _normalised(pair: ImagePair, out: np.ndarray, stats: tuple[float, float]) -> np.ndarray:
    """``out`` (float32, changed in place) minus the mean, over the standard deviation."""
    mean, std = stats
    if not std > 0:
        where = pair.files[0] if pair.files else pair.name
        raise InputError(f"{where}: image is constant (standard deviation 0)")
    out -= mean
    out /= std
    return out
