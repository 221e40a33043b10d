"""Classification of frozen features: weighted kNN, linear probe and (optionally) the RBF-SVM probe.

The protocol of image and series runs (and of any data whose samples are tensors with
labels): the (sub-sampled) train and test splits are embedded without augmentation; a
weighted kNN (InstDisc's protocol) and a linear probe score the features, and the
RBF-SVM probe (TS2Vec's protocol) where enabled. The final scores add alignment and
uniformity of two augmented views of test rows. Baselines from the same run: the raw
inputs as features, and the untrained encoder. ``embed`` exports the same backbone
features of every row of a split (table ``samples``: row numbers as ids, the labels, and the
images themselves as thumbnails when the rows are ``[C, H, W]`` pictures).
"""

from __future__ import annotations

import dataclasses

import torch

from contrastkit.data.arrays import ArrayDataset
from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.features import extract_features
from contrastkit.eval.geometry import alignment_uniformity
from contrastkit.eval.protocols.base import (
    EmbeddingTable,
    EvaluationProtocol,
    Model,
    ProtocolSettings,
    evaluation_mode,
    merge_splits,
    split_parts,
)
from contrastkit.eval.report import evaluate_representation
from contrastkit.eval.svm import svm_probe
from contrastkit.utils.schema import bounded

#: Test rows whose two augmented views measure alignment and uniformity.
GEOMETRY_ROWS = 2000


@dataclasses.dataclass
class ClassificationSettings(ProtocolSettings):
    """The ``eval:`` keys of the classification protocol.

    Attributes:
        knn_k: neighbours of the weighted kNN (InstDisc protocol).
        knn_temperature: vote temperature of the weighted kNN.
        linear: run the linear probe (and the SVM probe) at the end.
        train_subset: evaluate with at most this many training rows (kNN bank and probe fit); ``None``: all.
        test_subset: evaluate on at most this many test rows; ``None``: all.
        batch_size: rows per forward pass when extracting features.
        svm: also run the RBF-SVM probe (TS2Vec's protocol; the series modality turns it on).
    """

    knn_k: int = bounded(200, minimum=1)
    knn_temperature: float = bounded(0.1, minimum=0, exclusive_minimum=True)
    linear: bool = True
    train_subset: int | None = bounded(None, minimum=1)
    test_subset: int | None = bounded(None, minimum=1)
    batch_size: int = bounded(1024, minimum=1)
    svm: bool = False


def _subset(dataset: ArrayDataset, size: int | None, seed: int) -> ArrayDataset:
    if size is None or size >= len(dataset):
        return dataset
    rows = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:size]
    return dataset.subset(rows.sort().values)


class ClassificationProtocol(EvaluationProtocol):
    """kNN and probes on the backbone features of the (sub-sampled) train and test splits."""

    settings_type = ClassificationSettings
    settings: ClassificationSettings

    def __init__(self, splits: DatasetSplits, settings: ClassificationSettings, device: torch.device | None,
                 seed: int) -> None:
        super().__init__(splits, settings, device, seed)
        self.train = _subset(splits.train, settings.train_subset, seed)
        self.test = _subset(splits.test, settings.test_subset, seed + 1)
        self.num_classes = splits.num_classes
        if self.train.labels is None or self.test.labels is None:
            raise ValueError(f"dataset {splits.name!r} has no labels: kNN and linear-probe evaluation need them")

    def features_of(self, model: Model, dataset: ArrayDataset) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Backbone features and labels of every row of ``dataset`` (eval mode, no augmentation)."""
        with evaluation_mode(model):
            return extract_features(model.embed, dataset, self.settings.batch_size, self.device)

    def features(self, model: Model) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone features of the (sub-sampled) train and test rows."""
        return self.features_of(model, self.train)[0], self.features_of(model, self.test)[0]

    def embed(self, model: Model, split: str) -> list[EmbeddingTable]:
        """Table ``samples``: the backbone features of every row of the split (not the evaluation sub-sample)."""
        datasets = {"train": self.splits.train, "test": self.splits.test}
        tables = {}
        for part in split_parts(split):
            features, labels = self.features_of(model, datasets[part])
            inputs = getattr(datasets[part], "inputs", None)
            # Rows that are pictures ([N, C, H, W], grey or RGB) travel along as the projector's thumbnails.
            pictures = None
            if isinstance(inputs, torch.Tensor) and inputs.dim() == 4 and inputs.shape[1] in (1, 3):
                pictures = inputs
            tables[part] = [EmbeddingTable("samples", features, list(range(len(features))), labels=labels,
                                           class_names=self.splits.class_names, thumbnails=pictures)]
        return merge_splits(tables)

    def score(self, train_features: torch.Tensor, test_features: torch.Tensor, linear: bool | None = None) -> dict:
        """kNN, linear probe (unless ``linear=False``: periodic evaluation) and, where enabled, the SVM probe."""
        assert self.train.labels is not None and self.test.labels is not None
        linear = self.settings.linear if linear is None else linear
        scores: dict[str, float] = evaluate_representation(
            train_features, self.train.labels, test_features, self.test.labels,
            knn_k=self.settings.knn_k, knn_temperature=self.settings.knn_temperature,
            linear=linear, num_classes=self.num_classes,
        )  # fmt: skip
        if self.settings.svm and linear:
            scores.update(svm_probe(train_features, self.train.labels, test_features, self.test.labels, seed=self.seed))
        return scores

    def periodic(self, model: Model) -> dict[str, float]:
        """kNN only (cheap)."""
        return self.score(*self.features(model), linear=False)

    def baselines(self, model: Model) -> dict[str, dict[str, float]]:
        """Raw inputs and the randomly initialised encoder, scored like the learned features."""
        return {"raw_input": self.raw_input(), "random_init": self.score(*self.features(model))}

    def final(self, model: Model) -> tuple[dict[str, float], torch.Tensor | None]:
        """The learned representation's scores (kNN, probes, view geometry) and the test features."""
        train_features, test_features = self.features(model)
        learned = self.score(train_features, test_features)
        learned.update(self.view_geometry(model))
        return learned, test_features

    def view_geometry(self, model: Model) -> dict[str, float]:
        """Alignment and uniformity of backbone features of two augmented views of test rows.

        Only for a model with two views (``view_a``, ``view_b``, as the two-view methods have).
        """
        view_a, view_b = getattr(model, "view_a", None), getattr(model, "view_b", None)
        if view_a is None or view_b is None:
            return {}
        inputs = self.test.inputs[:GEOMETRY_ROWS].to(self.device)
        model.eval()  # left in eval mode, as before this moved here: the run is over
        with torch.no_grad():
            features_a = model.embed(view_a(inputs)).float().cpu()
            features_b = model.embed(view_b(inputs)).float().cpu()
        return alignment_uniformity(features_a, features_b)

    def raw_input(self) -> dict[str, float]:
        """The raw-input baseline: flattened inputs as features (missing values, e.g. series padding, as 0)."""
        return self.score(
            torch.nan_to_num(self.train.inputs.flatten(1).float()), torch.nan_to_num(self.test.inputs.flatten(1).float())
        )

    def columns(self) -> list[str]:
        return ["knn_top1", "linear_top1"] + (["svm_accuracy"] if self.settings.svm else [])

    def describe(self) -> str:
        return f"kNN k={self.settings.knn_k}, τ={self.settings.knn_temperature}; test rows {len(self.test)}"

    def evaluated_rows(self) -> dict[str, int | None]:
        return {"train": len(self.train), "test": len(self.test)}

    def plot_labels(self) -> torch.Tensor | None:
        return self.test.labels
