"""SBCL's bi-granularity loss against a loop reference of the official formula."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.contrastive import supcon
from contrastkit.functional.sbcl import sbcl_class_temperatures, sbcl_loss


def _reference(features, labels, subs, tau, tau_c, gamma, tau_b):
    """Python loops over the formula of METHODS #54 / the official SupConLoss_rank."""
    b, v, _ = features.shape
    z = F.normalize(features.transpose(0, 1).reshape(b * v, -1), dim=1).double()
    n = b * v
    cls = [int(labels[i % b]) for i in range(n)]
    sub = [int(subs[i % b]) for i in range(n)]
    total = 0.0
    for i in range(n):
        tc = tau_c[cls[i]] if isinstance(tau_c, list) else tau_c
        sim = [float(z[i] @ z[k]) for k in range(n)]
        denom = sum(math.exp(sim[k] / tau) for k in range(n) if k != i)
        pos = [p for p in range(n) if p != i and sub[p] == sub[i]]
        term1 = sum(sim[p] / tau - math.log(denom) for p in pos) / len(pos)
        own = [k for k in range(n) if k != i and k % b == i % b]
        valid = [k for k in range(n) if (k != i and sub[k] != sub[i]) or k in own]
        denom_c = sum(math.exp(sim[k] / tc) for k in valid)
        pos_c = [p for p in range(n) if (p != i and cls[p] == cls[i] and sub[p] != sub[i]) or p in own]
        term2 = sum(sim[p] / tc - math.log(denom_c) for p in pos_c) / len(pos_c)
        total += -(tau / tau_b) * term1 - gamma * term2
    return total / n


def _case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(8, 2, 5, generator=g)
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
    subs = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3])
    return features, labels, subs


@pytest.mark.parametrize("class_temperature", [None, 0.2, "per-class"])
def test_sbcl_loss_matches_loop_reference(class_temperature) -> None:
    features, labels, subs = _case()
    tau_c_ref = 0.1 if class_temperature is None else class_temperature
    tau_c_arg = class_temperature
    if class_temperature == "per-class":
        tau_c_ref = [0.15, 0.08, 0.1]
        tau_c_arg = torch.tensor(tau_c_ref)
    got = sbcl_loss(features, labels, subs, temperature=0.1, class_temperature=tau_c_arg, gamma=0.25,
                    base_temperature=0.07)
    want = _reference(features, labels, subs, 0.1, tau_c_ref, 0.25, 0.07)
    assert float(got) == pytest.approx(want, rel=1e-5)


def test_sbcl_loss_with_three_views_matches_reference() -> None:
    g = torch.Generator().manual_seed(1)
    features = torch.randn(5, 3, 4, generator=g)
    labels, subs = torch.tensor([0, 0, 0, 1, 1]), torch.tensor([0, 1, 1, 2, 2])
    got = sbcl_loss(features, labels, subs, temperature=0.2, gamma=0.5, base_temperature=0.1)
    assert float(got) == pytest.approx(_reference(features, labels, subs, 0.2, 0.2, 0.5, 0.1), rel=1e-5)


def test_one_subclass_per_class_and_gamma_zero_is_supcon() -> None:
    features, labels, _ = _case(2)
    got = sbcl_loss(features, labels, labels * 10, temperature=0.1, gamma=0.0, base_temperature=0.07)
    want = supcon(features, labels, temperature=0.1, base_temperature=0.07)
    assert torch.allclose(got, want, atol=1e-6)
    # The subclass split changes the loss (a wrong implementation that ignores it would not).
    _, _, subs = _case(2)
    assert not torch.allclose(sbcl_loss(features, labels, subs, gamma=0.0), got)


def test_gradients_flow_and_errors() -> None:
    features, labels, subs = _case(3)
    features.requires_grad_(True)
    sbcl_loss(features, labels, subs).backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()
    with pytest.raises(ValueError, match="one class"):
        sbcl_loss(features, labels, torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="V >= 2"):
        sbcl_loss(features[:, :1], labels, subs)
    with pytest.raises(ValueError, match="class_temperature"):
        sbcl_loss(features, labels, subs, class_temperature=torch.tensor([0.1, 0.1]))


def test_class_temperatures_follow_spread() -> None:
    g = torch.Generator().manual_seed(4)
    base = torch.randn(3, 8, generator=g) * 5
    spreads = [0.05, 0.5, 2.0]
    x = torch.cat([base[c] + s * torch.randn(40, 8, generator=g) for c, s in enumerate(spreads)])
    labels = torch.arange(3).repeat_interleave(40)
    tau = sbcl_class_temperatures(x, labels, 3, temperature=0.1)
    assert tau.shape == (3,) and (tau > 0).all()
    assert tau[0] < tau[1] < tau[2]
    single = torch.tensor([False, True, False])
    tau_single = sbcl_class_temperatures(x, labels, 3, temperature=0.1, single_subclass=single)
    assert float(tau_single[1]) == pytest.approx(0.1)
