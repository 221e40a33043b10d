"""STS Spearman: agreement with scipy on cosine similarities, hand cases, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from contrastkit.eval.sts import sts_spearman


def test_agrees_with_scipy_on_row_cosines():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 8, generator=generator), torch.randn(50, 8, generator=generator)
    gold = torch.randint(0, 6, (50,), generator=generator).float()  # ties in the gold scores
    cosine = [float(a[i] @ b[i] / (a[i].norm() * b[i].norm())) for i in range(50)]
    expected = stats.spearmanr(cosine, gold.tolist()).statistic
    assert sts_spearman(a, b, gold) == pytest.approx(expected, abs=1e-12)
    assert sts_spearman(a.numpy(), b.numpy(), gold.tolist()) == pytest.approx(expected, abs=1e-12)
    assert type(sts_spearman(a, b, gold)) is float


def test_perfectly_monotone_is_one_and_reversed_is_minus_one():
    angles = torch.linspace(0, math.pi / 2, 6)
    a = torch.tensor([[1.0, 0.0]]).repeat(6, 1)
    b = torch.stack([angles.cos(), angles.sin()], dim=1) * torch.arange(1, 7).float()[:, None]  # scale is ignored
    gold = np.array([5.0, 4.2, 3.0, 2.9, 1.0, 0.0])
    assert sts_spearman(a, b, gold) == pytest.approx(1.0)
    assert sts_spearman(a, b, -gold) == pytest.approx(-1.0)


def test_collapsed_embeddings_give_nan():
    a = torch.ones(4, 3)
    assert math.isnan(sts_spearman(a, a.clone(), [0.0, 1.0, 2.0, 3.0]))


def test_errors():
    a = torch.randn(5, 4)
    with pytest.raises(ValueError, match="shape of embeddings_a"):
        sts_spearman(a, torch.randn(5, 3), torch.rand(5))
    with pytest.raises(ValueError, match="5 scores"):
        sts_spearman(a, torch.randn(5, 4), torch.rand(4))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        sts_spearman(torch.randn(5), torch.randn(5), torch.rand(5))
    with pytest.raises(ValueError, match="at least 2 pairs"):
        sts_spearman(a[:1], a[:1], [1.0])
    with pytest.raises(ValueError, match="constant"):
        sts_spearman(a, torch.randn(5, 4), torch.ones(5))
    with pytest.raises(ValueError, match="finite"):
        sts_spearman(a, torch.full((5, 4), float("nan")), torch.rand(5))
