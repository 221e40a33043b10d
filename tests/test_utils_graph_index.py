"""Tests for the graph index utilities: LightGCN/LightGCL's normalised bipartite adjacency against a loop."""

import math

import pytest
import torch

from contrastkit.utils.graph_index import normalized_bipartite_adjacency


def test_normalized_bipartite_adjacency_matches_a_loop():
    pairs = torch.tensor([[0, 0, 1, 2, 2, 2, 0], [1, 3, 1, 0, 1, 3, 1]])  # (0, 1) twice
    indices, values, shape = normalized_bipartite_adjacency(pairs, 4, 5)
    assert shape == (4, 5)
    unique = sorted(set(zip(pairs[0].tolist(), pairs[1].tolist())))
    row_degree = {r: sum(1 for a, _ in unique if a == r) for r, _ in unique}
    col_degree = {c: sum(1 for _, b in unique if b == c) for _, c in unique}
    assert list(zip(indices[0].tolist(), indices[1].tolist())) == unique
    expected = torch.tensor([1 / math.sqrt(row_degree[r] * col_degree[c]) for r, c in unique])
    assert torch.allclose(values, expected)
    with pytest.raises(ValueError, match="columns"):
        normalized_bipartite_adjacency(pairs, 4, 3)
