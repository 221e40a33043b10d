"""Tests for LightGCL's rank-q randomized SVD: near the best rank-q error (Eckart-Young), seeded."""

import pytest
import torch

from contrastkit.functional.low_rank import LowRank, low_rank_factors
from contrastkit.utils.graph_index import normalized_bipartite_adjacency


def test_low_rank_factors_near_best_rank_q_error():
    generator = torch.Generator().manual_seed(0)
    users, items, rank = 90, 60, 5
    signal = torch.rand(users, 3, generator=generator) @ torch.rand(3, items, generator=generator)
    pairs = torch.nonzero(torch.rand(users, items, generator=generator) < 0.3 * signal).t()
    indices, values, shape = normalized_bipartite_adjacency(pairs, users, items)
    dense = torch.zeros(shape).index_put_((indices[0], indices[1]), values)
    before = torch.get_rng_state()
    factors = low_rank_factors(indices, values, shape, rank)
    assert torch.equal(torch.get_rng_state(), before)  # seeded without touching the caller's RNG
    assert isinstance(factors, LowRank)
    u, s, v = factors
    assert u.shape == (users, rank) and s.shape == (rank,) and v.shape == (items, rank)
    exact = torch.linalg.svdvals(dense)
    best_error = exact[rank:].square().sum().sqrt()
    error = torch.linalg.matrix_norm(dense - (u * s) @ v.t())
    assert error <= 1.05 * best_error  # Eckart-Young: nothing of rank q does better than best_error
    assert torch.equal(low_rank_factors(indices, values, shape, rank).s, s)  # same seed, same factors
    u, s, v = low_rank_factors(indices, values, shape, rank, oversample=10)
    assert torch.linalg.matrix_norm(dense - (u * s) @ v.t()) <= 1.01 * best_error
    assert torch.allclose(s, exact[:rank], rtol=0.02)
    with pytest.raises(ValueError, match="rank"):
        low_rank_factors(indices, values, shape, 61)
    with pytest.raises(ValueError, match="inside the shape"):
        low_rank_factors(indices, values, (10, 10), 2)
