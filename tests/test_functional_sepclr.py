"""SepCLR's align/uniform/k-JEM terms and total loss against per-pair loops (float64)."""

import math

import pytest
import torch

from contrastkit.functional.sepclr import (
    align_loss,
    joint_entropy_loss,
    sepclr_loss,
    uniform_loss,
)


def _loop_align(x, y, tau=0.5):
    return sum(float(((x[i] - y[i]) ** 2).sum()) for i in range(x.shape[0])) / x.shape[0] / (2 * tau)


def _loop_uniform(x, tau=0.5):
    values = []
    for i in range(x.shape[0]):
        for j in range(i + 1, x.shape[0]):
            values.append(math.exp(-float(((x[i] - x[j]) ** 2).sum()) / (2 * tau)))
    return math.log(sum(values) / len(values))


def _loop_jem(c, s, tau=0.5):
    n = c.shape[0]
    total = 0.0
    for i in range(n):
        inner = 0.0
        for j in range(n):
            inner += math.exp(-float(((s[i] - s[j]) ** 2).sum()) / (2 * tau)) * math.exp(
                -float(((c[i] - c[j]) ** 2).sum()) / (2 * tau)
            )
        total += math.log(inner / n)
    return total / n


def _loop_sepclr(c_a, c_b, s_a, s_b, labels, beta_s=1000.0, beta_r=1000.0, lam=10.0):
    c_a, c_b = c_a / c_a.norm(dim=1, keepdim=True), c_b / c_b.norm(dim=1, keepdim=True)
    target = [i for i in range(len(labels)) if labels[i] > 0]
    background = [i for i in range(len(labels)) if labels[i] == 0]
    t_a, t_b = s_a.clone(), s_b.clone()
    t_a[background] = 0.0
    t_b[background] = 0.0
    common = _loop_align(c_a, c_b) + (_loop_uniform(c_a) + _loop_uniform(c_b))
    salient = _loop_align(s_a[target], s_b[target]) + (_loop_uniform(t_a) + _loop_uniform(t_b))
    info_less = (_loop_align(t_a[background], s_a[background]) + _loop_align(t_b[background], s_b[background])) / 2
    jem = (_loop_jem(c_a, t_a) + _loop_jem(c_b, t_b)) / 2
    return common + beta_s * salient + beta_r * info_less + lam * jem, dict(
        common=common, salient=salient, info_less=info_less, jem=jem
    )


def test_align_hand_cases():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    # squared distances 2 and 0 -> mean 1, divided by 2 tau = 1
    assert align_loss(x, y).item() == pytest.approx(1.0)
    assert align_loss(x, y, temperature=0.25).item() == pytest.approx(2.0)
    assert align_loss(x, x).item() == 0.0


def test_uniform_hand_cases():
    # two antipodal unit vectors: distance^2 = 4 -> log exp(-4) = -4 at tau = 0.5
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert uniform_loss(x).item() == pytest.approx(-4.0)
    assert uniform_loss(torch.ones(5, 3)).item() == pytest.approx(0.0)
    # three points: pairs (0,1) d2=2, (0,2) d2=2, (1,2) d2=4
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    expected = math.log((2 * math.exp(-2) + math.exp(-4)) / 3)
    assert uniform_loss(x).item() == pytest.approx(expected, rel=1e-6)


def test_terms_match_loops():
    torch.manual_seed(0)
    x, y = torch.randn(7, 5, dtype=torch.float64), torch.randn(7, 5, dtype=torch.float64)
    assert align_loss(x, y).item() == pytest.approx(_loop_align(x, y), rel=1e-10)
    assert uniform_loss(x, temperature=2.0).item() == pytest.approx(_loop_uniform(x, 2.0), rel=1e-10)
    c = torch.nn.functional.normalize(torch.randn(7, 4, dtype=torch.float64), dim=1)
    assert joint_entropy_loss(c, x).item() == pytest.approx(_loop_jem(c, x), rel=1e-10)
    assert joint_entropy_loss(c, x, temperature=3.0).item() == pytest.approx(_loop_jem(c, x, 3.0), rel=1e-10)


def test_sepclr_loss_matches_loop():
    torch.manual_seed(1)
    c_a, c_b, s_a, s_b = (torch.randn(10, 6, dtype=torch.float64) * 0.5 for _ in range(4))
    labels = torch.tensor([0, 1, 0, 2, 0, 1, 3, 0, 4, 1])
    loss, parts = sepclr_loss(c_a, c_b, s_a, s_b, labels)
    ref, ref_parts = _loop_sepclr(c_a, c_b, s_a, s_b, labels)
    assert loss.item() == pytest.approx(ref, rel=1e-9)
    for name, value in ref_parts.items():
        assert parts[name].item() == pytest.approx(value, rel=1e-9, abs=1e-12)
    loss2, _ = sepclr_loss(c_a, c_b, s_a, s_b, labels, beta_salient=2.0, beta_info_less=3.0, jem_weight=0.5)
    ref2, _ = _loop_sepclr(c_a, c_b, s_a, s_b, labels, 2.0, 3.0, 0.5)
    assert loss2.item() == pytest.approx(ref2, rel=1e-9)


def test_info_less_zero_iff_background_salient_zero():
    torch.manual_seed(2)
    c_a, c_b, s_a, s_b = (torch.randn(8, 4) for _ in range(4))
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 1, 0])
    _, parts = sepclr_loss(c_a, c_b, s_a, s_b, labels)
    assert parts["info_less"].item() > 0
    background = labels == 0
    s_a0, s_b0 = s_a.clone(), s_b.clone()
    s_a0[background] = 0.0
    s_b0[background] = 0.0
    _, parts0 = sepclr_loss(c_a, c_b, s_a0, s_b0, labels)
    assert parts0["info_less"].item() == 0.0
    # target codes do not enter it
    s_a1 = s_a0.clone()
    s_a1[~background] *= 5
    assert sepclr_loss(c_a, c_b, s_a1, s_b0, labels)[1]["info_less"].item() == 0.0
    # one nonzero background code is enough to make it positive
    s_a0[0, 0] = 1e-3
    assert sepclr_loss(c_a, c_b, s_a0, s_b0, labels)[1]["info_less"].item() > 0


def test_gradients_finite_and_one_sided_batches():
    torch.manual_seed(3)
    tensors = [torch.randn(6, 4, requires_grad=True) for _ in range(4)]
    for labels in (torch.tensor([0, 1, 0, 1, 2, 0]), torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long)):
        loss, parts = sepclr_loss(*tensors, labels)
        assert torch.isfinite(loss)
        grads = torch.autograd.grad(loss, tensors)
        assert all(torch.isfinite(g).all() for g in grads)
    _, parts = sepclr_loss(*tensors, torch.zeros(6, dtype=torch.long))
    # all background: s' = 0 everywhere, so k-JEM reduces to the common kernel alone (both views averaged)
    zeros = torch.zeros(6, 4)
    expected = sum(joint_entropy_loss(torch.nn.functional.normalize(t, dim=1), zeros).item() for t in tensors[:2]) / 2
    assert parts["jem"].item() == pytest.approx(expected, rel=1e-6)


def test_salient_codes_of_background_get_no_uniformity_gradient():
    # s' is zero on background rows, so only the info-less term moves them: with beta_r = 0 their grad is 0
    torch.manual_seed(4)
    c_a, c_b = torch.randn(6, 4), torch.randn(6, 4)
    s_a, s_b = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    loss, _ = sepclr_loss(c_a, c_b, s_a, s_b, labels, beta_info_less=0.0)
    grad = torch.autograd.grad(loss, s_a)[0]
    assert grad[labels == 0].abs().max().item() == 0.0
    assert grad[labels > 0].abs().max().item() > 0.0


def test_bad_inputs():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="labels"):
        sepclr_loss(x, x, x, x, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="labels"):
        sepclr_loss(x, x, x, x, torch.tensor([0, -1, 0, 1]))
    with pytest.raises(ValueError, match="labels"):
        sepclr_loss(x, x, x, x, torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="jem_weight"):
        sepclr_loss(x, x, x, x, torch.tensor([0, 1, 0, 1]), jem_weight=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        uniform_loss(x, temperature=0.0)
    with pytest.raises(ValueError, match="salient_a"):
        sepclr_loss(x, x, torch.randn(5, 3), torch.randn(5, 3), torch.tensor([0, 1, 0, 1]))
