"""Tests for the preference bandit: pi_ref, labels, closed forms as stationary points of the exact losses, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.functional.preference import dpo_loss, ipo_loss, sft_loss
from contrastkit.rl.bandit import (
    PreferenceBandit,
    dpo_optimum,
    ipo_optimum,
    reference_policy,
    sft_optimum,
    total_variation,
    train_tabular,
)

BANDIT = PreferenceBandit.tajwar(aligned=False, scale=10.0)


def test_reference_policy_is_the_binned_squashed_cauchy():
    """The official pi_data: a histogram of tanh(Cauchy(-0.7, 0.4)) samples on 100 bins of [-1, 1]."""
    exact = reference_policy()
    samples = np.tanh(-0.7 + 0.4 * np.random.default_rng(0).standard_cauchy(400_000))
    histogram = np.histogram(samples, bins=100, range=(-1, 1))[0] / len(samples)
    assert np.isclose(exact.sum(), 1.0) and total_variation(exact, histogram) < 0.01
    # The Cauchy's peak maps to x = tanh(-0.7) (arm 19.8); tanh's Jacobian moves the binned mode to arm 16.
    assert np.argmax(exact[5:60]) + 5 == 16


def test_sampled_labels_follow_bradley_terry():
    chosen, rejected = BANDIT.sample_pairs(np.full(100, 0.01), 200_000, np.random.default_rng(1))
    pair = (chosen == 70) & (rejected == 60) | (chosen == 60) & (rejected == 70)
    wins = ((chosen == 70) & pair).sum() / pair.sum()
    assert abs(wins - BANDIT.preference_matrix[70, 60]) < 0.06


def _exact_loss(objective: str, logits: torch.Tensor, mu: np.ndarray, beta: float = 1.0, tau: float = 0.1):
    """Population loss: every ordered pair (y_w, y_l) weighted by mu(y) mu(y') P(y > y') (a slow, obvious sum)."""
    K = len(mu)
    P = torch.tensor(BANDIT.preference_matrix)
    weights = torch.tensor(np.outer(mu, mu)) * P  # [w, l]
    w_idx, l_idx = torch.meshgrid(torch.arange(K), torch.arange(K), indexing="ij")
    w_idx, l_idx, weights = w_idx.flatten(), l_idx.flatten(), weights.flatten()
    log_policy = torch.log_softmax(logits, 0)
    log_ref = torch.tensor(np.log(BANDIT.reference))
    if objective == "sft":
        per_pair = sft_loss(log_policy[w_idx], reduction="none")
    else:
        args = (log_policy[w_idx], log_policy[l_idx], log_ref[w_idx], log_ref[l_idx])
        per_pair = (dpo_loss(*args, beta=beta, reduction="none") if objective == "dpo"
                    else ipo_loss(*args, tau=tau, reduction="none"))
    return (weights * per_pair).sum()


@pytest.mark.parametrize(("objective", "optimum"), [
    ("dpo", lambda: dpo_optimum(BANDIT, 1.0)),
    ("ipo", lambda: ipo_optimum(BANDIT, 0.1)),
    ("sft", lambda: sft_optimum(BANDIT)),
])
def test_closed_forms_are_stationary_points_of_the_exact_losses(objective, optimum):
    at_optimum = torch.tensor(np.log(optimum()), requires_grad=True)
    _exact_loss(objective, at_optimum, BANDIT.reference).backward()
    at_reference = torch.tensor(np.log(BANDIT.reference), requires_grad=True)
    _exact_loss(objective, at_reference, BANDIT.reference).backward()
    assert at_optimum.grad.abs().max() < 1e-10 * max(1.0, float(at_reference.grad.abs().max()))
    assert at_reference.grad.abs().max() > 1e-4  # pi_ref itself is not optimal: the check can fail


def test_closed_forms_respect_coverage_and_the_misalignment():
    mu = np.zeros(100)
    mu[:50] = 1 / 50
    assert dpo_optimum(BANDIT, 1.0, pair_policy=mu)[50:].sum() == 0.0  # uncovered arms get nothing
    assert BANDIT.expected_reward(dpo_optimum(BANDIT, 0.5)) > 0.9 > BANDIT.expected_reward(sft_optimum(BANDIT))


@pytest.mark.parametrize(("objective", "optimum"), [
    ("ipo", lambda: ipo_optimum(BANDIT, 0.1)),
    ("sft", lambda: sft_optimum(BANDIT)),
    ("dpo", lambda: dpo_optimum(BANDIT, 2.0)),
])
def test_training_on_the_pair_distribution_approaches_the_closed_form(objective, optimum):
    result = train_tabular(BANDIT, objective, source="population", steps=300, batch_size=2048, lr=0.1,
                           beta=2.0, tau=0.1, seed=0)
    target = optimum()
    assert total_variation(result["policy"], target) < 0.5 * total_variation(BANDIT.reference, target)


def test_on_policy_dpo_beats_offline_dpo_on_the_misaligned_reward():
    kw = {"steps": 500, "batch_size": 256, "lr": 0.05, "beta": 0.05, "n_pairs": 1000, "rounds": 10, "seed": 0}
    on_policy = train_tabular(BANDIT, "dpo", source="on_policy", **kw)
    offline = train_tabular(BANDIT, "dpo", source="offline", **kw)
    assert on_policy["labels"] == offline["labels"] == 1000
    assert on_policy["expected_reward"] > offline["expected_reward"] + 0.1


def test_bad_arguments():
    with pytest.raises(ValueError, match="objective"):
        train_tabular(BANDIT, "ppo")
    with pytest.raises(ValueError, match="source"):
        train_tabular(BANDIT, "dpo", source="replay")
    with pytest.raises(ValueError, match="positive entries"):
        PreferenceBandit(np.zeros(3), np.array([1.0, 0.0, 0.0]))
