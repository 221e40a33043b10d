"""KNNDetector: loop reference for the vote and its tie rule, toy clusters, TFIA."""

import pytest
import torch
import torch.nn.functional as F

from contrastkit.eval.knn_detection import KNNDetector


def _naive_predict(database, labels, queries, k):
    database, queries = F.normalize(database, dim=1), F.normalize(queries, dim=1)
    predictions = []
    for query in queries:
        similarity = [float(query @ row) for row in database]
        order = sorted(range(len(similarity)), key=lambda j: -similarity[j])[:k]
        counts: dict[int, int] = {}
        for j in order:
            counts[int(labels[j])] = counts.get(int(labels[j]), 0) + 1
        best = max(counts.values())
        # Tie: the label of the nearest neighbour among the tied labels.
        predictions.append(next(int(labels[j]) for j in order if counts[int(labels[j])] == best))
    return torch.tensor(predictions)


def _clusters(centres, per_cluster, generator, spread=0.3):
    points = torch.cat([centre + spread * torch.randn(per_cluster, centre.shape[0], generator=generator) for centre in centres])
    labels = torch.arange(len(centres)).repeat_interleave(per_cluster)
    return points, labels


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_matches_naive_vote_with_ties(k):
    generator = torch.Generator().manual_seed(0)
    database = torch.randn(40, 5, generator=generator)
    labels = torch.randint(0, 4, (40,), generator=generator)
    queries = torch.randn(30, 5, generator=generator)
    detector = KNNDetector(k=k, chunk_size=7).fit(database, labels)  # small chunks: several blocks
    assert torch.equal(detector.predict(queries), _naive_predict(database, labels, queries, k))


def test_tie_goes_to_nearest_neighbour_label():
    database = torch.tensor([[1.0, 0.0], [0.9, 0.5], [0.0, 1.0], [-1.0, 0.2]])
    labels = torch.tensor([3, 1, 1, 3])
    query = torch.tensor([[1.0, 0.1]])
    # k=2: one vote each for 3 (nearest) and 1 -> 3; k=1 -> 3; k=3: two votes for 1 -> 1.
    assert KNNDetector(k=2).fit(database, labels).predict(query).tolist() == [3]
    assert KNNDetector(k=3).fit(database, labels).predict(query).tolist() == [1]


def test_toy_clusters():
    generator = torch.Generator().manual_seed(1)
    centres = torch.eye(6)[:3] * 3
    train, train_labels = _clusters(centres, 30, generator)
    test, test_labels = _clusters(centres, 20, generator)
    detector = KNNDetector(k=10).fit(train, train_labels)
    assert detector.score(test, test_labels) == 1.0
    # Shuffled database labels break it: the score measures the neighbours, not the queries.
    shuffled = train_labels[torch.randperm(len(train_labels), generator=generator)]
    assert KNNDetector(k=10).fit(train, shuffled).score(test, test_labels) < 0.7


def test_tfia_new_source_recognised_after_add_without_refit():
    generator = torch.Generator().manual_seed(2)
    centres = torch.eye(6)[:4] * 3
    train, train_labels = _clusters(centres[:3], 30, generator)
    new_source, new_labels = _clusters(centres[3:], 30, generator)  # label 3, unseen at fit
    queries, query_labels = _clusters(centres[3:], 20, generator)
    query_labels = query_labels + 3
    detector = KNNDetector(k=10).fit(train, train_labels)
    assert detector.score(queries, query_labels) == 0.0
    detector.add(new_source, new_labels + 3)
    assert len(detector) == 120
    assert detector.score(queries, query_labels) == 1.0
    # The old sources are still recognised.
    old_queries, old_labels = _clusters(centres[:3], 10, generator)
    assert detector.score(old_queries, old_labels) == 1.0


def test_inner_product_mode_uses_magnitude():
    database = torch.tensor([[1.0, 0.0], [10.0, 1.0]])
    labels = torch.tensor([0, 1])
    query = torch.tensor([[1.0, 0.0]])
    assert KNNDetector(k=1).fit(database, labels).predict(query).tolist() == [0]  # cosine: same direction
    assert KNNDetector(k=1, normalize=False).fit(database, labels).predict(query).tolist() == [1]  # dot: 10 > 1


def test_bad_input():
    with pytest.raises(ValueError, match="k"):
        KNNDetector(k=0)
    detector = KNNDetector(k=3)
    with pytest.raises(ValueError, match="fit"):
        detector.predict(torch.randn(2, 4))
    with pytest.raises(ValueError, match="labels"):
        detector.fit(torch.randn(5, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="labels"):
        detector.fit(torch.randn(3, 4), torch.tensor([0.0, 1.0, 2.0]))
    detector.fit(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match="feature size"):
        detector.add(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="feature size"):
        detector.predict(torch.randn(2, 3))
