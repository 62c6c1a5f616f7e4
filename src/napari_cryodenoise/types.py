"""Types shared by the compute core, the CLI and the napari shell.

One home for the callback signatures that long work takes (progress and cancel) and for
what the engine needs of a network, so that every module names them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["CancelFn", "DenoiserModel", "ProgressFn"]

#: ``progress(done, total)``: called as work advances (``done`` of ``total`` units).
ProgressFn = Callable[[int, int], None]

#: ``cancel()``: polled between units of work; returning True stops the work, which then
#: raises :class:`napari_cryodenoise.errors.Cancelled`.
CancelFn = Callable[[], bool]


@runtime_checkable
class DenoiserModel(Protocol):
    """What the engine needs of a denoising network (a ``torch.nn.Module``).

    Attributes
    ----------
    ndim : int
        2 for micrograph models, 3 for tomogram models.

    """

    ndim: int

    def __call__(self, x):  # noqa: ANN001, D102 - a torch forward
        ...

    def eval(self):  # noqa: ANN201, D102
        ...
