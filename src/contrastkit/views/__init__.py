"""Views: random augmentations that make the positive pairs.

``image``: batched image augmentations (crop, flip, colour jitter, blur,
solarize, noise) and the SimCLR / MoCo v2 / BYOL presets.
"""

from contrastkit.views.image import (
    VIEW_PRESETS,
    ImageViewConfig,
    ImageViews,
    build_views,
    byol_views,
    simclr_views,
    view_preset_names,
)

__all__ = [
    "VIEW_PRESETS",
    "ImageViewConfig",
    "ImageViews",
    "build_views",
    "byol_views",
    "simclr_views",
    "view_preset_names",
]
