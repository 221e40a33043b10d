"""Evaluation of graph methods inside a run (the graph counterparts of ``run.Evaluator``).

Node level (:class:`NodeGraphEvaluator`, modality ``graph``): the encoder embeds the whole
message-passing graph once (full-batch inference, no sampling); a logistic-regression probe
on the fixed seeded node split scores node classification, and cosine similarity of the
endpoint embeddings scores the held-out edges (link-prediction AUC and OGB's Hits@50).
Baselines from the same run: the raw node features, and the untrained encoder.

Graph level (:class:`GraphSetEvaluator`, modality ``graphs``): pooled graph embeddings of the
train and test graphs, scored by the weighted kNN and the linear probe like image features.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.features import extract_features
from contrastkit.eval.graph import link_prediction, node_classification
from contrastkit.eval.report import evaluate_representation
from contrastkit.methods.base import Method

NODE_COLUMNS = ("node_accuracy", "link_auc", "link_hits_at_50")


class NodeGraphEvaluator:
    """Node classification and link prediction on frozen node embeddings.

    Args:
        splits: a ``graph`` dataset (``splits.test`` is a :class:`contrastkit.data.graph.GraphTask`).
        config: the run's :class:`~contrastkit.train.config.EvalConfig` (``linear=False`` skips the probe).
        device: where the full-graph forward pass runs.
        seed: seeds the probe.
    """

    def __init__(self, splits: DatasetSplits, config: Any, device: torch.device, seed: int) -> None:
        from contrastkit.data.graph import GraphTask

        if not isinstance(splits.test, GraphTask):
            raise ValueError(f"dataset {splits.name!r}: node evaluation needs a GraphTask test split, "
                             f"got {type(splits.test).__name__}")
        self.task: GraphTask = splits.test
        self.test = self.task
        self.config, self.device, self.seed = config, device, seed

    def features(self, method: Method) -> torch.Tensor:
        """Embeddings ``[N, D]`` of every node of the message-passing graph (eval mode)."""
        was_training = method.training
        method.eval()
        try:
            with torch.no_grad():
                return method.embed(self.task.graph.to(self.device)).float().cpu()
        finally:
            method.train(was_training)

    def score(self, embeddings: torch.Tensor, *, probe: bool = True) -> dict[str, float]:
        """Probe accuracy (when labelled and ``probe``) and link-prediction scores of ``embeddings``."""
        scores: dict[str, float] = {}
        labels = self.task.labels
        if probe and self.config.linear and labels is not None and self.task.test_idx.numel():
            scores.update(node_classification(embeddings, labels, self.task.train_idx, self.task.val_idx,
                                              self.task.test_idx, seed=self.seed))
        links = self.task.links
        if links is not None:
            scores.update(link_prediction(embeddings, links.test_pos, links.test_neg))
        return scores

    def __call__(self, method: Method) -> dict[str, float]:
        """Periodic check: link-prediction AUC on the validation edges (no probe: cheap)."""
        links = self.task.links
        if links is None:
            return {}
        scores = link_prediction(self.features(method), links.val_pos, links.val_neg)
        return {f"val_{name}": value for name, value in scores.items()}

    def final(self, method: Method) -> tuple[dict[str, float], torch.Tensor]:
        started = time.perf_counter()
        embeddings = self.features(method)
        scores = self.score(embeddings)
        scores["embed_seconds"] = round(time.perf_counter() - started, 2)
        test_rows = self.task.test_idx if self.task.test_idx.numel() else torch.arange(embeddings.shape[0])
        return scores, embeddings[test_rows]

    def baselines(self, method: Method) -> dict[str, dict[str, float]]:
        """The raw node features and the untrained encoder, scored the same way."""
        return {"raw_features": self.score(self.task.graph.x.float()), "random_init": self.score(self.features(method))}

    def columns(self) -> list[str]:
        return [column for column in NODE_COLUMNS if column != "node_accuracy" or self.task.labels is not None]

    @property
    def plot_labels(self) -> torch.Tensor | None:
        labels = self.task.labels
        if labels is None:
            return None
        rows = self.task.test_idx if self.task.test_idx.numel() else torch.arange(labels.numel())
        return labels[rows]


class GraphSetEvaluator:
    """kNN and linear-probe accuracy of pooled graph embeddings (graph classification)."""

    def __init__(self, splits: DatasetSplits, config: Any, device: torch.device, seed: int) -> None:
        self.train, self.test = splits.train, splits.test
        self.config, self.device, self.seed = config, device, seed
        self.num_classes = splits.num_classes

    def _embed(self, method: Method, dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled graph embeddings and labels of ``dataset`` (eval mode)."""
        was_training = method.training
        method.eval()
        try:
            features, labels = extract_features(method.embed, dataset, self.config.batch_size, self.device)
        finally:
            method.train(was_training)
        assert labels is not None  # every graph of the bank is labelled
        return features, labels

    def _score(self, train: torch.Tensor, test: torch.Tensor, train_labels: torch.Tensor, test_labels: torch.Tensor,
               linear: bool | None = None) -> dict[str, float]:
        linear = self.config.linear if linear is None else linear
        return evaluate_representation(train, train_labels, test, test_labels, knn_k=min(self.config.knn_k, len(train)),
                                       knn_temperature=self.config.knn_temperature, linear=linear,
                                       num_classes=self.num_classes)

    def __call__(self, method: Method) -> dict[str, float]:
        train, train_labels = self._embed(method, self.train)
        test, test_labels = self._embed(method, self.test)
        return self._score(train, test, train_labels, test_labels, linear=False)

    def final(self, method: Method) -> tuple[dict[str, float], torch.Tensor]:
        train, train_labels = self._embed(method, self.train)
        test, test_labels = self._embed(method, self.test)
        return self._score(train, test, train_labels, test_labels), test

    def baselines(self, method: Method) -> dict[str, dict[str, float]]:
        """Mean-pooled raw node features, and the untrained encoder."""
        def raw(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
            batch = dataset.__getitems__(list(range(len(dataset))))
            data = batch.inputs
            pooled = torch.zeros(data.num_graphs, data.x.shape[1]).index_add_(0, data.batch, data.x.float())
            counts = torch.bincount(data.batch, minlength=data.num_graphs).clamp_min(1).unsqueeze(1)
            return pooled / counts, batch.labels

        train, train_labels = raw(self.train)
        test, test_labels = raw(self.test)
        return {"raw_features": self._score(train, test, train_labels, test_labels),
                "random_init": self.final(method)[0]}

    def columns(self) -> list[str]:
        return ["knn_top1", "linear_top1"]
