"""Evaluation protocols on frozen node embeddings: node classification and link prediction.

Node classification follows the linear-evaluation protocol of GRACE (Zhu et al., "Deep
Graph Contrastive Representation Learning", ICML-W 2020) and GCA (Zhu et al., WWW 2021):
the encoder is frozen, a logistic-regression classifier is fit on the embeddings of a
random subset of labelled nodes and scored on the rest, reporting accuracy (GRACE's
micro-F1, equal to accuracy for single-label data) and macro-F1. Here:

- :func:`~contrastkit.data.graph_splits.node_split` draws one seeded random 10% / 10% / 80% train / validation / test split of
  the labelled nodes, the split GCA states. GRACE's released ``eval.py`` instead takes 10% for
  training and 90% for testing and picks the L2 strength by 5-fold cross-validation on the
  training nodes; a fixed validation split is cheaper and deterministic.
- :func:`node_classification` standardises the embeddings with the training rows' statistics
  (GRACE L2-normalises them; standardising is what every probe of :mod:`contrastkit.eval`
  does), fits :func:`~contrastkit.eval.linear_probe.fit_logistic_regression` (full-batch
  L-BFGS) for each L2 strength of a small grid, keeps the one with the best validation
  accuracy, and scores it on the test nodes.

Link prediction follows the usual edge hold-out protocol (Kipf & Welling's GAE; PyG's
``RandomLinkSplit``) with OGB's metrics (Hu et al., "Open Graph Benchmark", NeurIPS 2020):

- :func:`~contrastkit.data.graph_splits.split_edges` holds out a seeded fraction of the edges as validation and test
  positives, removes them from the training graph, and draws as many negatives: random node
  pairs that are neither self loops nor edges of the full graph.
- :func:`link_prediction` scores each pair by the cosine (or dot product) of its two
  embeddings and reports ROC-AUC and Hits@K: the fraction of positive pairs that score
  strictly above the K-th highest negative score (``ogbl-collab``/``ogbl-ddi`` style).

Metrics are fractions in ``[0, 1]``, like everywhere in ``eval/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from contrastkit.data.graph_splits import check_node_labels
from contrastkit.eval.linear_probe import fit_logistic_regression
from contrastkit.utils.checks import check_edge_index, check_embeddings

#: The L2 strengths (of ``mean cross-entropy + weight_decay * ||W||^2``) compared on the
#: validation nodes. Wide, because node-classification training sets are small (10% of Cora is
#: 270 nodes), where the best penalty varies by orders of magnitude between encoders.
NODE_WEIGHT_DECAYS: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)

# ----------------------------------------------------------------------------- node classification


def node_classification(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    train_idx: torch.Tensor,
    val_idx: torch.Tensor,
    test_idx: torch.Tensor,
    *,
    weight_decays: float | Sequence[float] = NODE_WEIGHT_DECAYS,
    max_iter: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    """Test accuracy and macro-F1 of a logistic-regression probe on frozen node embeddings.

    Embeddings are standardised with the training nodes' mean and standard deviation. One
    multinomial logistic regression per L2 strength is fit on the training nodes (full-batch
    L-BFGS from zero, so the result is deterministic); the one with the best validation accuracy
    (the earlier on ties) is scored on the test nodes. 63k x 128 embeddings take a few seconds on
    two CPU cores.

    Args:
        embeddings: ``[N, D]`` node embeddings.
        labels: ``[N]`` integer labels (``-1`` = unlabelled; no split may contain such a node).
        train_idx: node ids to fit on.
        val_idx: node ids to choose the L2 strength on (may be empty when one strength is given).
        test_idx: node ids to score on.
        weight_decays: one L2 strength or several to choose from (default :data:`NODE_WEIGHT_DECAYS`).
        max_iter: the largest number of L-BFGS iterations per fit.
        seed: accepted so that every protocol takes the run's seed; the fit is deterministic
            (full-batch L-BFGS from zero) and draws nothing, so the result does not depend on it.
            The randomness of the protocol is the split's (:func:`~contrastkit.data.graph_splits.node_split`'s ``seed``).

    Returns:
        ``{"node_accuracy", "node_macro_f1", "node_val_accuracy", "node_weight_decay"}``: test
        accuracy and macro-F1 (over the classes present in the test labels or predictions, as
        scikit-learn's ``f1_score(average="macro")``), the chosen strength's validation accuracy
        (``nan`` without validation nodes) and the chosen strength.

    Raises:
        ValueError: on malformed embeddings, labels or indices, or an unlabelled node in a split.

    Example:
        >>> train, val, test = node_split(len(labels), labels, seed=0)
        >>> node_classification(embeddings, labels, train, val, test)["node_accuracy"]
    """
    check_embeddings("embeddings", embeddings)
    num_nodes = embeddings.shape[0]
    labels = check_node_labels(labels, num_nodes).cpu()
    train_idx = _check_index("train_idx", train_idx, num_nodes, labels, min_size=1)
    val_idx = _check_index("val_idx", val_idx, num_nodes, labels, min_size=0)
    test_idx = _check_index("test_idx", test_idx, num_nodes, labels, min_size=1)
    candidates = (
        [float(weight_decays)] if isinstance(weight_decays, (int, float)) else [float(w) for w in weight_decays]
    )
    if not candidates or min(candidates) < 0:
        raise ValueError(f"node_classification: expected one or more weight decays >= 0, got {weight_decays}")
    if len(candidates) > 1 and val_idx.numel() == 0:
        raise ValueError("node_classification: choosing among several weight decays needs validation nodes, got none")
    num_classes = int(labels.max()) + 1

    features = embeddings.detach().float().cpu()
    train = features[train_idx]
    mean, std = train.mean(dim=0), (train.std(dim=0) if train.shape[0] > 1 else torch.ones_like(train[0]))
    features = (features - mean) / std.clamp_min(1e-6)
    train_features, train_labels = features[train_idx], labels[train_idx]

    best: tuple[float, float, torch.Tensor, torch.Tensor] | None = None
    for candidate in candidates:
        weight, bias = fit_logistic_regression(
            train_features, train_labels, num_classes=num_classes, weight_decay=candidate, max_iter=max_iter
        )
        if val_idx.numel():
            predicted = torch.addmm(bias, features[val_idx], weight.T).argmax(dim=1)
            val_accuracy = float((predicted == labels[val_idx]).double().mean())
        else:
            val_accuracy = float("nan")
        if best is None or val_accuracy > best[1] + 1e-12:
            best = (candidate, val_accuracy, weight, bias)
    assert best is not None
    chosen, val_accuracy, weight, bias = best
    predicted = torch.addmm(bias, features[test_idx], weight.T).argmax(dim=1)
    target = labels[test_idx]
    return {
        "node_accuracy": float((predicted == target).double().mean()),
        "node_macro_f1": macro_f1(predicted, target),
        "node_val_accuracy": val_accuracy,
        "node_weight_decay": chosen,
    }


def macro_f1(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """Macro-averaged F1 over the classes present in ``target`` or ``predicted``.

    ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``, averaged with equal weight over every class that
    occurs in either tensor (scikit-learn's ``f1_score(target, predicted, average="macro")``).

    Args:
        predicted: ``[M]`` predicted integer classes (non-negative).
        target: ``[M]`` true integer classes (non-negative).

    Returns:
        The macro-F1 in ``[0, 1]``.
    """
    if predicted.shape != target.shape or predicted.dim() != 1 or predicted.numel() == 0:
        raise ValueError(
            f"macro_f1: expected two non-empty [M] tensors, got {tuple(predicted.shape)} and {tuple(target.shape)}"
        )
    predicted, target = predicted.long().cpu(), target.long().cpu()
    size = int(max(predicted.max(), target.max())) + 1
    true_positive = torch.bincount(target[predicted == target], minlength=size).double()
    predicted_count = torch.bincount(predicted, minlength=size).double()
    target_count = torch.bincount(target, minlength=size).double()
    present = (predicted_count + target_count) > 0
    f1 = 2 * true_positive[present] / (predicted_count[present] + target_count[present])
    return float(f1.mean())


# ----------------------------------------------------------------------------- link prediction


def link_prediction(
    embeddings: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor,
    *,
    score: Literal["cosine", "dot"] = "cosine",
    k: int = 50,
) -> dict[str, float]:
    """ROC-AUC and Hits@K of held-out edges scored by their endpoints' embeddings.

    A pair ``(u, v)`` scores ``cos(z_u, z_v)`` (``score="cosine"``) or ``z_u . z_v`` (``"dot"``).

    Args:
        embeddings: ``[N, D]`` node embeddings (of the training graph).
        pos: ``[2, P]`` positive pairs (held-out edges).
        neg: ``[2, Q]`` negative pairs (non-edges).
        score: the pair score.
        k: the ``K`` of Hits@K (OGB uses 20, 50 or 100 depending on the dataset).

    Returns:
        ``{"link_auc": float, f"link_hits_at_{k}": float}`` (see :func:`roc_auc` and :func:`hits_at_k`).

    Raises:
        ValueError: on malformed inputs, an empty ``pos`` or ``neg``, or an unknown ``score``.

    Example:
        >>> split = split_edges(data.edge_index, data.num_nodes, seed=0)
        >>> z = encoder(data.x, split.train_edge_index)
        >>> link_prediction(z, split.test_pos, split.test_neg)
    """
    check_embeddings("embeddings", embeddings)
    if score not in ("cosine", "dot"):
        raise ValueError(f"link_prediction: expected score 'cosine' or 'dot', got {score!r}")
    num_nodes = embeddings.shape[0]
    pos = check_edge_index("link_prediction pos", pos, num_nodes, dtype=None, min_nodes=1, min_edges=1)
    neg = check_edge_index("link_prediction neg", neg, num_nodes, dtype=None, min_nodes=1, min_edges=1)
    features = embeddings.detach().double()
    if score == "cosine":
        features = F.normalize(features, dim=1)
    pos = pos.to(features.device)
    neg = neg.to(features.device)
    pos_scores = (features[pos[0]] * features[pos[1]]).sum(dim=1)
    neg_scores = (features[neg[0]] * features[neg[1]]).sum(dim=1)
    return {"link_auc": roc_auc(pos_scores, neg_scores), f"link_hits_at_{int(k)}": hits_at_k(pos_scores, neg_scores, k)}


def roc_auc(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> float:
    """The area under the ROC curve: the probability that a positive outscores a negative.

    ``AUC = (1 / (P Q)) sum_{i, j} ([s+_i > s-_j] + 0.5 [s+_i = s-_j])``, computed exactly in
    ``O((P + Q) log Q)`` by binary search in the sorted negative scores (ties count one half,
    as in scikit-learn's ``roc_auc_score``).

    Args:
        pos_scores: ``[P]`` scores of positive pairs.
        neg_scores: ``[Q]`` scores of negative pairs.

    Returns:
        The AUC in ``[0, 1]``.
    """
    pos_scores, neg_scores = _check_scores(pos_scores, neg_scores)
    sorted_neg = neg_scores.sort().values
    below = torch.searchsorted(sorted_neg, pos_scores, right=False)  # negatives strictly below
    at_or_below = torch.searchsorted(sorted_neg, pos_scores, right=True)
    wins = below.double().sum() + 0.5 * (at_or_below - below).double().sum()
    return float(wins / (pos_scores.numel() * neg_scores.numel()))


def hits_at_k(pos_scores: torch.Tensor, neg_scores: torch.Tensor, k: int = 50) -> float:
    """OGB's Hits@K: the share of positives scoring strictly above the K-th highest negative.

    As in ``ogb.linkproppred.Evaluator``, fewer than ``K`` negatives give ``1.0``.

    Args:
        pos_scores: ``[P]`` scores of positive pairs.
        neg_scores: ``[Q]`` scores of negative pairs.
        k: the rank ``K`` (>= 1).

    Returns:
        Hits@K in ``[0, 1]``.
    """
    pos_scores, neg_scores = _check_scores(pos_scores, neg_scores)
    if int(k) < 1:
        raise ValueError(f"hits_at_k: expected k >= 1, got {k}")
    if neg_scores.numel() < int(k):
        return 1.0
    threshold = torch.topk(neg_scores, int(k)).values[-1]
    return float((pos_scores > threshold).double().mean())


# ----------------------------------------------------------------------------- helpers


def _check_index(
    name: str, index: torch.Tensor, num_nodes: int, labels: torch.Tensor, *, min_size: int
) -> torch.Tensor:
    if not isinstance(index, torch.Tensor) or index.dim() != 1 or index.is_floating_point():
        shape = tuple(index.shape) if isinstance(index, torch.Tensor) else type(index).__name__
        raise ValueError(f"{name}: expected a 1-D integer tensor of node ids, got {shape}")
    index = index.long().cpu()
    if index.numel() < min_size:
        raise ValueError(f"{name}: expected at least {min_size} node ids, got {index.numel()}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_nodes):
        raise ValueError(f"{name}: expected node ids in [0, {num_nodes}), got [{int(index.min())}, {int(index.max())}]")
    if index.numel() and int(labels[index].min()) < 0:
        raise ValueError(f"{name}: expected labelled nodes only, got {int((labels[index] < 0).sum())} with label < 0")
    return index


def _check_scores(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for name, scores in (("pos_scores", pos_scores), ("neg_scores", neg_scores)):
        if not isinstance(scores, torch.Tensor) or scores.dim() != 1 or scores.numel() == 0:
            shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise ValueError(f"{name}: expected a non-empty 1-D tensor of scores, got {shape}")
        if not bool(torch.isfinite(scores).all()):
            raise ValueError(f"{name}: expected finite scores, got NaN or inf")
    return pos_scores.detach().double(), neg_scores.detach().double().to(pos_scores.device)


__all__ = [
    "NODE_WEIGHT_DECAYS",
    "hits_at_k",
    "link_prediction",
    "macro_f1",
    "node_classification",
    "roc_auc",
]
