"""Interactions (recommendation): a user-item bipartite graph, no views, full-ranking Recall@20."""

from __future__ import annotations

from typing import Any

from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.ranking import RankingProtocol
from contrastkit.modalities.base import Modality


class InteractionsModality(Modality):
    """User-item interactions: embedding-table encoders evaluated by full-ranking Recall@20 and NDCG@20."""

    name = "interactions"
    description = "user-item interactions: embedding-table encoders, full-ranking Recall@20 / NDCG@20"
    protocol = RankingProtocol

    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        train = splits.train
        return {"num_users": train.num_users, "num_items": train.num_items, "train_pairs": train.pairs}

    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        return ()  # the methods perturb embeddings or the graph themselves (SimGCL, LightGCL)

    def view_presets(self) -> list[str]:
        return []
