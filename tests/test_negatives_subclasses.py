"""Balanced k-means subclass labels (SBCL): balanced sizes, cluster counts, cluster quality."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.negatives.subclasses import (
    balanced_kmeans,
    subclass_counts,
    subclass_labels,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("n,m", [(10, 3), (37, 5), (8, 8), (50, 7)])
def test_balanced_kmeans_sizes_differ_by_at_most_one(n: int, m: int) -> None:
    ids = balanced_kmeans(torch.randn(n, 6, generator=_gen(n)), m, generator=_gen(1))
    sizes = torch.bincount(ids, minlength=m)
    assert ids.shape == (n,) and int(ids.min()) >= 0 and int(ids.max()) < m
    assert int(sizes.sum()) == n
    assert int(sizes.max() - sizes.min()) <= 1


def test_balanced_kmeans_recovers_equal_sized_directions() -> None:
    # Four tight, equal-sized groups around orthogonal directions: the clustering must be exact.
    centers = torch.eye(8)[:4] * 5
    x = centers.repeat_interleave(6, dim=0) + 0.05 * torch.randn(24, 8, generator=_gen(3))
    truth = torch.arange(4).repeat_interleave(6)
    ids = balanced_kmeans(x, 4, generator=_gen(4))
    for group in range(4):
        assert torch.unique(ids[truth == group]).numel() == 1
    assert torch.unique(ids).numel() == 4


def test_balanced_kmeans_capacity_overrides_nearest_centre() -> None:
    # 6 points near one direction, 2 near another, 2 clusters: balance forces a 4/4 split,
    # which plain k-means (6/2) would not give.
    x = torch.cat([torch.tensor([[1.0, 0.0]]).repeat(6, 1), torch.tensor([[0.0, 1.0]]).repeat(2, 1)])
    x = x + 0.01 * torch.randn(8, 2, generator=_gen(5))
    ids = balanced_kmeans(x, 2, generator=_gen(6))
    assert torch.bincount(ids).tolist() == [4, 4]
    # The two far points share a cluster.
    assert ids[6] == ids[7]


def test_balanced_kmeans_objective_beats_random_balanced_split() -> None:
    x = F.normalize(torch.randn(60, 5, generator=_gen(7)), dim=1)
    ids = balanced_kmeans(x, 6, generator=_gen(8))

    def cost(assign: torch.Tensor) -> float:
        centers = F.normalize(torch.zeros(6, 5).index_add_(0, assign, x), dim=1)
        return float((1 - (x * centers[assign]).sum(1)).sum())

    random_split = torch.arange(60) % 6
    random_split = random_split[torch.randperm(60, generator=_gen(9))]
    assert cost(ids) < cost(random_split)


def test_subclass_counts_is_ceil_of_ratio() -> None:
    sizes = torch.tensor([1000, 599, 10, 25])
    assert subclass_counts(sizes).tolist() == [100, 60, 1, 3]
    assert subclass_counts(sizes, 50).tolist() == [20, 12, 1, 1]
    with pytest.raises(ValueError, match="subclass_size"):
        subclass_counts(sizes, 0)


def test_subclass_labels_counts_balance_and_unique_ids() -> None:
    sizes = {0: 23, 1: 10, 2: 7, 3: 15}  # n_tail = 7 -> M = 4, 2, 1, 3
    labels = torch.cat([torch.full((n,), c) for c, n in sizes.items()])
    labels = labels[torch.randperm(labels.numel(), generator=_gen(10))]
    x = torch.randn(labels.numel(), 4, generator=_gen(11))
    sub = subclass_labels(x, labels, generator=_gen(12))
    total = 0
    for c, n in sizes.items():
        ids = sub[labels == c]
        m = math.ceil(n / 7)
        assert torch.unique(ids).numel() == m
        counts = torch.unique(ids, return_counts=True)[1]
        assert int(counts.max() - counts.min()) <= 1
        total += m
    # Globally unique ids: no subclass is shared between classes, and ids are 0..total-1.
    assert sorted(torch.unique(sub).tolist()) == list(range(total))
    for s in torch.unique(sub):
        assert torch.unique(labels[sub == s]).numel() == 1


def test_subclass_labels_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="labels"):
        subclass_labels(torch.randn(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        subclass_labels(torch.randn(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="num_clusters"):
        balanced_kmeans(torch.randn(3, 2), 4)
