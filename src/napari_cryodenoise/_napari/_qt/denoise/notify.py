"""napari notifications used by the Denoise panels, in one place (tests replace them here)."""

from __future__ import annotations

from napari.utils.notifications import show_error, show_info, show_warning

__all__ = ["show_error", "show_info", "show_warning"]
