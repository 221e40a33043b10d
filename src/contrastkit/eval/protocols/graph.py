"""The evaluation protocols of graph data: node probes and link prediction; graph classification.

Node level (:class:`NodeGraphProtocol`, one large graph): the encoder embeds the whole
message-passing graph once (full-batch inference, no sampling); a logistic-regression probe
on the fixed seeded node split scores node classification, and cosine similarity of the
endpoint embeddings scores the held-out edges (link-prediction AUC and OGB's Hits@50).
Baselines from the same run: the raw node features, and the untrained encoder.

Graph level (:class:`GraphSetProtocol`, a set of small graphs): pooled graph embeddings of the
train and test graphs, scored by the weighted kNN and the linear probe like image features.

``embed`` exports the same features: table ``nodes`` (node index as id; the probe's node split
picks the rows of ``train`` and ``test``) or table ``graphs`` (row numbers of the split).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from contrastkit.data.graph import GraphTask
from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.features import extract_features
from contrastkit.eval.graph import link_prediction, node_classification
from contrastkit.eval.protocols.base import (
    EmbeddingTable,
    EvaluationProtocol,
    Model,
    ProtocolSettings,
    check_split,
    evaluation_mode,
    merge_splits,
    split_parts,
)
from contrastkit.eval.report import evaluate_representation
from contrastkit.utils.schema import bounded

NODE_COLUMNS = ("node_accuracy", "link_auc", "link_hits_at_50")


@dataclasses.dataclass
class NodeGraphSettings(ProtocolSettings):
    """The ``eval:`` keys of the node-level protocol.

    Attributes:
        linear: run the logistic-regression node probe (link prediction always runs).
    """

    linear: bool = True


@dataclasses.dataclass
class GraphSetSettings(ProtocolSettings):
    """The ``eval:`` keys of the graph-classification protocol (as the classification protocol's).

    Attributes:
        knn_k: neighbours of the weighted kNN (capped at the training graphs).
        knn_temperature: vote temperature of the weighted kNN.
        linear: run the linear probe at the end.
        batch_size: graphs per forward pass when extracting features.
    """

    knn_k: int = bounded(200, minimum=1)
    knn_temperature: float = bounded(0.1, minimum=0, exclusive_minimum=True)
    linear: bool = True
    batch_size: int = bounded(1024, minimum=1)


class NodeGraphProtocol(EvaluationProtocol):
    """Node classification and link prediction on frozen node embeddings.

    Args:
        splits: a node-level dataset (``splits.test`` is a :class:`contrastkit.data.graph.GraphTask`).
        settings: :class:`NodeGraphSettings` (``linear=False`` skips the probe).
        device: where the full-graph forward pass runs.
        seed: seeds the probe.
    """

    settings_type = NodeGraphSettings

    def __init__(self, splits: DatasetSplits, settings: NodeGraphSettings, device: torch.device | None,
                 seed: int) -> None:
        super().__init__(splits, settings, device, seed)
        if not isinstance(splits.test, GraphTask):
            raise ValueError(f"dataset {splits.name!r}: node evaluation needs a GraphTask test split, "
                             f"got {type(splits.test).__name__}")
        self.task: GraphTask = splits.test

    def features(self, method: Model) -> torch.Tensor:
        """Embeddings ``[N, D]`` of every node of the message-passing graph (eval mode)."""
        with evaluation_mode(method), torch.no_grad():
            return method.embed(self.task.graph.to(self.device)).float().cpu()

    def score(self, embeddings: torch.Tensor, *, probe: bool = True) -> dict[str, float]:
        """Probe accuracy (when labelled and ``probe``) and link-prediction scores of ``embeddings``."""
        scores: dict[str, float] = {}
        labels = self.task.labels
        if probe and self.settings.linear and labels is not None and self.task.test_idx.numel():
            scores.update(node_classification(embeddings, labels, self.task.train_idx, self.task.val_idx,
                                              self.task.test_idx, seed=self.seed))
        links = self.task.links
        if links is not None:
            scores.update(link_prediction(embeddings, links.test_pos, links.test_neg))
        return scores

    def periodic(self, method: Model) -> dict[str, float]:
        """Periodic check: link-prediction AUC on the validation edges (no probe: cheap)."""
        links = self.task.links
        if links is None:
            return {}
        scores = link_prediction(self.features(method), links.val_pos, links.val_neg)
        return {f"val_{name}": value for name, value in scores.items()}

    def final(self, method: Model) -> tuple[dict[str, float], torch.Tensor]:
        started = time.perf_counter()
        embeddings = self.features(method)
        scores = self.score(embeddings)
        scores["embed_seconds"] = round(time.perf_counter() - started, 2)
        test_rows = self.task.test_idx if self.task.test_idx.numel() else torch.arange(embeddings.shape[0])
        return scores, embeddings[test_rows]

    def embed(self, method: Model, split: str) -> list[EmbeddingTable]:
        """Table ``nodes``: the full-graph node embeddings of the split's nodes (``all``: every node).

        ``test`` is the probe's test nodes (every node for an unlabelled graph, as :meth:`final`
        plots), ``train`` its training nodes; ids are node indices, labels the node classes.
        """
        split = check_split(split)
        embeddings = self.features(method)
        every_node = torch.arange(embeddings.shape[0])
        if split == "all":
            rows = every_node
        elif split == "test":
            rows = self.task.test_idx if self.task.test_idx.numel() else every_node
        else:
            rows = self.task.train_idx
            if not rows.numel():
                raise ValueError(f"dataset {self.splits.name!r} has no labelled node split (no training nodes); "
                                 "export split 'all' (every node) or 'test'")
        labels = self.task.labels
        return [EmbeddingTable("nodes", embeddings[rows], rows.tolist(),
                               labels=None if labels is None else labels[rows], class_names=self.splits.class_names)]

    def baselines(self, method: Model) -> dict[str, dict[str, float]]:
        """The raw node features and the untrained encoder, scored the same way."""
        return {"raw_features": self.score(self.task.graph.x.float()), "random_init": self.score(self.features(method))}

    def columns(self) -> list[str]:
        return [column for column in NODE_COLUMNS if column != "node_accuracy" or self.task.labels is not None]

    def describe(self) -> str:
        return f"logistic probe on {len(self.task)} test nodes; link prediction on held-out edges"

    def evaluated_rows(self) -> dict[str, int | None]:
        return {"train": None, "test": len(self.task)}

    def plot_labels(self) -> torch.Tensor | None:
        labels = self.task.labels
        if labels is None:
            return None
        rows = self.task.test_idx if self.task.test_idx.numel() else torch.arange(labels.numel())
        return labels[rows]


class GraphSetProtocol(EvaluationProtocol):
    """kNN and linear-probe accuracy of pooled graph embeddings (graph classification)."""

    settings_type = GraphSetSettings

    def __init__(self, splits: DatasetSplits, settings: GraphSetSettings, device: torch.device | None,
                 seed: int) -> None:
        super().__init__(splits, settings, device, seed)
        self.train, self.test = splits.train, splits.test
        self.num_classes = splits.num_classes

    def _embed(self, method: Model, dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled graph embeddings and labels of ``dataset`` (eval mode)."""
        with evaluation_mode(method):
            features, labels = extract_features(method.embed, dataset, self.settings.batch_size, self.device)
        assert labels is not None  # every graph of the bank is labelled
        return features, labels

    def _score(self, train: torch.Tensor, test: torch.Tensor, train_labels: torch.Tensor, test_labels: torch.Tensor,
               linear: bool | None = None) -> dict[str, float]:
        linear = self.settings.linear if linear is None else linear
        return evaluate_representation(train, train_labels, test, test_labels, knn_k=min(self.settings.knn_k, len(train)),
                                       knn_temperature=self.settings.knn_temperature, linear=linear,
                                       num_classes=self.num_classes)

    def embed(self, method: Model, split: str) -> list[EmbeddingTable]:
        """Table ``graphs``: the pooled embeddings and labels of the split's graphs (ids: row numbers)."""
        datasets = {"train": self.train, "test": self.test}
        tables = {}
        for part in split_parts(split):
            features, labels = self._embed(method, datasets[part])
            tables[part] = [EmbeddingTable("graphs", features, list(range(len(features))), labels=labels,
                                           class_names=self.splits.class_names)]
        return merge_splits(tables)

    def periodic(self, method: Model) -> dict[str, float]:
        train, train_labels = self._embed(method, self.train)
        test, test_labels = self._embed(method, self.test)
        return self._score(train, test, train_labels, test_labels, linear=False)

    def final(self, method: Model) -> tuple[dict[str, float], torch.Tensor]:
        train, train_labels = self._embed(method, self.train)
        test, test_labels = self._embed(method, self.test)
        return self._score(train, test, train_labels, test_labels), test

    def baselines(self, method: Model) -> dict[str, dict[str, float]]:
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

    def describe(self) -> str:
        return f"kNN k={self.settings.knn_k}, τ={self.settings.knn_temperature}; test rows {len(self.test)}"

    def evaluated_rows(self) -> dict[str, int | None]:
        return {"train": len(self.train), "test": len(self.test)}

    def plot_labels(self) -> torch.Tensor | None:
        return getattr(self.test, "labels", None)
