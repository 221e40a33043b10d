"""The channel-groups protocol: the classification probes on the fused features and on each group's slice.

A ``channel-group-towers`` encoder concatenates one embedding per channel group (late fusion);
its ``group_names`` and ``group_dims`` say which columns belong to which group, so the same
probes score the fused representation and every single-modality embedding of one model
(``accelerometer:svm_accuracy``).
"""

from __future__ import annotations

import torch

from contrastkit.eval.protocols.base import Model
from contrastkit.eval.protocols.classification import ClassificationProtocol

__all__ = ["ChannelGroupProtocol"]


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
