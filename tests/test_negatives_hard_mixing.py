"""mochi_negatives: convex mixtures of the top-N hardest queue entries, unit norm, harder, no gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastkit.negatives.hard_mixing import mochi_negatives


def _data(batch=5, size=40, dim=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    query = F.normalize(torch.randn(batch, dim, generator=generator, dtype=torch.float64), dim=1)
    queue = F.normalize(torch.randn(size, dim, generator=generator, dtype=torch.float64), dim=1)
    return query, queue


def _two_term_fit(target, a, b):
    """Least-squares (x, y) with target ~ x a + y b, and the residual norm."""
    basis = torch.stack([a, b], dim=1)
    coef = torch.linalg.lstsq(basis, target.unsqueeze(1)).solution.squeeze(1)
    return coef, float((basis @ coef - target).norm())


def test_shape_unit_norm_and_no_gradient():
    query, queue = _data()
    query.requires_grad_(True)
    out = mochi_negatives(query, queue, num_hardest=8, num_mixed=6, num_query_mixed=3)
    assert out.shape == (5, 9, 12)
    assert torch.allclose(out.norm(dim=2), torch.ones(5, 9, dtype=out.dtype))
    assert not out.requires_grad and out.grad_fn is None


def test_mixtures_are_convex_combinations_of_two_of_the_hardest():
    query, queue = _data()
    hardest = 6
    out = mochi_negatives(query, queue, num_hardest=hardest, num_mixed=10, num_query_mixed=0,
                          generator=torch.Generator().manual_seed(1))
    # Only pairs from the top N are tried: a mix with any other queue entry (12-d random
    # vectors) would lie outside every such span and fail the existence assertion.
    top = (query @ queue.T).topk(hardest, dim=1).indices
    for row in range(query.shape[0]):
        for h in out[row]:
            best = None
            for i in top[row]:
                for j in top[row]:
                    if i == j:
                        # both picks equal: h is that entry itself
                        if torch.allclose(h, queue[i], atol=1e-9):
                            best = (1.0, 0.0)
                        continue
                    coef, residual = _two_term_fit(h, queue[i], queue[j])
                    if residual < 1e-9 and (coef >= -1e-9).all():
                        # solve for alpha: h ~ alpha n_i + (1 - alpha) n_j up to the normalisation
                        alpha = float(coef[0] / coef.sum())
                        best = (alpha, 1 - alpha)
            assert best is not None, "a synthetic negative is not a convex mix of two top-N entries"
            assert -1e-9 <= best[0] <= 1 + 1e-9


def test_query_mixtures_put_less_than_half_on_the_query():
    query, queue = _data()
    hardest = 5
    out = mochi_negatives(query, queue, num_hardest=hardest, num_mixed=0, num_query_mixed=12,
                          generator=torch.Generator().manual_seed(2))
    top = (query @ queue.T).topk(hardest, dim=1).indices
    for row in range(query.shape[0]):
        for h in out[row]:
            fits = [_two_term_fit(h, query[row], queue[j]) for j in top[row]]
            coef, residual = min(fits, key=lambda f: f[1])
            assert residual < 1e-9
            beta = float(coef[0] / coef.sum())
            assert 0.0 <= beta < 0.5
            # hence q . h' < 1 (the mixture is not the query)
            assert float(query[row] @ h) < 1 - 1e-6


def test_synthetic_negatives_are_harder_than_the_queue_on_average():
    query, queue = _data(batch=8, size=256, dim=16)
    out = mochi_negatives(query, queue, num_hardest=16, num_mixed=32, num_query_mixed=8,
                          generator=torch.Generator().manual_seed(3))
    sim_queue = (query @ queue.T).mean()
    sim_mixed = torch.einsum("bd,bsd->bs", query, out[:, :32]).mean()
    sim_query_mixed = torch.einsum("bd,bsd->bs", query, out[:, 32:])
    assert sim_mixed > sim_queue + 0.2
    assert (sim_query_mixed < 1).all() and sim_query_mixed.mean() > sim_mixed


def test_generator_makes_draws_reproducible_and_the_global_rng_is_untouched():
    query, queue = _data()
    state = torch.get_rng_state()
    a = mochi_negatives(query, queue, num_hardest=8, num_mixed=4, num_query_mixed=2,
                        generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), state)
    b = mochi_negatives(query, queue, num_hardest=8, num_mixed=4, num_query_mixed=2,
                        generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_num_hardest_is_capped_by_the_queue_and_zero_counts_give_an_empty_tensor():
    query, queue = _data(size=3)
    out = mochi_negatives(query, queue, num_hardest=100, num_mixed=4, num_query_mixed=0)
    assert out.shape == (5, 4, 12)
    assert mochi_negatives(query, queue, num_hardest=2, num_mixed=0, num_query_mixed=0).shape == (5, 0, 12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_hardest": 0, "num_mixed": 1, "num_query_mixed": 1}, "num_hardest"),
        ({"num_hardest": 2, "num_mixed": -1, "num_query_mixed": 1}, "num_mixed"),
    ],
)
def test_bad_counts_raise(kwargs, match):
    query, queue = _data()
    with pytest.raises(ValueError, match=match):
        mochi_negatives(query, queue, **kwargs)


def test_bad_shapes_raise():
    query, queue = _data()
    with pytest.raises(ValueError, match="feature size"):
        mochi_negatives(query, queue[:, :5], num_hardest=2, num_mixed=1, num_query_mixed=1)
    with pytest.raises(ValueError, match="at least 1 rows"):
        mochi_negatives(query, queue[:0], num_hardest=2, num_mixed=1, num_query_mixed=1)
