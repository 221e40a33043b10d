"""The fused labelled kernel against SupCon's naive masked path and a per-row loop."""

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.contrastive import info_nce, supcon
from contrastkit.functional.labelled_paired import labelled_paired_loss


def _loop(q, k, scale, row_labels, col_labels, exclude):
    losses = []
    for i in range(q.shape[0]):
        keep = [j for j in range(k.shape[0]) if exclude is None or j != int(exclude[i])]
        logits = scale * k[keep] @ q[i]
        positives = [n for n, j in enumerate(keep) if col_labels[j] == row_labels[i]]
        losses.append(torch.logsumexp(logits, 0) - logits[positives].mean())
    return torch.stack(losses)


@pytest.mark.parametrize("chunk_size", ["auto", 5])
@pytest.mark.parametrize("scale", [10.0, 100.0])
def test_matches_a_per_row_loop_with_and_without_exclusion(chunk_size, scale):
    torch.manual_seed(0)
    q = F.normalize(torch.randn(12, 6, dtype=torch.float64), dim=1).requires_grad_()
    k = F.normalize(torch.randn(15, 6, dtype=torch.float64), dim=1).requires_grad_()
    row_labels, col_labels = torch.randint(0, 3, (12,)), torch.randint(0, 3, (15,))
    col_labels[:3] = torch.tensor([0, 1, 2])
    col_labels[9:12] = -7  # pure negatives: no row has this label
    # Without exclusion every row has a positive among columns 0-2; with it, rows see their own label
    # elsewhere too because columns 12-14 repeat labels 0, 1, 2.
    col_labels[12:] = torch.tensor([0, 1, 2])
    for excl in (None, torch.arange(12)):
        fused = labelled_paired_loss(q, k, scale, row_labels, col_labels, exclude=excl, chunk_size=chunk_size)
        slow = _loop(q, k, scale, row_labels, col_labels, excl)
        assert torch.allclose(fused, slow, atol=1e-10)
        weights = torch.rand(12, dtype=torch.float64)
        got = torch.autograd.grad((fused * weights).sum(), (q, k))
        want = torch.autograd.grad((slow * weights).sum(), (q, k))
        for a, b in zip(got, want):
            assert torch.allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("chunk_size", ["auto", 7])
def test_supcon_fused_equals_its_naive_path(chunk_size):
    torch.manual_seed(1)
    features = torch.randn(10, 2, 8, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (10,))
    fused = supcon(features, labels, temperature=0.1, base_temperature=0.07, chunk_size=chunk_size)
    naive = supcon(features, labels, temperature=0.1, base_temperature=0.07, chunk_size=None)
    assert torch.allclose(fused, naive, atol=1e-10)
    assert torch.allclose(torch.autograd.grad(fused, features)[0], torch.autograd.grad(naive, features)[0], atol=1e-10)


@pytest.mark.parametrize("symmetric", [False, True])
def test_labelled_info_nce_fused_equals_naive_with_negatives(symmetric):
    torch.manual_seed(2)
    q, k = torch.randn(9, 5, dtype=torch.float64), torch.randn(9, 5, dtype=torch.float64)
    negatives = None if symmetric else torch.randn(4, 5, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4])
    fused = info_nce(q, k, negatives=negatives, labels=labels, temperature=0.2, symmetric=symmetric)
    naive = info_nce(q, k, negatives=negatives, labels=labels, temperature=0.2, symmetric=symmetric, chunk_size=None)
    assert torch.allclose(fused, naive, atol=1e-10)


def test_a_row_without_positive_is_one_clear_error():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="1 row"):
        labelled_paired_loss(z, z, 1.0, torch.tensor([0, 0, 1, 2]), torch.tensor([0, 0, 1, 2]),
                             exclude=torch.tensor([0, 1, 2, -1]))
