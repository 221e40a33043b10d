"""The general masked/weighted core against a loop reference, and its properties."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.functional import contrastive_loss_from_logits

DTYPE = torch.float64
ATOL = 1e-10


def reference(logits, positive_weights, valid=None, column_weights=None):
    """-sum_j p_ij log(w_ij exp(l_ij) / sum_k v_ik w_ik exp(l_ik)), looped, per row."""
    rows, cols = logits.shape
    losses = []
    for i in range(rows):
        denominator = 0.0
        for k in range(cols):
            is_valid = True if valid is None else bool(valid[i, k])
            w = 1.0 if column_weights is None else column_weights[i, k]
            if is_valid:
                denominator = denominator + w * torch.exp(logits[i, k])
        total = 0.0
        for j in range(cols):
            total = total + positive_weights[i, j].to(DTYPE)
        loss = 0.0
        for j in range(cols):
            p = positive_weights[i, j].to(DTYPE) / total
            if float(p.detach()) > 0:
                w = 1.0 if column_weights is None else column_weights[i, j]
                loss = loss - p * torch.log(w * torch.exp(logits[i, j]) / denominator)
        losses.append(loss)
    return torch.stack(losses)


def assert_values_and_grads(out, expected, inputs):
    assert torch.allclose(out, expected, atol=ATOL, rtol=0), (out, expected)
    grads = torch.autograd.grad(out.sum(), inputs)
    expected_grads = torch.autograd.grad(expected.sum(), inputs)
    for got, want in zip(grads, expected_grads, strict=True):
        assert torch.allclose(got, want, atol=ATOL, rtol=0), (got, want)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


def test_bool_positives_with_valid_mask_and_weights(generator):
    logits = torch.randn(5, 7, generator=generator, dtype=DTYPE, requires_grad=True)
    positives = torch.rand(5, 7, generator=generator) < 0.3
    positives[:, 0] = True
    valid = torch.rand(5, 7, generator=generator) < 0.7
    valid[:, 1] = True
    weights = (torch.rand(5, 7, generator=generator, dtype=DTYPE) + 0.2).requires_grad_()
    out = contrastive_loss_from_logits(logits, positives, valid, weights, reduction="none")
    expected = reference(logits, positives, valid, weights)
    assert_values_and_grads(out, expected, (logits, weights))


def test_float_positive_weights_are_normalised_and_differentiable(generator):
    logits = torch.randn(6, 5, generator=generator, dtype=DTYPE, requires_grad=True)
    targets = torch.rand(6, 5, generator=generator, dtype=DTYPE)
    targets[targets < 0.4] = 0.0
    targets[:, 2] += 0.5
    targets.requires_grad_()
    out = contrastive_loss_from_logits(logits, targets, reduction="none")
    expected = reference(logits, targets)
    assert_values_and_grads(out, expected, (logits, targets))
    scaled = contrastive_loss_from_logits(logits, targets * 7.0, reduction="none")
    assert torch.allclose(scaled, out, atol=ATOL, rtol=0)


def test_positive_excluded_from_denominator_is_decoupled(generator):
    logits = torch.randn(4, 6, generator=generator, dtype=DTYPE)
    positives = torch.eye(4, 6, dtype=torch.bool)
    out = contrastive_loss_from_logits(logits, positives, valid_mask=~positives, reduction="none")
    for i in range(4):
        want = -logits[i, i] + torch.log(sum(torch.exp(logits[i, k]) for k in range(6) if k != i))
        assert abs(float(out[i] - want)) < ATOL


def test_zero_column_weight_equals_invalid_column(generator):
    logits = torch.randn(4, 6, generator=generator, dtype=DTYPE)
    positives = torch.eye(4, 6, dtype=torch.bool)
    valid = torch.ones(4, 6, dtype=torch.bool)
    valid[:, 5] = False
    weights = valid.to(DTYPE)
    by_mask = contrastive_loss_from_logits(logits, positives, valid_mask=valid)
    by_weight = contrastive_loss_from_logits(logits, positives, column_weights=weights.requires_grad_())
    assert torch.allclose(by_mask, by_weight, atol=ATOL, rtol=0)
    (grad,) = torch.autograd.grad(by_weight, weights)
    assert torch.isfinite(grad).all()


def test_constant_column_weights_cancel(generator):
    logits = torch.randn(4, 6, generator=generator, dtype=DTYPE)
    positives = torch.eye(4, 6, dtype=torch.bool)
    plain = contrastive_loss_from_logits(logits, positives)
    weighted = contrastive_loss_from_logits(logits, positives, column_weights=torch.full((4, 6), 3.0, dtype=DTYPE))
    assert torch.allclose(plain, weighted, atol=ATOL, rtol=0)
    uneven = torch.ones(4, 6, dtype=DTYPE)
    uneven[:, 4] = 5.0
    assert not torch.allclose(plain, contrastive_loss_from_logits(logits, positives, column_weights=uneven))


def test_reductions_and_large_logits_are_stable(generator):
    logits = torch.randn(4, 6, generator=generator, dtype=torch.float32) * 1e4
    positives = torch.eye(4, 6, dtype=torch.bool)
    per_row = contrastive_loss_from_logits(logits, positives, reduction="none")
    assert per_row.shape == (4,)
    assert torch.isfinite(per_row).all()
    assert torch.allclose(contrastive_loss_from_logits(logits, positives), per_row.mean())
    assert torch.allclose(contrastive_loss_from_logits(logits, positives, reduction="sum"), per_row.sum())


def test_uniform_logits_give_log_of_columns():
    logits = torch.zeros(3, 8, dtype=DTYPE)
    positives = torch.eye(3, 8, dtype=torch.bool)
    assert abs(float(contrastive_loss_from_logits(logits, positives)) - math.log(8)) < ATOL


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"positive_weights": torch.eye(3, 4, dtype=torch.bool) & torch.tensor([[True], [True], [False]])}, "at least one positive"),
        ({"positive_weights": torch.eye(3, 4, dtype=DTYPE) * torch.tensor([[1.0], [0.0], [1.0]], dtype=DTYPE)}, "at least one positive"),
        ({"positive_weights": torch.eye(3, 5, dtype=torch.bool)}, "shape"),
        ({"positive_weights": torch.eye(3, 4, dtype=torch.long)}, "bool or float"),
        ({"positive_weights": -torch.eye(3, 4, dtype=DTYPE)}, "non-negative"),
        ({"valid_mask": torch.zeros(3, 4, dtype=torch.bool)}, "at least one valid"),
        ({"valid_mask": torch.ones(3, 4)}, "bool"),
        ({"column_weights": torch.zeros(3, 4, dtype=DTYPE)}, "positive column"),
        ({"column_weights": -torch.ones(3, 4, dtype=DTYPE)}, "non-negative"),
        ({"reduction": "avg"}, "reduction"),
    ],
)
def test_bad_inputs_raise(kwargs, message):
    arguments = {"logits": torch.zeros(3, 4, dtype=DTYPE), "positive_weights": torch.eye(3, 4, dtype=torch.bool)}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        contrastive_loss_from_logits(**arguments)


def test_non_finite_logits_raise():
    logits = torch.zeros(3, 4)
    logits[1, 2] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        contrastive_loss_from_logits(logits, torch.eye(3, 4, dtype=torch.bool))
