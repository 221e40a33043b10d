"""Time series: ``[B, C, T]`` tensors (NaN = missing), series views, kNN, probes and TS2Vec's SVM probe."""

from __future__ import annotations

from typing import Any

from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.classification import ClassificationProtocol
from contrastkit.modalities.base import Modality
from contrastkit.views.series import build_series_views, series_view_preset_names


class SeriesModality(Modality):
    """Time series ``[C, T]``: series views and TS2Vec's protocol (kNN, linear and RBF-SVM probes)."""

    name = "series"
    description = "time series [C, T]: series views, kNN + linear + RBF-SVM evaluation (TS2Vec's protocol)"
    protocol = ClassificationProtocol
    # The RBF-SVM probe is the TS2Vec protocol, on by default for series.
    protocol_defaults = {"svm": True}
    two_tensor_views = True

    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        return {"in_channels": splits.input_shape[0]}

    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        options = dict(options)
        return build_series_views(options.pop("preset"), **options)

    def view_presets(self) -> list[str]:
        return series_view_preset_names()
