"""Tests for DPO, IPO and SFT losses against per-pair loops written from the papers' formulas."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.functional.preference import (
    dpo_loss,
    ipo_loss,
    preference_log_ratio,
    sft_loss,
)


def _logps(n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [-torch.rand(n, generator=g, dtype=torch.float64) * 5 for _ in range(4)]


def _h(pc, pr, rc, rr, i, nc=1.0, nr=1.0):
    return (float(pc[i]) - float(rc[i])) / nc - (float(pr[i]) - float(rr[i])) / nr


@pytest.mark.parametrize("beta", [0.05, 0.1, 1.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_dpo_matches_per_pair_loop(beta, smoothing):
    pc, pr, rc, rr = _logps(7, 0)
    expected = []
    for i in range(7):
        h = _h(pc, pr, rc, rr, i)
        sig = lambda x: 1.0 / (1.0 + math.exp(-x))
        expected.append(-(1 - smoothing) * math.log(sig(beta * h)) - smoothing * math.log(sig(-beta * h)))
    got = dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=smoothing, reduction="none")
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    assert torch.isclose(dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=smoothing), got.mean())
    assert torch.isclose(dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=smoothing, reduction="sum"), got.sum())


@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_ipo_matches_per_pair_loop_with_and_without_token_averaging(tau):
    pc, pr, rc, rr = _logps(6, 1)
    nc = torch.tensor([1, 2, 3, 4, 5, 6], dtype=torch.float64)
    nr = torch.tensor([6, 5, 4, 3, 2, 1], dtype=torch.float64)
    plain = [(_h(pc, pr, rc, rr, i) - 1 / (2 * tau)) ** 2 for i in range(6)]
    averaged = [(_h(pc, pr, rc, rr, i, float(nc[i]), float(nr[i])) - 1 / (2 * tau)) ** 2 for i in range(6)]
    assert torch.allclose(ipo_loss(pc, pr, rc, rr, tau=tau, reduction="none"),
                          torch.tensor(plain, dtype=torch.float64), atol=1e-12)
    got = ipo_loss(pc, pr, rc, rr, tau=tau, chosen_lengths=nc, rejected_lengths=nr)
    assert math.isclose(float(got), sum(averaged) / 6, rel_tol=1e-12)


def test_sft_is_the_negative_log_likelihood_of_the_chosen_and_token_mean_with_lengths():
    pc = torch.tensor([-1.0, -4.0, -2.0], dtype=torch.float64)
    lengths = torch.tensor([1.0, 4.0, 3.0], dtype=torch.float64)
    assert math.isclose(float(sft_loss(pc)), 7.0 / 3)
    assert math.isclose(float(sft_loss(pc, chosen_lengths=lengths)), 7.0 / 8)  # TRL: mean over all tokens
    assert torch.allclose(sft_loss(pc, chosen_lengths=lengths, reduction="none"),
                          torch.tensor([1.0, 1.0, 2.0 / 3], dtype=torch.float64))


def test_policy_equal_to_reference_gives_the_known_values():
    pc, pr, _, _ = _logps(5, 2)
    assert torch.isclose(dpo_loss(pc, pr, pc, pr, beta=0.3), torch.tensor(math.log(2), dtype=torch.float64))
    assert torch.isclose(ipo_loss(pc, pr, pc, pr, tau=0.25), torch.tensor(4.0, dtype=torch.float64))


def test_gradients_flow_to_the_policy_only_and_match_the_analytic_form():
    pc, pr, rc, rr = (t.clone().requires_grad_(True) for t in _logps(4, 3))
    beta = 0.5
    dpo_loss(pc, pr, rc, rr, beta=beta, reduction="sum").backward()
    h = preference_log_ratio(pc, pr, rc, rr).detach()
    # d/dh -log sigmoid(beta h) = -beta sigmoid(-beta h); chosen +1, rejected -1.
    assert torch.allclose(pc.grad, -beta * torch.sigmoid(-beta * h))
    assert torch.allclose(pr.grad, beta * torch.sigmoid(-beta * h))
    assert rc.grad is None and rr.grad is None


def test_bad_inputs_fail_with_a_clear_message():
    pc, pr, rc, rr = _logps(3, 4)
    with pytest.raises(ValueError, match="policy_rejected_logps: expected shape"):
        dpo_loss(pc, pr[:2], rc, rr)
    with pytest.raises(ValueError, match="finite"):
        dpo_loss(pc, pr, rc, torch.full_like(rr, float("nan")))
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(pc, pr, rc, rr, beta=0.0)
    with pytest.raises(ValueError, match="reduction"):
        ipo_loss(pc, pr, rc, rr, reduction="avg")
    with pytest.raises(ValueError, match="chosen_lengths"):
        sft_loss(pc, chosen_lengths=torch.zeros(3))
    with pytest.raises(ValueError, match=r"\[B\]"):
        sft_loss(pc[None])
