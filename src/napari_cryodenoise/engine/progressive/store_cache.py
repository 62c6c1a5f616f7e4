"""Live outputs kept across settings changes, bounded in bytes (no Qt, no torch)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .plan import LiveJob
from .store import ProgressiveStore

Evicted = tuple["ProgressiveStore", int, list[LiveJob]]


class StoreCache:
    """Live outputs kept across settings changes, bounded in bytes.

    Keys name the data, the model and every setting that changes the values,
    so going back to an earlier setting reuses its finished tiles. When the
    total exceeds ``budget`` bytes, the least recently used planes of stores
    other than the active planes are dropped.
    """

    def __init__(self, budget: int = 1 << 30) -> None:
        self.budget = int(budget)
        self._stores: OrderedDict[Any, ProgressiveStore] = OrderedDict()

    def get(self, key: Any) -> ProgressiveStore | None:
        """The store for ``key`` (marked as recently used), or None."""
        store = self._stores.get(key)
        if store is not None:
            self._stores.move_to_end(key)
        return store

    def put(self, key: Any, store: ProgressiveStore) -> ProgressiveStore:
        """Add a store under ``key``."""
        self._stores[key] = store
        self._stores.move_to_end(key)
        return store

    def __len__(self) -> int:
        return len(self._stores)

    @property
    def nbytes(self) -> int:
        """Bytes held by all stores."""
        return sum(s.nbytes for s in self._stores.values())

    def enforce(self, pinned: dict[int, set[int]] | None = None) -> list[Evicted]:
        """Evict planes until within budget.

        Parameters
        ----------
        pinned : dict, optional
            ``id(store) -> planes`` that must stay (the ones on screen).

        Returns
        -------
        list of (store, plane, jobs)
            What was evicted and the jobs that rebuilt it.

        """
        pinned = pinned or {}
        evicted: list[Evicted] = []
        total = self.nbytes
        for key in list(self._stores):  # least recently used store first
            store = self._stores[key]
            for plane in store.planes_lru():
                if total <= self.budget:
                    return evicted
                if plane in pinned.get(id(store), ()):
                    continue
                before = store.nbytes
                jobs = store.evict(plane)
                total -= before - store.nbytes
                evicted.append((store, plane, jobs))
            if store.nbytes == 0 and id(store) not in pinned:
                del self._stores[key]
        return evicted
