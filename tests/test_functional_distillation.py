"""DSE pair features and distillation loss against hand formulas."""

import math

import pytest
import torch

from contrastkit.functional.distillation import distillation_loss, dse_pair_features


def test_pair_features_layout():
    u = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    v = torch.tensor([[3.0, 1.0], [0.5, -1.0]])
    expected = torch.tensor(
        [
            [1.0, -2.0, 3.0, 1.0, 3.0, -2.0, 2.0, 3.0],
            [0.5, 3.0, 0.5, -1.0, 0.25, -3.0, 0.0, 4.0],
        ]
    )
    assert torch.equal(dse_pair_features(u, v), expected)


def _hand_cross_entropy(logits, labels):
    total = 0.0
    for row, label in zip(logits.tolist(), labels.tolist()):
        total += -row[label] + math.log(sum(math.exp(x) for x in row))
    return total / len(labels)


def _hand_distill(student, teacher):
    return sum(sum((s - t) ** 2 for s, t in zip(rs, rt)) for rs, rt in zip(student.tolist(), teacher.tolist())) / len(
        student
    )


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_classification_matches_hand_formula(alpha):
    student = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 3.0]], dtype=torch.float64)
    teacher = torch.tensor([[1.5, 0.0, 0.0], [0.0, 2.0, 2.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    expected = (1 - alpha) * _hand_cross_entropy(student, labels) + alpha * _hand_distill(student, teacher)
    # distill: row 0 (0.25 + 1 + 0.25) = 1.5, row 1 (0 + 1 + 1) = 2 -> mean 1.75
    assert _hand_distill(student, teacher) == pytest.approx(1.75)
    assert float(distillation_loss(student, teacher, labels, alpha=alpha)) == pytest.approx(expected, rel=1e-12)


def test_regression_uses_mse():
    student = torch.tensor([[0.9], [2.0], [4.0]], dtype=torch.float64)
    teacher = torch.tensor([[1.0], [1.0], [5.0]], dtype=torch.float64)
    targets = torch.tensor([1.0, 2.5, 3.0], dtype=torch.float64)
    mse = ((0.9 - 1.0) ** 2 + (2.0 - 2.5) ** 2 + (4.0 - 3.0) ** 2) / 3
    distill = ((0.9 - 1.0) ** 2 + (2.0 - 1.0) ** 2 + (4.0 - 5.0) ** 2) / 3
    got = distillation_loss(student, teacher, targets, alpha=0.25, regression=True)
    assert float(got) == pytest.approx(0.75 * mse + 0.25 * distill, rel=1e-12)
    # [B, C] targets give the same value as [B] when C = 1.
    same = distillation_loss(student, teacher, targets.unsqueeze(1), alpha=0.25, regression=True)
    assert float(same) == pytest.approx(float(got), rel=1e-12)


def test_labels_none_is_pure_distillation():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 4, generator=generator), torch.randn(5, 4, generator=generator)
    got = distillation_loss(student, teacher, alpha=1.0)
    assert float(got) == pytest.approx(_hand_distill(student, teacher), rel=1e-5)
    with pytest.raises(ValueError, match="labels"):
        distillation_loss(student, teacher)  # alpha 0.5 needs labels


def test_gradient_goes_to_student_only():
    student = torch.randn(4, 3, requires_grad=True)
    teacher = torch.randn(4, 3, requires_grad=True)
    distillation_loss(student, teacher, torch.tensor([0, 1, 2, 0])).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_bad_input():
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(student, teacher, torch.tensor([0, 1, 2, 0]), alpha=1.5)
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(student, torch.randn(3, 3), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="labels"):
        distillation_loss(student, teacher, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="labels"):
        distillation_loss(student, teacher, torch.rand(4))  # float labels for classification
    with pytest.raises(ValueError, match="labels"):
        distillation_loss(student, teacher, torch.rand(4), regression=True)  # [B] targets need C = 1
    with pytest.raises(ValueError, match="v"):
        dse_pair_features(torch.randn(4, 3), torch.randn(4, 2))
