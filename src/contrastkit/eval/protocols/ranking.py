"""Full top-k ranking of items per user: the evaluation protocol of interaction (recommendation) data.

The score follows LightGCN's and LightGCL's protocol (:mod:`contrastkit.eval.recommendation`):
every test user ranks all items by the dot product of the method's user and item
embeddings, training items removed; Recall@20 and NDCG@20 are averaged over the users.
Periodic evaluation during training scores a seeded sample of the validation users
(the test users when the dataset has no validation split, as LightGCL's script does).
Baselines, measured in the same run: most-popular items and the untrained model.
``embed`` exports the ranking embeddings themselves: tables ``users`` and ``items``, compared
by the dot product (the ranking score).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Protocol

import torch

from contrastkit.data.interactions import InteractionData
from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.base import (
    EmbeddingTable,
    EvaluationProtocol,
    Model,
    ProtocolSettings,
    check_split,
    evaluation_mode,
)
from contrastkit.eval.recommendation import popularity_scores, recall_ndcg_at_k
from contrastkit.utils.schema import bounded

#: The cutoff of the reported metrics (the papers' Recall@20 / NDCG@20).
TOP_K = 20


class RecommendationModel(Model, Protocol):
    """A model with user and item embeddings (``[U, D]``, ``[I, D]``) whose dot products rank items."""

    def user_item_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclasses.dataclass
class RankingSettings(ProtocolSettings):
    """The ``eval:`` keys of the ranking protocol.

    Attributes:
        test_subset: at most this many test users; ``None``: all.
        validation_queries: users sampled for periodic checks.
        batch_size: users scored per block.
    """

    test_subset: int | None = bounded(None, minimum=1)
    validation_queries: int | None = bounded(500, minimum=1)
    batch_size: int = bounded(1024, minimum=1)


def _data_or_error(value: Any, name: str, dataset: str) -> InteractionData:
    if not isinstance(value, InteractionData):
        raise ValueError(
            f"dataset {dataset!r}: recommendation evaluation needs InteractionData as its {name} split, "
            f"got {type(value).__name__}"
        )
    return value


class RankingProtocol(EvaluationProtocol):
    """Scores a recommendation model by full ranking on a dataset's test users.

    Args:
        splits: an interactions dataset (``splits.test`` is
            :class:`~contrastkit.data.interactions.InteractionData`).
        settings: :class:`RankingSettings`.
        device: where the ranking runs (the model's embeddings are moved there).
        seed: seeds the user sub-samples.

    Attributes:
        test: the (sub-sampled) test data; ``len(test)`` is the number of test users.
    """

    settings_type = RankingSettings

    def __init__(self, splits: DatasetSplits, settings: RankingSettings, device: torch.device | None,
                 seed: int) -> None:
        super().__init__(splits, settings, torch.device(device if device is not None else "cpu"), seed)
        self.k = TOP_K
        self.data = _data_or_error(splits.test, "test", splits.name)
        self.test = self.data.subset_users(settings.test_subset, seed=seed)
        validation = splits.validation if splits.validation is not None else splits.test
        self.validation = _data_or_error(validation, "validation", splits.name).subset_users(
            settings.validation_queries, seed=seed + 1
        )

    def _rank(self, users: torch.Tensor, items: torch.Tensor, data: InteractionData) -> dict[str, float]:
        scores = recall_ndcg_at_k(
            users.to(self.device).float(), items.to(self.device).float(), data.train_pairs, data.test_pairs,
            k=self.k, batch_users=max(1, int(self.settings.batch_size)),
        )  # fmt: skip
        scores["eval_users"] = float(len(data))
        return scores

    def score(self, method: RecommendationModel, data: InteractionData | None = None) -> dict[str, float]:
        """Recall@20 and NDCG@20 of ``method`` on ``data`` (default: the test data)."""
        data = data or self.test
        started = time.perf_counter()
        with evaluation_mode(method):
            users, items = method.user_item_embeddings()
        scores = self._rank(users, items, data)
        scores["eval_seconds"] = round(time.perf_counter() - started, 2)
        return scores

    def periodic(self, method: RecommendationModel) -> dict[str, float]:  # type: ignore[override]
        """Periodic check on the validation users (cheap: a sample of users)."""
        scores = self.score(method, self.validation)
        return {f"val_{name}": value for name, value in scores.items() if name.startswith(("recall", "ndcg"))}

    def final(self, method: RecommendationModel) -> tuple[dict[str, float], None]:  # type: ignore[override]
        """The end-of-run scores on the test users (no features to plot)."""
        return self.score(method), None

    def embed(self, method: RecommendationModel, split: str) -> list[EmbeddingTable]:  # type: ignore[override]
        """Tables ``users`` (the split's users) and ``items`` (every item), as the ranking scores them.

        ``test``: the users with test items (all of them, not the evaluation sample); ``train``:
        the users with training items; ``all``: every user. Ids are the users' and items' names
        where the data has them, else their indices.
        """
        split = check_split(split)
        with evaluation_mode(method), torch.no_grad():
            users, items = method.user_item_embeddings()
        data = self.data
        rows = {"test": data.test_users, "train": torch.unique(data.train_pairs[0]),
                "all": torch.arange(data.num_users)}[split]
        user_ids = [data.user_names[row] for row in rows.tolist()] if data.user_names else rows.tolist()
        item_ids = list(data.item_names) if data.item_names else list(range(data.num_items))
        return [EmbeddingTable("users", users.detach()[rows.to(users.device)], user_ids, metric="dot"),
                EmbeddingTable("items", items.detach(), item_ids, metric="dot")]

    def popularity(self) -> dict[str, float]:
        """The most-popular baseline: every user gets the items ranked by training interactions."""
        data = self.test
        counts = popularity_scores(data.train_pairs, data.num_items)
        return self._rank(torch.ones(data.num_users, 1), counts[:, None], data)

    def baselines(self, method: RecommendationModel) -> dict[str, dict[str, float]]:  # type: ignore[override]
        """Most-popular items and the untrained model (``random_init``), on the same test users."""
        return {"popularity": self.popularity(), "random_init": self.score(method)}

    def columns(self) -> list[str]:
        return [f"recall_at_{self.k}", f"ndcg_at_{self.k}"]

    def describe(self) -> str:
        return f"full ranking, training items masked; {len(self.test)} test users"

    def evaluated_rows(self) -> dict[str, int | None]:
        return {"train": None, "test": len(self.test)}
