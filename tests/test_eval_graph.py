"""Graph evaluation protocols against brute-force references, scikit-learn and hand-computed values."""

import itertools

import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score

from contrastkit.data.graph_splits import node_split
from contrastkit.eval.graph import (
    hits_at_k,
    link_prediction,
    macro_f1,
    node_classification,
    roc_auc,
)

# ----------------------------------------------------------------------------- node classification


def _clustered(num_nodes=900, dim=16, classes=3, noise=1.5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_nodes) % classes
    centres = torch.randn(classes, dim, generator=generator) * 2
    return centres[labels] + noise * torch.randn(num_nodes, dim, generator=generator), labels


def test_node_classification_matches_sklearn_logistic_regression():
    embeddings, labels = _clustered(noise=4.0)  # about 78% accuracy: many points near the boundary
    embeddings = embeddings * torch.linspace(0.1, 10, 16)  # unequal scales: standardisation matters
    train, val, test = node_split(900, labels, train_fraction=0.3, seed=0)
    weight_decay = 1e-3
    result = node_classification(embeddings, labels, train, val, test, weight_decays=weight_decay, max_iter=500)
    assert result["node_weight_decay"] == weight_decay
    # the fit draws nothing: the seed only matters through the split
    again = node_classification(embeddings, labels, train, val, test, weight_decays=weight_decay, max_iter=500, seed=9)
    assert again == result
    # same objective in scikit-learn: C * sum CE + ||W||^2 / 2  <=>  mean CE + ||W||^2 / (2 C n)
    mean, std = embeddings[train].mean(0), embeddings[train].std(0)
    standardised = ((embeddings - mean) / std).double().numpy()
    reference = LogisticRegression(C=1 / (2 * weight_decay * train.numel()), tol=1e-10, max_iter=5000)
    reference.fit(standardised[train.numpy()], labels[train].numpy())
    predicted = reference.predict(standardised[test.numpy()])
    expected_accuracy = float((predicted == labels[test].numpy()).mean())
    assert abs(result["node_accuracy"] - expected_accuracy) <= 1 / test.numel()  # at most one point differs
    assert abs(result["node_macro_f1"] - f1_score(labels[test].numpy(), predicted, average="macro")) < 0.005


def test_node_classification_chooses_weight_decay_on_validation():
    embeddings, labels = _clustered(noise=3.0, seed=1)
    train, val, test = node_split(900, labels, train_fraction=0.05, val_fraction=0.2, seed=1)
    grid = (1e-6, 1e-3, 10.0)
    result = node_classification(embeddings, labels, train, val, test, weight_decays=grid)
    # the reported validation accuracy is the best one over the grid
    each = [node_classification(embeddings, labels, train, val, test, weight_decays=w) for w in grid]
    val_scores = [r["node_val_accuracy"] for r in each]
    assert result["node_val_accuracy"] == max(val_scores)
    assert result["node_weight_decay"] == grid[val_scores.index(max(val_scores))]
    assert result["node_accuracy"] == each[val_scores.index(max(val_scores))]["node_accuracy"]
    assert result["node_accuracy"] > 0.6  # well above chance (1/3)


def test_node_classification_rejects_unlabelled_and_missing_validation():
    embeddings, labels = _clustered(num_nodes=30)
    labels[0] = -1
    with pytest.raises(ValueError, match="labelled nodes only"):
        node_classification(embeddings, labels, torch.tensor([0, 1]), torch.tensor([2]), torch.tensor([3]))
    with pytest.raises(ValueError, match="validation nodes"):
        node_classification(
            embeddings, labels, torch.tensor([1, 2]), torch.tensor([], dtype=torch.long), torch.tensor([3])
        )


def test_macro_f1_matches_sklearn_with_absent_classes():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        target = torch.randint(0, 6, (50,), generator=generator)
        predicted = torch.randint(1, 8, (50,), generator=generator)  # class 0 never predicted, 6-7 never true
        expected = f1_score(target.numpy(), predicted.numpy(), average="macro")
        assert macro_f1(predicted, target) == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------- metrics


def _brute_auc(pos, neg):
    total = 0.0
    for p, n in itertools.product(pos.tolist(), neg.tolist()):
        total += 1.0 if p > n else 0.5 if p == n else 0.0
    return total / (len(pos) * len(neg))


def test_roc_auc_hand_values_and_brute_force_with_ties():
    assert roc_auc(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 0.0])) == 0.75  # 3 of 4 pairs won
    assert roc_auc(torch.tensor([1.0]), torch.tensor([1.0, 0.0, 2.0])) == pytest.approx(0.5)  # one win, one tie
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        pos = torch.randint(0, 6, (37,), generator=generator).float()  # many ties
        neg = torch.randint(0, 5, (23,), generator=generator).float()
        expected = _brute_auc(pos, neg)
        assert roc_auc(pos, neg) == pytest.approx(expected, abs=1e-12)
        labels = [1] * 37 + [0] * 23
        assert roc_auc(pos, neg) == pytest.approx(roc_auc_score(labels, torch.cat([pos, neg]).numpy()), abs=1e-12)


def test_hits_at_k_follows_ogb():
    neg = torch.tensor([0.9, 0.1, 0.5, 0.7, 0.3])
    pos = torch.tensor([0.95, 0.7, 0.6, 0.8])
    assert hits_at_k(pos, neg, 1) == 0.25  # only 0.95 beats 0.9
    assert hits_at_k(pos, neg, 2) == 0.5  # 0.95, 0.8 beat the 2nd highest negative 0.7 (0.7 ties, no hit)
    assert hits_at_k(pos, neg, 3) == 1.0  # all beat 0.5
    assert hits_at_k(pos, neg, 6) == 1.0  # fewer negatives than K: OGB returns 1
    generator = torch.Generator().manual_seed(1)
    pos, neg = torch.randn(40, generator=generator), torch.randn(200, generator=generator)
    for k in (1, 10, 50, 200):
        kth = sorted(neg.tolist(), reverse=True)[k - 1]
        assert hits_at_k(pos, neg, k) == sum(p > kth for p in pos.tolist()) / 40


def test_link_prediction_scores_pairs_by_cosine_or_dot():
    embeddings = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])
    pos = torch.tensor([[0, 2], [1, 4]])  # cos: 1 (0-1), 1/sqrt2 (2-4); dot: 2, 1
    neg = torch.tensor([[0, 0, 1], [2, 3, 4]])  # cos: 0, -1, 1/sqrt2; dot: 0, -1, 2
    cosine = link_prediction(embeddings, pos, neg, k=1)
    assert cosine["link_auc"] == pytest.approx((3 + 2.5) / 6)  # pair (2,4) ties with neg (1,4)
    assert cosine["link_hits_at_1"] == 0.5
    dot = link_prediction(embeddings, pos, neg, score="dot", k=1)
    assert dot["link_auc"] == pytest.approx((2.5 + 2) / 6)  # 2 ties 2 and beats 0, -1; 1 beats 0, -1
    assert dot["link_hits_at_1"] == 0.0  # nothing strictly above 2
    with pytest.raises(ValueError, match="score"):
        link_prediction(embeddings, pos, neg, score="l2")
    with pytest.raises(ValueError, match="node ids"):
        link_prediction(embeddings, torch.tensor([[0], [5]]), neg)
