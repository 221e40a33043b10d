"""GRACE and GraphCL objectives against their papers' formulas, written as slow loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.graph import grace_loss, graphcl_loss


def _grace_reference(u: torch.Tensor, v: torch.Tensor, tau: float) -> float:
    """GRACE eq. (1)-(2): inter-view positive, inter- and intra-view negatives, both directions."""
    u, v = F.normalize(u, dim=1), F.normalize(v, dim=1)
    n = u.shape[0]

    def ell(a: torch.Tensor, b: torch.Tensor, i: int) -> float:
        positive = math.exp(float(a[i] @ b[i]) / tau)
        inter = sum(math.exp(float(a[i] @ b[k]) / tau) for k in range(n) if k != i)
        intra = sum(math.exp(float(a[i] @ a[k]) / tau) for k in range(n) if k != i)
        return -math.log(positive / (positive + inter + intra))

    return sum(ell(u, v, i) + ell(v, u, i) for i in range(n)) / (2 * n)


def _graphcl_reference(a: torch.Tensor, b: torch.Tensor, tau: float) -> float:
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    n = a.shape[0]
    total = 0.0
    for i in range(n):
        positive = math.exp(float(a[i] @ b[i]) / tau)
        negatives = sum(math.exp(float(a[i] @ b[k]) / tau) for k in range(n) if k != i)
        total += -math.log(positive / negatives)
    return total / n


@pytest.mark.parametrize("tau", [0.2, 0.5, 1.0])
def test_grace_loss_matches_the_papers_formula(tau: float) -> None:
    generator = torch.Generator().manual_seed(0)
    u, v = torch.randn(7, 5, generator=generator), torch.randn(7, 5, generator=generator)
    assert float(grace_loss(u, v, tau)) == pytest.approx(_grace_reference(u, v, tau), rel=1e-5)


@pytest.mark.parametrize("tau", [0.2, 0.7])
def test_graphcl_loss_matches_the_official_form(tau: float) -> None:
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    assert float(graphcl_loss(a, b, tau)) == pytest.approx(_graphcl_reference(a, b, tau), rel=1e-5)


def test_graphcl_loss_is_one_directional_and_checks_input() -> None:
    generator = torch.Generator().manual_seed(2)
    a, b = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    assert float(graphcl_loss(a, b)) != pytest.approx(float(graphcl_loss(b, a)))
    with pytest.raises(ValueError, match="temperature"):
        graphcl_loss(a, b, 0.0)
    with pytest.raises(ValueError):
        graphcl_loss(a, b[:4])
