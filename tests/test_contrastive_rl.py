"""Contrastive-RL critic losses and bilinear logits against per-row loops written from the formulas."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.functional.contrastive_rl import (
    LOGSUMEXP_PENALTY,
    bilinear_logits,
    binary_nce_critic_loss,
    critic_logits,
    infonce_critic_loss,
)
from contrastkit.functional.core import contrastive_loss_from_logits


def _logits(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3


def test_critic_logits_is_the_outer_product():
    g = torch.Generator().manual_seed(1)
    sa, goal = torch.randn(4, 3, generator=g), torch.randn(5, 3, generator=g)
    out = critic_logits(sa, goal)
    assert out.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            assert out[i, j].item() == pytest.approx(sum(sa[i, k].item() * goal[j, k].item() for k in range(3)), abs=1e-5)


def test_binary_nce_matches_a_loop_over_entries():
    logits = _logits()
    total = 0.0
    for i in range(6):
        for j in range(6):
            p = 1.0 / (1.0 + math.exp(-logits[i, j].item()))
            total += -math.log(p) if i == j else -math.log(1.0 - p)
    assert binary_nce_critic_loss(logits).item() == pytest.approx(total / 36, rel=1e-10)
    assert binary_nce_critic_loss(logits, reduction="none").shape == (6, 6)
    assert binary_nce_critic_loss(logits, reduction="sum").item() == pytest.approx(total, rel=1e-10)


def _infonce_row(row: list[float], i: int, penalty: float) -> float:
    lse = math.log(sum(math.exp(x) for x in row))
    return lse - row[i] + penalty * lse ** 2


@pytest.mark.parametrize("penalty", [0.0, LOGSUMEXP_PENALTY, 0.5])
def test_infonce_matches_a_loop_over_rows(penalty):
    logits = _logits(seed=2)
    rows = [_infonce_row(logits[i].tolist(), i, penalty) for i in range(6)]
    assert infonce_critic_loss(logits, penalty).item() == pytest.approx(sum(rows) / 6, rel=1e-10)
    cols = [_infonce_row(logits[:, j].tolist(), j, penalty) for j in range(6)]
    symmetric = infonce_critic_loss(logits, penalty, symmetric=True, reduction="none")
    assert symmetric.tolist() == pytest.approx([0.5 * (r + c) for r, c in zip(rows, cols)], rel=1e-10)


def test_infonce_without_penalty_is_the_library_core():
    logits = _logits(seed=3)
    core = contrastive_loss_from_logits(logits, torch.eye(6, dtype=torch.bool))
    assert infonce_critic_loss(logits, 0.0).item() == pytest.approx(core.item(), rel=1e-12)


def test_penalty_pins_the_row_logsumexp_at_zero():
    # Minimising InfoNCE + penalty over free logits drives each row's log-sum-exp towards 0,
    # which plain InfoNCE (shift-invariant per row) does not do.
    logits = (_logits(seed=4) + 5.0).requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=0.05)
    for _ in range(2000):
        opt.zero_grad()
        infonce_critic_loss(logits, 0.5).backward()
        opt.step()
    assert torch.logsumexp(logits.detach(), dim=1).abs().max() < 0.2


def test_bilinear_logits_and_row_shift():
    g = torch.Generator().manual_seed(5)
    q, k, w = torch.randn(3, 4, generator=g), torch.randn(5, 4, generator=g), torch.randn(4, 4, generator=g)
    raw = bilinear_logits(q, k, w, shift=False)
    for i in range(3):
        for j in range(5):
            ref = sum(q[i, a].item() * w[a, b].item() * k[j, b].item() for a in range(4) for b in range(4))
            assert raw[i, j].item() == pytest.approx(ref, abs=1e-4)
    shifted = bilinear_logits(q, k, w)
    assert torch.allclose(shifted, raw - raw.max(dim=1, keepdim=True).values)
    assert (shifted.max(dim=1).values == 0).all()


def test_bad_inputs_fail_with_one_clear_line():
    with pytest.raises(ValueError, match="square"):
        binary_nce_critic_loss(torch.randn(3, 4))
    with pytest.raises(ValueError, match="logsumexp_penalty"):
        infonce_critic_loss(torch.randn(3, 3), -1.0)
    with pytest.raises(ValueError, match="weight"):
        bilinear_logits(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 3))
    with pytest.raises(ValueError, match="goal_repr"):
        critic_logits(torch.randn(3, 4), torch.randn(3, 5))
