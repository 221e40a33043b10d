"""SMORe's smore_stable loss, the expectile loss and AWR weights against per-element loops."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.functional.smore import (
    awr_actor_loss,
    awr_weights,
    expectile_loss,
    smore_original_loss,
    smore_stable_loss,
)


def _vec(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 4


@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_smore_stable_matches_a_loop(gamma):
    data, goal, next_v = _vec(7, 0), _vec(5, 1), _vec(7, 2)
    neg_r = -2.0
    goal_term = sum((x + neg_r / (1 - gamma)) ** 2 for x in goal.tolist()) / 5
    penalty = (1 - gamma) * 1e-4 * sum(x ** 2 for x in data.tolist()) / 7
    backup = 0.5 * sum((x - (neg_r + gamma * v)) ** 2 for x, v in zip(data.tolist(), next_v.tolist())) / 7
    assert smore_stable_loss(data, goal, next_v, gamma).item() == pytest.approx(goal_term + penalty + backup, rel=1e-10)


def test_smore_stable_fixed_point_and_stop_gradient():
    gamma = 0.9
    # The goal transitions' score is pulled to 2 / (1 - gamma); the backup target carries no gradient.
    goal = torch.full((4,), 2 / (1 - gamma), dtype=torch.float64, requires_grad=True)
    next_v = _vec(3, 3).requires_grad_(True)
    data = (-2.0 + gamma * next_v.detach()).clone().requires_grad_(True)
    smore_stable_loss(data, goal, next_v, gamma).backward()
    assert goal.grad.abs().max() < 1e-12
    assert next_v.grad is None
    assert data.grad.abs().max() < 1e-4  # only the tiny (1 - gamma) 1e-4 penalty remains


def test_smore_original_matches_a_loop():
    data, goal, next_v = _vec(4, 4), _vec(3, 5), _vec(4, 6)
    ref = -sum(goal.tolist()) / 3 + 1e-4 * sum(data.tolist()) / 4 \
        + 0.5 * sum((x - 0.99 * v) ** 2 for x, v in zip(data.tolist(), next_v.tolist())) / 4
    assert smore_original_loss(data, goal, next_v).item() == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("tau", [0.5, 0.8, 0.9])
def test_expectile_loss_matches_a_loop_and_its_minimiser_is_the_expectile(tau):
    diff = _vec(9, 7)
    ref = sum((tau if d > 0 else 1 - tau) * d ** 2 for d in diff.tolist()) / 9
    assert expectile_loss(diff, tau).item() == pytest.approx(ref, rel=1e-10)
    # argmin_v E[expectile_loss(x - v)] is the tau-expectile: tau E[(x-v)+] = (1-tau) E[(v-x)+].
    x = _vec(200, 8)
    v = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([v], max_iter=200, tolerance_grad=1e-12)
    opt.step(lambda: (opt.zero_grad(), (l := expectile_loss(x - v, tau)).backward(), l)[2])
    above, below = (x - v.detach()).clamp(min=0).mean(), (v.detach() - x).clamp(min=0).mean()
    assert (tau * above).item() == pytest.approx(((1 - tau) * below).item(), rel=1e-5)
    if tau > 0.5:
        assert v.item() > x.mean().item()


def test_awr_weights_and_actor_loss():
    q, v = _vec(6, 9), _vec(6, 10)
    w = awr_weights(q, v, temperature=3.0)
    ref = [min(math.exp(3.0 * (a - b)), 100.0) for a, b in zip(q.tolist(), v.tolist())]
    assert w.tolist() == pytest.approx(ref, rel=1e-10)
    logp = -_vec(6, 11).abs()
    assert awr_actor_loss(logp, w).item() == pytest.approx(-sum(a * b for a, b in zip(ref, logp.tolist())) / 6, rel=1e-10)


def test_bad_inputs_fail_with_one_clear_line():
    with pytest.raises(ValueError, match="gamma"):
        smore_stable_loss(_vec(3, 0), _vec(3, 1), _vec(3, 2), gamma=1.0)
    with pytest.raises(ValueError, match="next_value"):
        smore_stable_loss(_vec(3, 0), _vec(3, 1), _vec(4, 2))
    with pytest.raises(ValueError, match="expectile"):
        expectile_loss(_vec(3, 0), 1.5)
