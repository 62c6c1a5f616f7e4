"""Progressive (visible-first) denoising of a plane: job planning and the store it fills.

No Qt, no napari, no torch: the napari shell (``_napari/_qt/live.py``) binds these
to a layer, the camera and worker threads.

- :mod:`.plan`: :class:`ProgressiveGrid` (the live tile grid), :class:`LiveJob`,
  :func:`plan_jobs` (preview, visible tiles nearest the centre, neighbours,
  the rest), :class:`Claims` (jobs finished by some worker).
- :mod:`.store`: :class:`ProgressiveStore`, the array-like a live layer shows,
  and its :class:`LevelView` display levels.
- :mod:`.store_cache`: :class:`StoreCache`, stores kept across settings
  changes within a memory budget.
- :mod:`.levels`: 2x block-mean display levels.
"""

from .levels import display_levels, halve, pyramid_depth, resample_nearest
from .plan import Box, Claims, LiveJob, ProgressiveGrid, clip_box, plan_jobs
from .store import LevelView, ProgressiveStore
from .store_cache import Evicted, StoreCache

__all__ = [
    "Box",
    "Claims",
    "Evicted",
    "LevelView",
    "LiveJob",
    "ProgressiveGrid",
    "ProgressiveStore",
    "StoreCache",
    "clip_box",
    "display_levels",
    "halve",
    "plan_jobs",
    "pyramid_depth",
    "resample_nearest",
]
