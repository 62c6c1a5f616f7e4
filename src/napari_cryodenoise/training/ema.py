"""An exponential moving average of a network's weights (kept in fp32 beside the network)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """EMA of the floating-point parameters and buffers of ``model``.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n``
    updates, so a short run is not dominated by the starting weights.

    Parameters
    ----------
    model : torch.nn.Module
        The network being trained (its tensors are read, never replaced).
    decay : float
        Long-run decay per update, in (0, 1).

    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self._tensors = self._float_tensors(model)
        self.shadow = [t.detach().clone() for t in self._tensors]

    @staticmethod
    def _float_tensors(model: nn.Module) -> list[torch.Tensor]:
        items = list(model.state_dict(keep_vars=True).values())
        return [t for t in items if torch.is_floating_point(t)]

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the current weights."""
        self.updates += 1
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        torch._foreach_lerp_(self.shadow, [t.detach() for t in self._tensors], 1.0 - d)

    @contextmanager
    def applied(self):
        """Temporarily load the averaged weights into the network (restored on exit)."""
        saved = [t.detach().clone() for t in self._tensors]
        with torch.no_grad():
            for t, s in zip(self._tensors, self.shadow, strict=True):
                t.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for t, s in zip(self._tensors, saved, strict=True):
                    t.copy_(s)

    def state_dict(self) -> dict[str, Any]:
        """Plain state for a checkpoint."""
        return {"decay": self.decay, "updates": self.updates, "shadow": list(self.shadow)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.updates = int(state["updates"])
        with torch.no_grad():
            for s, v in zip(self.shadow, state["shadow"], strict=True):
                s.copy_(v)
