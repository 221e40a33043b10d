"""multiple_negatives_ranking against a per-row loop (value and gradients, float64)."""

import math

import pytest
import torch

from contrastkit.functional.ranking import multiple_negatives_ranking


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum() / (a.norm() * b.norm())


def _naive_row(query, candidates, target, scale, weights_row):
    """-log(w_t exp(l_t) / sum_j w_j exp(l_j)) for one query, by hand."""
    terms = []
    for j in range(candidates.shape[0]):
        weight = 1.0 if weights_row is None else float(weights_row[j])
        if weight > 0:
            terms.append(math.log(weight) + scale * _cosine(query, candidates[j]))
        if j == target:
            numerator = math.log(weight) + scale * _cosine(query, candidates[j])
    return -(numerator - torch.logsumexp(torch.stack(terms), dim=0))


def _naive_mnrl(anchor, positive, hard, scale, symmetric, weights):
    batch = anchor.shape[0]
    candidates = positive if hard is None else torch.cat([positive, hard])
    rows = []
    for i in range(batch):
        forward = _naive_row(anchor[i], candidates, i, scale, None if weights is None else weights[i])
        if symmetric:
            column = None if weights is None else weights[:batch, i]
            backward = _naive_row(positive[i], anchor, i, scale, column)
            rows.append((forward + backward) / 2)
        else:
            rows.append(forward)
    return torch.stack(rows)


def _inputs(batch=6, dim=5, hard=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    make = lambda n: torch.randn(n, dim, generator=generator, dtype=torch.float64, requires_grad=True)
    return make(batch), make(batch), (make(hard) if hard else None)


@pytest.mark.parametrize("hard", [0, 4])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("use_weights", [False, True])
@pytest.mark.parametrize("chunk_size", ["auto", None, 2])
def test_matches_naive_loop(hard, symmetric, use_weights, chunk_size):
    anchor, positive, hard_negatives = _inputs(hard=hard)
    batch = anchor.shape[0]
    weights = None
    if use_weights:
        generator = torch.Generator().manual_seed(1)
        weights = torch.rand(batch, batch + hard, generator=generator, dtype=torch.float64) + 0.2
        weights[torch.rand(batch, batch + hard, generator=generator) < 0.3] = 0.0  # drop some columns
        weights.fill_diagonal_(1.0)  # the positive must keep a weight
    scale = 7.0
    got = multiple_negatives_ranking(
        anchor, positive, hard_negatives, scale=scale, symmetric=symmetric, weights=weights,
        reduction="none", chunk_size=chunk_size,
    )
    expected = _naive_mnrl(anchor, positive, hard_negatives, scale, symmetric, weights)
    torch.testing.assert_close(got, expected)
    tensors = [t for t in (anchor, positive, hard_negatives) if t is not None]
    probe = torch.linspace(0.5, 1.5, batch, dtype=torch.float64)  # distinct row weights: catches row mix-ups
    grads = torch.autograd.grad((got * probe).sum(), tensors)
    expected_grads = torch.autograd.grad((expected * probe).sum(), tensors)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)


def test_every_anchor_sees_every_hard_negative():
    anchor, positive, _ = _inputs(batch=3, hard=0)
    # A hard negative equal to anchor 0 raises the loss of anchor 0 only if it is in row 0's denominator;
    # one equal to anchor 2 must likewise raise row 2's loss.
    hard = torch.stack([anchor[0].detach(), anchor[2].detach()])
    base = multiple_negatives_ranking(anchor, positive, reduction="none")
    with_hard = multiple_negatives_ranking(anchor, positive, hard, reduction="none")
    assert (with_hard > base).all()


def test_mean_and_sum_reductions():
    anchor, positive, hard = _inputs()
    rows = multiple_negatives_ranking(anchor, positive, hard, reduction="none")
    torch.testing.assert_close(multiple_negatives_ranking(anchor, positive, hard), rows.mean())
    torch.testing.assert_close(multiple_negatives_ranking(anchor, positive, hard, reduction="sum"), rows.sum())


def test_learnable_scale_gets_gradient():
    anchor, positive, hard = _inputs()
    scale = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
    multiple_negatives_ranking(anchor, positive, hard, scale=scale).backward()
    assert scale.grad is not None and scale.grad.abs() > 0


def test_bad_input():
    anchor, positive, hard = _inputs()
    with pytest.raises(ValueError, match="scale"):
        multiple_negatives_ranking(anchor, positive, scale=0.0)
    with pytest.raises(ValueError, match="positive"):
        multiple_negatives_ranking(anchor, positive[:3])
    with pytest.raises(ValueError, match="hard_negatives"):
        multiple_negatives_ranking(anchor, positive, torch.randn(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="weights"):
        multiple_negatives_ranking(anchor, positive, hard, weights=torch.ones(6, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="reduction"):
        multiple_negatives_ranking(anchor, positive, reduction="max")
