import math

import pytest
import torch

from contrastkit.eval import knn_accuracy, knn_scores


def reference_predictions(train, train_labels, test, k, temperature, num_classes):
    """A slow, obvious per-query loop of the InstDisc weighted kNN."""
    predictions, top5 = [], []
    train_n = [row / row.norm() for row in train]
    for query in test:
        query = query / query.norm()
        similarities = [float(query @ row) for row in train_n]
        order = sorted(range(len(similarities)), key=lambda j: -similarities[j])[:k]
        votes = [0.0] * num_classes
        for j in order:
            votes[int(train_labels[j])] += math.exp(similarities[j] / temperature)
        predictions.append(max(range(num_classes), key=lambda c: votes[c]))
        # rank of each class: how many other classes have at least its votes (ties count against)
        top5.append([c for c in range(num_classes) if sum(votes[o] >= votes[c] for o in range(num_classes)) - 1 < 5])
    return predictions, top5


@pytest.mark.parametrize("k,temperature,chunk_size", [(1, 0.1, 7), (10, 0.1, 1024), (25, 0.5, 16), (200, 0.07, 5)])
def test_knn_matches_per_query_loop(k, temperature, chunk_size):
    generator = torch.Generator().manual_seed(k)
    train = torch.randn(120, 6, generator=generator)
    train_labels = torch.randint(0, 7, (120,), generator=generator)
    test = torch.randn(45, 6, generator=generator)
    test_labels = torch.randint(0, 7, (45,), generator=generator)
    scores = knn_scores(train, train_labels, test, k=k, temperature=temperature, num_classes=7, chunk_size=chunk_size)
    expected, expected_top5 = reference_predictions(train, train_labels, test, min(k, 120), temperature, 7)
    assert scores.argmax(dim=1).tolist() == expected
    result = knn_accuracy(train, train_labels, test, test_labels, k=k, temperature=temperature, chunk_size=chunk_size)
    top1 = sum(p == int(y) for p, y in zip(expected, test_labels)) / 45
    top5 = sum(int(y) in ranked for ranked, y in zip(expected_top5, test_labels)) / 45
    assert result["knn_top1"] == pytest.approx(top1)
    assert result["knn_top5"] == pytest.approx(top5)


def test_k_larger_than_train_set_is_clamped():
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(9, 4, generator=generator)
    labels = torch.randint(0, 3, (9,), generator=generator)
    test = torch.randn(5, 4, generator=generator)
    big = knn_scores(train, labels, test, k=200)
    exact = knn_scores(train, labels, test, k=9)
    assert torch.equal(big, exact)


def test_perfect_features_score_one_and_no_top5_under_5_classes():
    centres = torch.eye(4) * 10
    labels = torch.arange(4).repeat_interleave(10)
    train = centres[labels] + 0.1 * torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    result = knn_accuracy(train, labels, centres[labels], labels, k=20)
    assert result == {"knn_top1": 1.0}


def test_small_temperature_does_not_overflow():
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(50, 8, generator=generator)
    labels = torch.randint(0, 5, (50,), generator=generator)
    scores = knn_scores(train, labels, train, k=10, temperature=1e-3)
    assert torch.isfinite(scores).all()
    assert torch.equal(scores.argmax(dim=1), labels)  # nearest neighbour of a train row is itself


def test_knn_input_errors():
    train, labels = torch.randn(10, 4), torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="k >= 1"):
        knn_accuracy(train, labels, train, labels, k=0)
    with pytest.raises(ValueError, match="temperature"):
        knn_accuracy(train, labels, train, labels, temperature=0)
    with pytest.raises(ValueError, match="D=4"):
        knn_accuracy(train, labels, torch.randn(3, 5), labels[:3])
    with pytest.raises(ValueError, match="labels"):
        knn_accuracy(train, labels[:9], train, labels)
    bad = train.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        knn_accuracy(bad, labels, train, labels)
