"""Top-k ranking evaluation of a recommendation method inside a run (the interactions counterpart of ``run.Evaluator``).

The score follows LightGCN's and LightGCL's protocol (:mod:`contrastkit.eval.recommendation`):
every test user ranks all items by the dot product of the method's user and item
embeddings, training items removed; Recall@20 and NDCG@20 are averaged over the users.
Periodic evaluation during training scores a seeded sample of the validation users
(the test users when the dataset has no validation split, as LightGCL's script does).
Baselines, measured in the same run: most-popular items and the untrained model.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from contrastkit.data.interactions import InteractionData
from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.recommendation import popularity_scores, recall_ndcg_at_k
from contrastkit.methods.base import Method

#: The cutoff of the reported metrics (the papers' Recall@20 / NDCG@20).
TOP_K = 20


def _data_or_error(value: Any, name: str, dataset: str) -> InteractionData:
    if not isinstance(value, InteractionData):
        raise ValueError(
            f"dataset {dataset!r}: recommendation evaluation needs InteractionData as its {name} split, "
            f"got {type(value).__name__}"
        )
    return value


class RecommendationEvaluator:
    """Scores a recommendation method by full ranking on a dataset's test users.

    Args:
        splits: an interactions dataset (``splits.test`` is
            :class:`~contrastkit.data.interactions.InteractionData`).
        config: the run's :class:`~contrastkit.train.config.EvalConfig` (``test_subset``: at
            most this many test users; ``validation_queries``: users for periodic checks;
            ``batch_size``: users scored per block).
        device: where the ranking runs (the method's embeddings are moved there).
        seed: seeds the user sub-samples.

    Attributes:
        test: the (sub-sampled) test data; ``len(test)`` is the number of test users.
    """

    def __init__(self, splits: DatasetSplits, config: Any, device: torch.device, seed: int) -> None:
        self.config, self.device, self.k = config, torch.device(device), TOP_K
        self.test = _data_or_error(splits.test, "test", splits.name).subset_users(config.test_subset, seed=seed)
        validation = splits.validation if splits.validation is not None else splits.test
        self.validation = _data_or_error(validation, "validation", splits.name).subset_users(
            config.validation_queries, seed=seed + 1
        )

    def _rank(self, users: torch.Tensor, items: torch.Tensor, data: InteractionData) -> dict[str, float]:
        scores = recall_ndcg_at_k(
            users.to(self.device).float(), items.to(self.device).float(), data.train_pairs, data.test_pairs,
            k=self.k, batch_users=max(1, int(self.config.batch_size)),
        )  # fmt: skip
        scores["eval_users"] = float(len(data))
        return scores

    def score(self, method: Method, data: InteractionData | None = None) -> dict[str, float]:
        """Recall@20 and NDCG@20 of ``method`` on ``data`` (default: the test data)."""
        data = data or self.test
        started = time.perf_counter()
        was_training = method.training
        method.eval()
        try:
            users, items = method.user_item_embeddings()
        finally:
            method.train(was_training)
        scores = self._rank(users, items, data)
        scores["eval_seconds"] = round(time.perf_counter() - started, 2)
        return scores

    def __call__(self, method: Method) -> dict[str, float]:
        """Periodic check on the validation users (cheap: a sample of users)."""
        scores = self.score(method, self.validation)
        return {f"val_{name}": value for name, value in scores.items() if name.startswith(("recall", "ndcg"))}

    def final(self, method: Method) -> tuple[dict[str, float], None]:
        """The end-of-run scores on the test users (no features to plot)."""
        return self.score(method), None

    def popularity(self) -> dict[str, float]:
        """The most-popular baseline: every user gets the items ranked by training interactions."""
        data = self.test
        counts = popularity_scores(data.train_pairs, data.num_items)
        return self._rank(torch.ones(data.num_users, 1), counts[:, None], data)

    def baselines(self, method: Method) -> dict[str, dict[str, float]]:
        """Most-popular items and the untrained model (``random_init``), on the same test users."""
        return {"popularity": self.popularity(), "random_init": self.score(method)}

    def columns(self) -> list[str]:
        return [f"recall_at_{self.k}", f"ndcg_at_{self.k}"]
