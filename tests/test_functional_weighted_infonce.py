"""Game4Loc weighted InfoNCE against a per-row loop of the paper's formula; limits and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.functional import clip_loss
from contrastkit.functional.weighted_infonce import (
    game4loc_smoothing,
    weighted_info_nce,
)


def _inputs(batch=6, dim=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    b = torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    iou = torch.rand(batch, generator=generator, dtype=torch.float64)
    return a, b, iou


def _loop(a, b, iou, scale, k=5.0, ls=0.0):
    """The per-row formula, written out with Python loops and math."""
    n = a.shape[0]
    an = [a[i] / a[i].norm() for i in range(n)]
    bn = [b[i] / b[i].norm() for i in range(n)]
    s = [[scale * float(an[i] @ bn[j]) for j in range(n)] for i in range(n)]
    eps = [1 - (1 - ls) / (1 + math.exp(-k * float(iou[i]))) for i in range(n)]

    def direction(m):
        total = 0.0
        for i in range(n):
            lse = math.log(sum(math.exp(m[i][j]) for j in range(n)))
            total += (1 - eps[i]) * (-m[i][i] + lse)
            total += eps[i] * (-sum(m[i]) / n + lse)
        return total / n

    transposed = [[s[j][i] for j in range(n)] for i in range(n)]
    return (direction(s) + direction(transposed)) / 2


@pytest.mark.parametrize("scale,k,ls", [(1 / 0.07, 5.0, 0.0), (3.0, 2.0, 0.05), (10.0, 5.0, 0.3)])
def test_equals_the_per_row_loop(scale, k, ls):
    a, b, iou = _inputs()
    got = weighted_info_nce(a, b, iou, logit_scale=scale, k=k, label_smoothing=ls)
    assert math.isclose(float(got), _loop(a, b, iou, scale, k, ls), rel_tol=1e-10)


def test_reduces_to_clip_loss_as_the_weights_grow():
    a, b, _ = _inputs(seed=1)
    huge = torch.full((6,), 1e3, dtype=torch.float64)
    assert torch.allclose(weighted_info_nce(a, b, huge, logit_scale=5.0), clip_loss(a, b, logit_scale=5.0, chunk_size=None))
    # and smaller overlaps give softer targets: the loss moves monotonically between the two
    small = weighted_info_nce(a, b, torch.zeros(6, dtype=torch.float64), logit_scale=5.0)
    assert not torch.allclose(small, clip_loss(a, b, logit_scale=5.0, chunk_size=None))


def test_no_weights_is_label_smoothed_cross_entropy():
    a, b, _ = _inputs(seed=2)
    scale, ls = 4.0, 0.1
    logits = scale * torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T
    target = torch.arange(6)
    expected = (torch.nn.functional.cross_entropy(logits, target, label_smoothing=ls)
                + torch.nn.functional.cross_entropy(logits.T, target, label_smoothing=ls)) / 2
    assert torch.allclose(weighted_info_nce(a, b, logit_scale=scale, label_smoothing=ls), expected)


def test_reduction_none_and_sum():
    a, b, iou = _inputs(seed=3)
    per_pair = weighted_info_nce(a, b, iou, reduction="none")
    assert per_pair.shape == (6,)
    assert torch.allclose(per_pair.mean(), weighted_info_nce(a, b, iou))
    assert torch.allclose(per_pair.sum(), weighted_info_nce(a, b, iou, reduction="sum"))


def test_gradients_reach_inputs_and_a_learnable_scale():
    a, b, iou = _inputs(seed=4)
    a.requires_grad_(True)
    scale = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
    weighted_info_nce(a, b, iou, logit_scale=scale).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0 and scale.grad is not None
    assert torch.autograd.gradcheck(
        lambda x, y: weighted_info_nce(x, y, iou, logit_scale=3.0),
        (a.detach().clone().requires_grad_(True), b.clone().requires_grad_(True)),
    )


def test_smoothing_schedule():
    eps = game4loc_smoothing(torch.tensor([0.0, 0.5, 1.0, 100.0]), k=5.0)
    assert torch.allclose(eps, torch.tensor([0.5, 1 - 1 / (1 + math.exp(-2.5)), 1 - 1 / (1 + math.exp(-5)), 0.0]))
    assert (eps[:-1] > eps[1:]).all()  # more overlap, less smoothing


def test_bad_input_raises():
    a, b, iou = _inputs()
    with pytest.raises(ValueError, match="weights"):
        weighted_info_nce(a, b, iou[:3])
    with pytest.raises(ValueError, match="label_smoothing"):
        weighted_info_nce(a, b, iou, label_smoothing=1.0)
    with pytest.raises(ValueError, match="logit_scale"):
        weighted_info_nce(a, b, iou, logit_scale=0.0)
    with pytest.raises(ValueError, match="rows"):
        weighted_info_nce(a, b[:4], iou)
