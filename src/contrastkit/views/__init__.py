"""Views: random augmentations that make the positive pairs.

``image``: batched image augmentations (crop, flip, colour jitter, blur,
solarize, noise) and the SimCLR / MoCo v2 / BYOL presets.

``series``: batched time-series augmentations (TS2Vec's overlapping crops and
timestamp masks, jitter, scaling, permutation, time warp, TERA's alterations,
CAB-KWS's speed and volume) and their presets.

``graph`` (import :mod:`contrastkit.views.graph`; it needs the ``graph`` extra):
edge dropping, feature masking, node dropping, random-walk subgraphs, PPR
diffusion, D-SLA's edge perturbation and LightGCL's low-rank SVD view.
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
from contrastkit.views.series import (
    SERIES_VIEW_PRESETS,
    SERIES_VIEW_STEPS,
    Jitter,
    Permutation,
    Scaling,
    SeriesViewConfig,
    SeriesViews,
    Speed,
    TeraChannelMask,
    TeraMagnitudeNoise,
    TeraTimeMask,
    TimestampMask,
    TimeWarp,
    Volume,
    build_series_views,
    contextual_crop_pair,
    series_lengths,
    series_view_preset_names,
)

__all__ = [
    "SERIES_VIEW_PRESETS",
    "SERIES_VIEW_STEPS",
    "VIEW_PRESETS",
    "ImageViewConfig",
    "ImageViews",
    "Jitter",
    "Permutation",
    "Scaling",
    "SeriesViewConfig",
    "SeriesViews",
    "Speed",
    "TeraChannelMask",
    "TeraMagnitudeNoise",
    "TeraTimeMask",
    "TimeWarp",
    "TimestampMask",
    "Volume",
    "build_series_views",
    "build_views",
    "byol_views",
    "contextual_crop_pair",
    "series_lengths",
    "series_view_preset_names",
    "simclr_views",
    "view_preset_names",
]
