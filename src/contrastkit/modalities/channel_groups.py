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

from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.channel_groups import ChannelGroupProtocol
from contrastkit.modalities.base import Modality
from contrastkit.views.series import build_series_views, series_view_preset_names

__all__ = ["ChannelGroupsModality"]


class ChannelGroupsModality(Modality):
    """Multichannel series whose channel groups (sensors) are the modalities: one tower per group, fused
    by concatenation; evaluated by kNN, linear and RBF-SVM probes on the fused and on each group's features."""

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
