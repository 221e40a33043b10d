"""Channel groups as modalities: a multichannel series whose sensors are contrasted pairwise.

Data: the ``channel-groups`` dataset (``contrastkit.data.channel_groups``), a series set plus
``{modality name: channel indices}``. Encoder: ``channel-group-towers``, one series tower per
group, whose output is the concatenation of the towers' (late fusion). Views: one series view
(a preset of ``contrastkit.views.series``, default ``identity``) applied to the whole series
before the split, so every modality of a row sees the same time steps. Evaluation: the series
protocol (kNN, linear and RBF-SVM probes, raw-input and random-init baselines) on the fused
representation, and the same probes on each group's slice of it (``accelerometer:svm_accuracy``):
the single-modality embeddings of the same model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.base import Model
from contrastkit.eval.protocols.classification import ClassificationProtocol
from contrastkit.modalities.base import Modality
from contrastkit.views.series import build_series_views, series_view_preset_names

__all__ = ["ChannelGroupProtocol", "ChannelGroupsModality"]


def _group_slices(model: Model) -> list[tuple[str, slice]]:
    """``(group name, columns)`` of each group in the fused features, or ``[]`` for another encoder."""
    encoder = getattr(model, "encoder", None)
    names, dims = getattr(encoder, "group_names", None), getattr(encoder, "group_dims", None)
    if not names or not dims:
        return []
    bounds = [0]
    for dim in dims:
        bounds.append(bounds[-1] + dim)
    return [(name, slice(bounds[i], bounds[i + 1])) for i, name in enumerate(names)]


class ChannelGroupProtocol(ClassificationProtocol):
    """The classification protocol on the fused features, plus the same scores on each group's columns."""

    def _with_groups(self, model: Model, train: torch.Tensor, test: torch.Tensor) -> dict[str, float]:
        scores = self.score(train, test)
        for name, columns in _group_slices(model):
            for key, value in self.score(train[:, columns], test[:, columns]).items():
                scores[f"{name}:{key}"] = value
        return scores

    def baselines(self, model: Model) -> dict[str, dict[str, float]]:
        return {"raw_input": self.raw_input(), "random_init": self._with_groups(model, *self.features(model))}

    def final(self, model: Model) -> tuple[dict[str, float], torch.Tensor | None]:
        train_features, test_features = self.features(model)
        return self._with_groups(model, train_features, test_features), test_features

    def columns(self) -> list[str]:
        fused = super().columns()
        groups = list(getattr(self.splits, "channel_groups", {}) or {})
        return fused + [f"{name}:{column}" for name in groups for column in fused if column != "knn_top1"]


class ChannelGroupsModality(Modality):
    name = "channel-groups"
    description = ("series whose channel groups are modalities [C, T]: one tower per group, fused by "
                   "concatenation; kNN + linear + RBF-SVM on the fused and on each group's features")
    protocol = ChannelGroupProtocol
    protocol_defaults = {"svm": True}

    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        groups = getattr(splits, "channel_groups", None)
        if not groups:
            raise ValueError(f"dataset {splits.name!r}: channel-groups data must carry channel_groups "
                             "(load it with data.name=channel-groups)")
        return {"in_channels": splits.input_shape[0], "channel_groups": groups}

    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        # One view of the whole series (the modalities of a row are its positives, not two augmentations).
        options = dict(options)
        return build_series_views(options.pop("preset"), **options)[:1]

    def view_presets(self) -> list[str]:
        return series_view_preset_names()
