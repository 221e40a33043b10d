"""MMC loss terms against loop references and their masking / gradient properties."""

import math

import pytest
import torch

from contrastkit.functional.mmc import (
    local_to_global_distillation,
    masked_patch_l1,
    mmc_loss,
    moco_v3_contrastive,
)


def test_masked_l1_matches_loop_and_ignores_unmasked_patches():
    generator = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64)
    target = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64)
    mask = torch.tensor([[True, False, True, False, False], [False, False, False, True, True]])
    errors = [sum(abs(float(pred[b, n, p] - target[b, n, p])) for p in range(3)) / 3
              for b in range(2) for n in range(5) if mask[b, n]]
    assert masked_patch_l1(pred, target, mask).item() == pytest.approx(sum(errors) / len(errors))
    changed = pred.clone()
    changed[~mask] += 100.0  # unmasked predictions do not matter
    torch.testing.assert_close(masked_patch_l1(changed, target, mask), masked_patch_l1(pred, target, mask))


def test_distillation_matches_loop_and_stops_teacher_gradient():
    generator = torch.Generator().manual_seed(1)
    student = torch.randn(2, 3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(2, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    center = torch.randn(4, generator=generator, dtype=torch.float64)
    got = local_to_global_distillation(student, teacher, student_temperature=0.1, teacher_temperature=0.04,
                                       center=center)
    total = 0.0
    for b in range(2):
        t = torch.softmax((teacher[b].detach() - center) / 0.04, dim=0)
        for token in range(3):
            s = torch.log_softmax(student[b, token].detach() / 0.1, dim=0)
            total += -float((t * s).sum())
    assert got.item() == pytest.approx(total / 6)
    got.backward()
    assert teacher.grad is None and student.grad is not None


def test_moco_v3_matches_loop_and_symmetrises():
    generator = torch.Generator().manual_seed(2)
    q1, q2, k1, k2 = torch.randn(4, 5, 6, generator=generator, dtype=torch.float64)

    def naive(q, k, tau):
        qn, kn = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(k, dim=1)
        total = 0.0
        for i in range(q.shape[0]):
            logits = [float(qn[i] @ kn[j]) / tau for j in range(k.shape[0])]
            total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
        return total / q.shape[0] * 2 * tau

    assert moco_v3_contrastive(q1, k2, 0.2).item() == pytest.approx(naive(q1, k2, 0.2))
    both = moco_v3_contrastive(q1, k2, 0.2, query_2=q2, key_1=k1).item()
    assert both == pytest.approx(naive(q1, k2, 0.2) + naive(q2, k1, 0.2))


def test_mmc_loss_weights_combine_terms():
    generator = torch.Generator().manual_seed(3)
    args = (
        torch.randn(2, 6, 4, generator=generator), torch.randn(2, 6, 4, generator=generator),
        torch.rand(2, 6, generator=generator) < 0.5, torch.randn(2, 6, 8, generator=generator),
        torch.randn(2, 8, generator=generator), torch.randn(2, 5, generator=generator),
        torch.randn(2, 5, generator=generator),
    )
    out = mmc_loss(*args, reconstruction_weight=2.0, distillation_weight=0.5, contrastive_weight=3.0)
    expected = 2.0 * out["reconstruction"] + 0.5 * out["distillation"] + 3.0 * out["contrastive"]
    torch.testing.assert_close(out["loss"], expected)
    assert out["reconstruction"] > 0 and out["distillation"] > 0 and out["contrastive"] > 0
    only = mmc_loss(*args, reconstruction_weight=1.0, distillation_weight=0.0, contrastive_weight=0.0)
    torch.testing.assert_close(only["loss"], masked_patch_l1(*args[:3]))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="mask"):
        masked_patch_l1(torch.randn(2, 4, 3), torch.randn(2, 4, 3), torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="both query_2 and key_1"):
        moco_v3_contrastive(torch.randn(3, 2), torch.randn(3, 2), query_2=torch.randn(3, 2))
    with pytest.raises(ValueError, match="distillation_weight"):
        mmc_loss(torch.randn(1, 2, 2), torch.randn(1, 2, 2), torch.ones(1, 2, dtype=torch.bool),
                 torch.randn(1, 2, 3), torch.randn(1, 3), torch.randn(2, 2), torch.randn(2, 2),
                 distillation_weight=-1.0)
