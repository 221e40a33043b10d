"""Weighted k-nearest-neighbour classification of frozen features (InstDisc protocol).

Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
CVPR 2018: features are L2-normalised, each test point takes its ``k`` most
cosine-similar training points, and neighbour ``j`` votes for its class with weight
``exp(s_j / temperature)``. The class with the largest summed weight wins. Defaults
``k=200``, ``temperature=0.1`` are the paper's (and solo-learn's / lightly's).

Accuracies are fractions in ``[0, 1]`` (not percentages), like everywhere in ``eval/``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings, check_labels


def knn_scores(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Per-class vote scores of the weighted kNN classifier, ``[M, num_classes]``.

    The score of class ``c`` for a test row is ``sum_{j in top-k, y_j = c} exp((s_j - s_1) / temperature)``,
    where ``s_j`` are cosine similarities in decreasing order. Subtracting the largest
    similarity ``s_1`` avoids overflow for small temperatures and does not change the ranking.

    Args:
        train_features: ``[N, D]`` features of the labelled reference set.
        train_labels: ``[N]`` integer labels.
        test_features: ``[M, D]`` features to classify.
        k: the number of neighbours; clamped to ``N`` when larger.
        temperature: the vote temperature ``tau`` (> 0).
        num_classes: the number of classes; default ``max(train_labels) + 1``.
        chunk_size: test rows per block (memory is ``chunk_size x N`` floats).

    Returns:
        The class scores ``[M, num_classes]`` (float32, on the features' device).
    """
    check_embeddings("train_features", train_features)
    check_embeddings("test_features", test_features, dim=train_features.shape[1], min_rows=0)
    train_labels = check_labels("train_labels", train_labels, train_features.shape[0], non_negative=True)
    train_labels = train_labels.to(train_features.device)
    if int(k) < 1:
        raise ValueError(f"knn: expected k >= 1, got {k}")
    if not float(temperature) > 0:
        raise ValueError(f"knn: expected temperature > 0, got {temperature}")
    if int(chunk_size) < 1:
        raise ValueError(f"knn: expected chunk_size >= 1, got {chunk_size}")
    if num_classes is None:
        num_classes = int(train_labels.max()) + 1
    if int(train_labels.max()) >= num_classes:
        raise ValueError(f"knn: train labels go up to {int(train_labels.max())} but num_classes is {num_classes}")
    k = min(int(k), train_features.shape[0])

    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    scores = torch.zeros(test.shape[0], num_classes, dtype=torch.float32, device=test.device)
    for start in range(0, test.shape[0], int(chunk_size)):
        block = test[start : start + int(chunk_size)]
        similarity = block @ train.T  # [c, N]
        top_similarity, top_index = similarity.topk(k, dim=1)  # sorted, largest first
        weights = ((top_similarity - top_similarity[:, :1]) / temperature).exp()
        scores[start : start + block.shape[0]].scatter_add_(1, train_labels[top_index], weights)
    return scores


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Top-1 (and top-5) accuracy of the weighted kNN classifier of InstDisc (Wu et al. 2018).

    Features are L2-normalised; each test row's ``k`` nearest training rows by cosine
    similarity vote for their class with weight ``exp(similarity / temperature)``.

    Args:
        train_features: ``[N, D]`` features of the labelled reference set (e.g. the train split).
        train_labels: ``[N]`` integer labels.
        test_features: ``[M, D]`` features to classify.
        test_labels: ``[M]`` integer labels.
        k: the number of neighbours (paper: 200); clamped to ``N`` when larger.
        temperature: the vote temperature (paper: 0.1).
        num_classes: the number of classes; default ``max(label) + 1`` over both splits.
        chunk_size: test rows per block, bounding memory to ``chunk_size x N`` floats.

    Returns:
        ``{"knn_top1": float}`` plus ``"knn_top5"`` when there are at least 5 classes;
        accuracies are fractions in ``[0, 1]``; ties count against the true class.

    Example:
        >>> train = torch.randn(100, 16); labels = torch.randint(0, 10, (100,))
        >>> knn_accuracy(train, labels, train, labels, k=1)["knn_top1"]
        1.0
    """
    check_embeddings("test_features", test_features)
    test_labels = check_labels("test_labels", test_labels, test_features.shape[0], non_negative=True)
    if num_classes is None:
        num_classes = int(max(int(train_labels.max()), int(test_labels.max()))) + 1
    scores = knn_scores(
        train_features, train_labels, test_features,
        k=k, temperature=temperature, num_classes=num_classes, chunk_size=chunk_size,
    )  # fmt: skip
    return accuracy_from_scores(scores, test_labels.to(scores.device), prefix="knn")


def accuracy_from_scores(scores: torch.Tensor, labels: torch.Tensor, *, prefix: str) -> dict[str, float]:
    """Top-1 (and top-5 when ``scores`` has at least 5 columns) accuracy as fractions in ``[0, 1]``.

    Ties count against the true class: a row is a top-``n`` hit when fewer than ``n`` other
    classes score at least as high as the true class. This keeps the result deterministic
    (e.g. classes without any kNN vote all score 0 and never win by tie-breaking luck).

    Args:
        scores: ``[M, C]`` class scores (larger is better).
        labels: ``[M]`` integer labels.
        prefix: the key prefix, e.g. ``"knn"`` gives ``knn_top1``.
    """
    true_scores = scores.gather(1, labels[:, None].long())
    rank = (scores >= true_scores).sum(dim=1) - 1  # other classes scoring at least as high
    result = {f"{prefix}_top1": float((rank < 1).float().mean())}
    if scores.shape[1] >= 5:
        result[f"{prefix}_top5"] = float((rank < 5).float().mean())
    return result
