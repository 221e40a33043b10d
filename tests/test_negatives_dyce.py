"""DyCE memory: balanced Sinkhorn-Knopp, FIFO writes, clustering, prototypes, neighbours, state."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.negatives.dyce import DyCEMemory, balanced_assignment, spherical_kmeans


def _loop_sinkhorn_knopp(scores, epsilon, iterations):
    """SwAV's Sinkhorn-Knopp written out with Python loops (float64)."""
    batch, partitions = len(scores), len(scores[0])
    q = [[math.exp(scores[b][p] / epsilon) for p in range(partitions)] for b in range(batch)]
    total = sum(sum(row) for row in q)
    q = [[x / total for x in row] for row in q]
    for _ in range(iterations):
        for p in range(partitions):
            column = sum(q[b][p] for b in range(batch))
            for b in range(batch):
                q[b][p] /= column * partitions
        for b in range(batch):
            row = sum(q[b])
            q[b] = [x / (row * batch) for x in q[b]]
    return torch.tensor([[x * batch for x in row] for row in q], dtype=torch.float64)


def _clustered(partitions: int = 4, per: int = 16, dim: int = 8, seed: int = 0):
    # Orthogonal directions (the same for every seed): groups far apart on the sphere, where
    # the memory normalises; `seed` draws the noise only.
    centres = torch.linalg.qr(torch.randn(dim, dim, generator=torch.Generator().manual_seed(0)))[0][:partitions] * 5
    generator = torch.Generator().manual_seed(seed)
    return centres.repeat(per, 1) + 0.3 * torch.randn(partitions * per, dim, generator=generator)


def test_balanced_assignment_matches_the_loop_reference():
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(6, 3, generator=generator, dtype=torch.float64) * 2 - 1
    expected = _loop_sinkhorn_knopp(scores.tolist(), 0.1, 5)
    assert torch.allclose(balanced_assignment(scores, epsilon=0.1, iterations=5).double(), expected, atol=1e-5)


def test_balanced_assignment_equipartitions_a_skewed_batch():
    generator = torch.Generator().manual_seed(1)
    # Every sample is most similar to partition 0: plain argmax puts the whole batch there.
    scores = 0.1 * torch.rand(40, 4, generator=generator)
    scores[:, 0] += 0.5
    assert torch.bincount(scores.argmax(1), minlength=4).tolist() == [40, 0, 0, 0]
    plan = balanced_assignment(scores, epsilon=0.05, iterations=200)
    assert torch.allclose(plan.sum(1), torch.ones(40), atol=1e-5)  # each sample distributes mass 1
    assert torch.allclose(plan.sum(0), torch.full((4,), 10.0), atol=1e-2)  # each partition B / P
    counts = torch.bincount(plan.argmax(1), minlength=4)
    assert counts.min() >= 8 and counts.max() <= 12  # hard labels balanced too


def test_memory_writes_in_fifo_order_and_wraps_around():
    memory = DyCEMemory(size=10, dim=2, num_partitions=2, k=1)
    rows = torch.arange(14, dtype=torch.float32).unsqueeze(1).repeat(1, 2) + 1
    memory.update(rows[:4])
    assert len(memory) == 4 and int(memory.ptr) == 4 and not memory.is_clustered
    assert torch.equal(memory.stored(), rows[:4])
    memory.update(rows[4:8])
    assert (memory.labels[:8] == -1).all()
    memory.update(rows[8:10])  # now full: clustered once
    assert memory.is_clustered and int(memory.ptr) == 0
    memory.update(rows[10:14])  # overwrites the 4 oldest rows
    assert torch.equal(memory.bank, torch.cat([rows[10:14], rows[4:10]]))
    assert len(memory) == 10 and int(memory.ptr) == 4


def test_first_fill_clusters_with_kmeans_and_prototypes_are_partition_means():
    data = _clustered()
    memory = DyCEMemory(size=64, dim=8, num_partitions=4, k=3)
    memory.update(data[:32])
    assert not memory.is_clustered
    memory.update(data[32:], generator=torch.Generator().manual_seed(0))
    assert memory.is_clustered
    # The four well-separated groups are recovered (one label per group).
    groups = torch.arange(64) % 4
    for group in range(4):
        assert memory.labels[groups == group].unique().numel() == 1
    assert memory.labels.unique().numel() == 4
    normalised = F.normalize(memory.bank, dim=1)
    for p in range(4):
        assert torch.allclose(memory.prototypes[p], normalised[memory.labels == p].mean(0), atol=1e-5)


def test_clustered_updates_assign_balanced_labels_and_recompute_prototypes():
    data = _clustered()
    memory = DyCEMemory(size=64, dim=8, num_partitions=4, k=3, sinkhorn_iterations=50)
    memory.update(data, generator=torch.Generator().manual_seed(0))
    incoming = _clustered(per=4, seed=1)  # 4 per group, a batch of 16 written at rows 0-15
    expected_labels = memory.assign(incoming)
    memory.update(incoming)
    assert torch.equal(memory.labels[:16], expected_labels)
    assert torch.bincount(expected_labels, minlength=4).tolist() == [4, 4, 4, 4]
    normalised = F.normalize(memory.bank, dim=1)
    for p in range(4):
        assert torch.allclose(memory.prototypes[p], normalised[memory.labels == p].mean(0), atol=1e-5)


def test_neighbours_are_the_true_k_nearest_inside_the_nearest_partition():
    data = _clustered(partitions=4, per=16)
    memory = DyCEMemory(size=64, dim=8, num_partitions=4, k=5)
    memory.update(data, generator=torch.Generator().manual_seed(0))
    queries = torch.randn(6, 8, generator=torch.Generator().manual_seed(3))
    indices = memory.neighbour_indices(queries)
    neighbours = memory.enhance(queries)
    assert neighbours.shape == (6, 5, 8) and not neighbours.requires_grad
    partitions = memory.nearest_partition(queries)
    bank = memory.bank
    for i in range(6):
        # Brute force: cosine similarity to every row of the same partition, sorted.
        q = queries[i] / queries[i].norm()
        candidates = [(float(q @ (bank[j] / bank[j].norm())), j) for j in range(64)
                      if int(memory.labels[j]) == int(partitions[i])]
        best = [j for _, j in sorted(candidates, reverse=True)[:5]]
        assert indices[i].tolist() == best
        assert torch.equal(neighbours[i], bank[best])
        assert (memory.labels[indices[i]] == partitions[i]).all()


def test_small_partitions_fall_back_to_the_whole_memory():
    memory = DyCEMemory(size=8, dim=2, num_partitions=2, k=3)
    memory.update(torch.randn(8, 2), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # force partition 1 to hold a single row
        memory.labels.fill_(0)
        memory.labels[0] = 1
        memory.prototypes.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    query = torch.tensor([[0.0, 1.0]])  # nearest prototype: partition 1 (only 1 < k rows)
    similarity = F.normalize(query, dim=1) @ F.normalize(memory.bank, dim=1).T
    assert memory.neighbour_indices(query).tolist() == similarity.topk(3, dim=1).indices.tolist()


def test_state_dict_round_trip_and_errors():
    data = _clustered()
    memory = DyCEMemory(size=64, dim=8, num_partitions=4, k=3)
    memory.update(data[:40])
    with pytest.raises(ValueError, match="clustered"):
        memory.assign(data[:2])
    memory.update(data[40:], generator=torch.Generator().manual_seed(0))
    restored = DyCEMemory(size=64, dim=8, num_partitions=4, k=3)
    restored.load_state_dict(memory.state_dict())
    assert restored.is_clustered and len(restored) == 64
    queries = torch.randn(5, 8)
    assert torch.equal(restored.enhance(queries), memory.enhance(queries))
    empty = DyCEMemory(size=16, dim=8, num_partitions=2, k=5)
    empty.update(torch.randn(4, 8))
    with pytest.raises(ValueError, match="at least k=5 stored rows"):
        empty.enhance(torch.randn(2, 8))
    with pytest.raises(ValueError, match="feature size D=8"):
        empty.update(torch.randn(2, 3))
    with pytest.raises(ValueError, match="at most size=16"):
        empty.update(torch.randn(17, 8))


def test_spherical_kmeans_separates_groups():
    data = _clustered(partitions=3, per=10, seed=2)
    labels, centres = spherical_kmeans(data, 3, generator=torch.Generator().manual_seed(0))
    assert centres.shape == (3, 8)
    for group in range(3):
        assert labels[torch.arange(30) % 3 == group].unique().numel() == 1
