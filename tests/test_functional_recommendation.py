"""Recommendation objectives against per-row Python loops (values and gradients, float64)."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.functional.recommendation import (
    bpr_loss,
    lightgcl_loss,
    mclrec_meta_loss,
    mclrec_regularizer,
    simgcl_perturb,
)


def _leaf(*shape, seed=0, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).requires_grad_()


def _grads(loss, tensors):
    return torch.autograd.grad(loss, tensors)


# ---------------------------------------------------------------- BPR


def _naive_bpr(user, positive, negative):
    terms = []
    for b in range(user.shape[0]):
        difference = sum(user[b, d] * positive[b, d] - user[b, d] * negative[b, d] for d in range(user.shape[1]))
        terms.append(-torch.log(1.0 / (1.0 + torch.exp(-difference))))
    return torch.stack(terms)


def test_bpr_matches_loop():
    user, positive, negative = _leaf(6, 4, seed=0), _leaf(6, 4, seed=1), _leaf(6, 4, seed=2)
    got, expected = bpr_loss(user, positive, negative), _naive_bpr(user, positive, negative).mean()
    torch.testing.assert_close(got, expected)
    for a, b in zip(_grads(got, (user, positive, negative)), _grads(expected, (user, positive, negative))):
        torch.testing.assert_close(a, b)
    rows = _naive_bpr(user, positive, negative)
    torch.testing.assert_close(bpr_loss(user, positive, negative, reduction="none"), rows)
    torch.testing.assert_close(bpr_loss(user, positive, negative, reduction="sum"), rows.sum())


def test_bpr_is_stable_for_large_margins():
    user = torch.full((1, 1), 100.0)
    assert float(bpr_loss(user, torch.full((1, 1), -10.0), torch.full((1, 1), 10.0))) == pytest.approx(2000.0)
    assert float(bpr_loss(user, torch.full((1, 1), 10.0), torch.full((1, 1), -10.0))) == 0.0


def test_bpr_rejects_bad_shapes():
    with pytest.raises(ValueError, match="negative"):
        bpr_loss(torch.randn(3, 4), torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="reduction"):
        bpr_loss(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4), reduction="max")


# ---------------------------------------------------------------- SimGCL noise


def test_simgcl_perturb_is_an_eps_step_inside_the_orthant():
    e = _leaf(50, 8, seed=3)
    generator = torch.Generator().manual_seed(0)
    perturbed = simgcl_perturb(e, 0.1, generator=generator)
    torch.testing.assert_close((perturbed - e).norm(dim=1), torch.full((50,), 0.1, dtype=torch.float64))
    assert torch.equal(torch.sign(perturbed), torch.sign(e))  # same hyper-octant
    assert bool(((perturbed - e) * torch.sign(e) >= 0).all())  # noise points away from the origin per axis
    again = simgcl_perturb(e, 0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, perturbed)
    assert not torch.equal(simgcl_perturb(e, 0.1, generator=torch.Generator().manual_seed(1)), perturbed)
    assert torch.equal(simgcl_perturb(e, 0.0), e)
    (gradient,) = _grads(perturbed.sum(), (e,))
    torch.testing.assert_close(gradient, torch.ones_like(e))  # the noise is a constant shift


def test_simgcl_perturb_uses_the_global_rng_by_default():
    e = torch.randn(4, 3)
    torch.manual_seed(5)
    first = simgcl_perturb(e, 0.2)
    torch.manual_seed(5)
    assert torch.equal(simgcl_perturb(e, 0.2), first)
    with pytest.raises(ValueError, match="eps"):
        simgcl_perturb(e, -0.1)


# ---------------------------------------------------------------- LightGCL


def _naive_lightgcl(g_u, e_u, g_i, e_i, users, items, tau):
    def side(g, e, ids):
        positives, negatives = [], []
        for a in ids.tolist():
            positive = sum(g[a, d] * e[a, d] for d in range(g.shape[1])) / tau
            positives.append(torch.clamp(positive, -5.0, 5.0))
            negatives.append(torch.log(sum(torch.exp(g[a] @ e[b] / tau) for b in range(e.shape[0]))))
        return -torch.stack(positives).mean() + torch.stack(negatives).mean()

    return side(g_u, e_u, users) + side(g_i, e_i, items)


@pytest.mark.parametrize("scale", [0.3, 2.0])  # 2.0: many positive terms hit the clip
def test_lightgcl_matches_loop(scale):
    g_u, e_u = _leaf(7, 4, seed=0, scale=scale), _leaf(7, 4, seed=1, scale=scale)
    g_i, e_i = _leaf(5, 4, seed=2, scale=scale), _leaf(5, 4, seed=3, scale=scale)
    users, items = torch.tensor([0, 3, 3, 6]), torch.tensor([1, 4, 0, 1, 2])  # duplicates count twice
    tensors = (g_u, e_u, g_i, e_i)
    got = lightgcl_loss(*tensors, users, items, temperature=0.2)
    expected = _naive_lightgcl(*tensors, users, items, 0.2)
    torch.testing.assert_close(got, expected)
    for a, b in zip(_grads(got, tensors), _grads(expected, tensors)):
        torch.testing.assert_close(a, b)


def test_lightgcl_clip_is_active_and_not_normalised():
    g_u, e_u, g_i, e_i = (_leaf(4, 3, seed=s, scale=3.0) for s in range(4))
    users, items = torch.tensor([0, 1]), torch.tensor([2, 3])
    positive_u = (g_u[users] * e_u[users]).sum(1) / 0.2
    assert bool((positive_u.abs() > 5).any())  # the clip matters for this draw

    def unclipped(g, e, ids):
        return torch.logsumexp(g[ids] @ e.T / 0.2, 1).mean() - ((g[ids] * e[ids]).sum(1) / 0.2).mean()

    loss = lightgcl_loss(g_u, e_u, g_i, e_i, users, items)
    assert not torch.allclose(loss, unclipped(g_u, e_u, users) + unclipped(g_i, e_i, items))
    # Scaling the inputs changes the loss: no L2 normalisation inside.
    assert not torch.allclose(loss, lightgcl_loss(2 * g_u, e_u, 2 * g_i, e_i, users, items))


def test_lightgcl_rejects_bad_inputs():
    g, e = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="e_u"):
        lightgcl_loss(g, torch.randn(5, 3), g, e, torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="users"):
        lightgcl_loss(g, e, g, e, torch.tensor([0.0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="temperature"):
        lightgcl_loss(g, e, g, e, torch.tensor([0]), torch.tensor([0]), temperature=0.0)


# ---------------------------------------------------------------- MCLRec


def _value(tensor):
    return tensor.item()


def _naive_regularizer(a, b, tau):
    z = torch.cat([a, b])
    n = a.shape[0]
    positive_terms, negative_terms = [], []
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        positive = (z[i] @ z[partner]) / tau
        negatives = [(z[i] @ z[j]) / tau for j in range(2 * n) if j not in (i, partner)]
        hardest = max(negatives, key=_value)
        margin_positive, margin_negative = min(positive, hardest, key=_value), max(positive, hardest, key=_value)
        positive_terms.append(torch.clamp(positive - margin_positive, min=0))
        negative_terms.extend(torch.clamp(margin_negative - negative, min=0) for negative in negatives)
    return torch.stack(positive_terms).mean() + torch.stack(negative_terms).mean()


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_mclrec_regularizer_matches_loop(tau):
    a, b = _leaf(5, 3, seed=0), _leaf(5, 3, seed=1)
    got, expected = mclrec_regularizer(a, b, tau), _naive_regularizer(a, b, tau)
    torch.testing.assert_close(got, expected)
    for x, y in zip(_grads(got, (a, b)), _grads(expected, (a, b))):
        torch.testing.assert_close(x, y)


def test_mclrec_regularizer_by_hand():
    # N = 2, D = 1: z = [1, 2, 1, -1]; rows 0/2 and 1/3 are the positive pairs.
    a, b = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [-1.0]])
    # row 0: s+ = 1, negatives {2, -1}, m = 2 -> margin 0, negatives (2-2 + 2+1)/2 = 1.5
    # row 1: s+ = -2, negatives {2, 2}, m = 2 -> margin 0, negatives 0
    # row 2: s+ = 1, negatives {1, -1} (with z1 = 2: 2, with z3 = -1: -1) -> m = 2 -> 0, (0 + 3)/2 = 1.5
    # row 3: s+ = -2, negatives {-1, -1}, m = -1 -> margin 0, negatives (-1+1 + -1+1)/2 = 0
    assert float(mclrec_regularizer(a, b)) == pytest.approx((0 + 0 + 0 + 0) / 4 + (1.5 + 0 + 1.5 + 0) / 4)
    # A copy of its source is penalised: s+ = |h|^2 far above every negative.
    h = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    assert float(mclrec_regularizer(h, h)) == pytest.approx(9.0 + 9.0)


def test_mclrec_meta_loss_composition():
    h_a, h_b, x_a, x_b = (_leaf(4, 3, seed=s) for s in range(4))
    plain = mclrec_meta_loss(h_a, h_b, x_a, x_b, regularizer_weight=0.0)

    def nt_xent_dot(x, y):
        z, n = torch.cat([x, y]), x.shape[0]
        rows = []
        for i in range(2 * n):
            logits = [z[i] @ z[j] for j in range(2 * n) if j != i]
            target = z[i] @ z[(i + n) % (2 * n)]
            rows.append(torch.logsumexp(torch.stack(logits), 0) - target)
        return torch.stack(rows).mean()

    expected = nt_xent_dot(h_a, x_b) + nt_xent_dot(h_b, x_a) + nt_xent_dot(x_a, x_b)
    torch.testing.assert_close(plain, expected)
    regular = sum(_naive_regularizer(x, y, 1.0) for x, y in ((h_a, x_b), (h_b, x_a), (x_a, x_b)))
    torch.testing.assert_close(mclrec_meta_loss(h_a, h_b, x_a, x_b), expected + 0.1 * regular)
    # Double backward works (needed by the meta-gradient).
    (gradient,) = torch.autograd.grad(mclrec_meta_loss(h_a, h_b, x_a, x_b), x_a, create_graph=True)
    assert gradient.requires_grad and math.isfinite(gradient.square().sum().item())
