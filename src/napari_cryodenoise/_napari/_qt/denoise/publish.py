"""Show a denoising result as a layer: update the last result in place or add a new one.

:class:`ResultPublisher` runs on the main thread. It names the layer after the
settings, records them in its metadata, places it on the input's pixel grid
and chooses its contrast: a live layer keeps one intensity mapping (the
previous one until the new preview arrives, see :mod:`...contrast`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ....types import DenoiserModel
from ...contrast import LiveContrast, apply_preview, union
from ...layers import replace_layer
from ...measure import full_resolution
from ...results import contrast_limits_for, result_geometry, result_metadata, result_name
from ...settings import DenoiseSettings
from ...tiles import TileStore
from .state import DenoiseState

if TYPE_CHECKING:
    from napari.layers import Image
    from napari.viewer import Viewer


def live_limits(source: Image) -> tuple[float, float]:
    """First contrast of a live result: the input's, narrowed (fixed once the preview shows)."""
    lo, hi = contrast_limits_for(full_resolution(source))
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return mid - half / 3, mid + half / 3  # denoised contrast is narrower; fixed on preview


class ResultPublisher:
    """Turn results into layers of ``viewer`` and record them in ``state``.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Where results are shown.
    state : DenoiseState
        Receives ``result_layer``, ``raw_layer`` and the ``input`` it came from.

    """

    def __init__(self, viewer: Viewer, state: DenoiseState) -> None:
        self.viewer = viewer
        self.state = state
        self._contrast: dict[int, LiveContrast] = {}  # id(live layer) -> its contrast policy

    def publish(
        self,
        source: Image,
        settings: DenoiseSettings,
        model: DenoiserModel,
        data: np.ndarray | TileStore,
        *,
        update: bool,
        stacked: bool = False,
        live: bool = False,
    ) -> Image:
        """Show a result: update the last result layer or add a new one (main thread).

        Parameters
        ----------
        source : napari.layers.Image
            The input layer.
        settings : DenoiseSettings
            What produced the result (recorded in the layer metadata and name).
        model : torch.nn.Module
            The network (its name and alias go into the metadata).
        data : numpy.ndarray or TileStore
            The result (a live store fills in later).
        update : bool
            Replace the last result layer (else add a new one).
        stacked : bool
            The first axis is a stack of independent images.
        live : bool
            The result is a live (visible-first) view.

        Returns
        -------
        napari.layers.Image

        """
        layers = self.viewer.layers
        geometry = result_geometry(source, tuple(data.shape))
        metadata = result_metadata(source, settings, model=model, stacked=stacked, live=live)
        name = result_name(source.name, settings)
        target = self.state.result_layer if update else None
        if live and target is not None and target in layers:
            limits = tuple(target.contrast_limits)  # kept until the new preview (one mapping)
        elif live:
            limits = live_limits(source)
        else:
            limits = contrast_limits_for(data)
        shown = data.layer_data() if isinstance(data, TileStore) else data
        multiscale = isinstance(shown, list)
        if (
            target is not None
            and target in layers
            and target.ndim == data.ndim
            and bool(target.multiscale) == multiscale
        ):
            target.data = shown
            for key, value in geometry.items():  # scale, translate, units, axis labels
                setattr(target, key, value)
            target.metadata = metadata
            target.name = name
            target.contrast_limits = limits
        else:
            old = target  # a layer that cannot take the new data in place is replaced
            target = self.viewer.add_image(
                shown,
                name=name,
                contrast_limits=limits,
                metadata=metadata,
                multiscale=multiscale,
                **geometry,
            )
            replace_layer(layers, old, target)
        if live:
            policy = self._contrast.setdefault(id(target), LiveContrast())
            policy.new_result()
            if not policy.check_user(target.contrast_limits):
                policy.accept(target.contrast_limits)
            # the slider may be widened up to the input's range
            raw_range = tuple(getattr(source, "contrast_limits_range", limits))
            target.contrast_limits_range = union(union(raw_range, limits), target.contrast_limits)
        self.state.result_layer, self.state.raw_layer = target, source
        self.state.input = source
        return target

    def show_preview(self, layer: Image, store: TileStore, plane: int) -> None:
        """A coarse preview of ``plane`` is shown: fix the live layer's one intensity mapping."""
        policy = self._contrast.get(id(layer))
        if policy is not None:
            apply_preview(layer, policy, store.coarsest(plane))
