"""The fused symmetric (CLIP) kernel against the two cross-entropies of the naive logit matrix."""

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.contrastive import clip_loss
from contrastkit.functional.symmetric_paired import symmetric_paired_loss


def _naive(a, b, scale):
    logits = scale * a @ b.T
    target = torch.arange(a.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


@pytest.mark.parametrize("scale", [5.0, 14.3, 100.0])  # 100: past the static-shift range (streaming maxima)
@pytest.mark.parametrize("chunk_size", ["auto", 7, 64])
def test_value_and_gradients_match_the_naive_loss(scale, chunk_size):
    torch.manual_seed(0)
    a = F.normalize(torch.randn(50, 16, dtype=torch.float64), dim=1).requires_grad_()
    b = F.normalize(torch.randn(50, 16, dtype=torch.float64), dim=1).requires_grad_()
    s = torch.tensor(scale, dtype=torch.float64, requires_grad=True)
    fused = symmetric_paired_loss(a, b, s, chunk_size=chunk_size)
    grads = torch.autograd.grad(fused, (a, b, s))
    naive = _naive(a, b, s)
    expected = torch.autograd.grad(naive, (a, b, s))
    assert torch.allclose(fused, naive, atol=1e-10, rtol=1e-10)
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, atol=1e-10, rtol=1e-8)


def test_unnormalised_inputs_and_uneven_tiles_match_too():
    torch.manual_seed(1)
    a, b = torch.randn(33, 5, dtype=torch.float64) * 3, torch.randn(33, 5, dtype=torch.float64)
    a.requires_grad_(), b.requires_grad_()
    for chunk in ("auto", 4, 32, 40):
        fused = symmetric_paired_loss(a, b, 2.0, chunk_size=chunk)
        ga, gb = torch.autograd.grad(fused, (a, b))
        naive = _naive(a, b, 2.0)
        na, nb = torch.autograd.grad(naive, (a, b))
        assert torch.allclose(fused, naive, atol=1e-10)
        assert torch.allclose(ga, na, atol=1e-9) and torch.allclose(gb, nb, atol=1e-9)


def test_float32_never_negative_and_float16_upcast():
    a = F.normalize(torch.randn(64, 8), dim=1)
    # Perfect alignment at a large scale: the loss is ~0 and must not round below it.
    assert symmetric_paired_loss(a, a, 100.0) >= 0
    assert symmetric_paired_loss(a, a, 100.0, chunk_size=16) >= 0
    half = symmetric_paired_loss(a.half(), a.half(), 10.0)
    assert half.dtype == torch.float32 and torch.isfinite(half)


def test_clip_loss_runs_on_it_and_agrees_with_its_naive_path():
    torch.manual_seed(2)
    a, b = torch.randn(40, 12, requires_grad=True), torch.randn(40, 12, requires_grad=True)
    fused = clip_loss(a, b, 1 / 0.07)
    naive = clip_loss(a, b, 1 / 0.07, chunk_size=None)
    assert torch.allclose(fused, naive, atol=1e-5)
    assert torch.allclose(torch.autograd.grad(fused, a)[0], torch.autograd.grad(naive, a)[0], atol=1e-6)


def test_bad_arguments_are_one_clear_error():
    with pytest.raises(ValueError, match="one shape"):
        symmetric_paired_loss(torch.randn(4, 3), torch.randn(5, 3), 1.0)
    with pytest.raises(ValueError, match="chunk_size"):
        symmetric_paired_loss(torch.randn(4, 3), torch.randn(4, 3), 1.0, chunk_size=0)
