"""In-memory models for the Denoise widget tests, and how a test selects one.

Shared by the widget tests (``tests`` is on the test path, see pyproject.toml).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn


class SlowNet(nn.Module):
    """3x3 mean filter that takes ``delay`` seconds per call (for scheduling tests)."""

    ndim, grid, halo = 2, 4, 4

    def __init__(self, delay: float = 0.15, name: str = "slow"):
        super().__init__()
        self.delay, self.name = delay, name
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        time.sleep(self.delay)
        return F.avg_pool2d(x, 3, 1, 1) * self.w


def use_model(w, name, model):
    """Register an in-memory model under ``name`` in the Denoise widget ``w`` and select it."""
    w.models.put(name, model)
    if name not in w.model.choices:
        w.model.choices = [*w.model.choices, name]
    w.model.value = name
