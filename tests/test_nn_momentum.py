"""MomentumEncoder: EMA arithmetic, cosine schedule, frozen copy, buffers, state_dict."""

import math

import pytest
import torch
from torch import nn

from contrastkit.nn import MomentumEncoder


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def test_copy_is_frozen_and_independent():
    online = _net()
    target = MomentumEncoder(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    for a, b in zip(online.parameters(), target.parameters()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    out = target(torch.randn(5, 4))
    assert not out.requires_grad and out.grad_fn is None


def test_update_at_step_zero_is_exact_ema():
    online = _net()
    target = MomentumEncoder(online, base_momentum=0.99)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    old = [p.clone() for p in target.parameters()]
    pointers = [p.data_ptr() for p in target.parameters()]
    tau = target.update(online, step=0, total_steps=100)
    assert tau == 0.99
    for before, new, after in zip(old, online.parameters(), target.parameters()):
        assert torch.equal(after, 0.99 * before + (1 - 0.99) * new)
        assert not torch.equal(after, before)
    assert [p.data_ptr() for p in target.parameters()] == pointers  # in place


def test_schedule_endpoints_and_monotonic():
    target = MomentumEncoder(nn.Linear(2, 2), base_momentum=0.99, final_momentum=1.0)
    total = 50
    values = [target.momentum_at(k, total) for k in range(total + 1)]
    assert values[0] == pytest.approx(0.99, abs=1e-12)
    assert values[-1] == pytest.approx(1.0, abs=1e-12)
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[1] > values[0]
    # Midpoint of the cosine: halfway between base and final.
    assert target.momentum_at(25, 50) == pytest.approx(0.995, abs=1e-12)
    # BYOL's formula at an arbitrary step.
    k, big_k = 7, 50
    assert values[k] == pytest.approx(1 - (1 - 0.99) * (math.cos(math.pi * k / big_k) + 1) / 2)
    assert target.momentum_at(80, 50) == values[-1]  # clamped past the end
    constant = MomentumEncoder(nn.Linear(2, 2), base_momentum=0.999, final_momentum=0.999)
    assert constant.momentum_at(10, 20) == pytest.approx(0.999)


def test_final_momentum_one_freezes_the_copy():
    online = _net()
    target = MomentumEncoder(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    target.update(online, step=10, total_steps=10)
    for a, b in zip(before, target.parameters()):
        assert torch.equal(a, b)


def test_buffers_follow_online_module():
    online = _net()
    target = MomentumEncoder(online)
    online.train()
    online(torch.randn(16, 4) * 3 + 1)  # moves BN running statistics
    bn_online, bn_target = online[1], target.module[1]
    assert not torch.equal(bn_online.running_mean, bn_target.running_mean)
    target.update(online, step=0, total_steps=10)
    assert torch.equal(bn_online.running_mean, bn_target.running_mean)
    assert torch.equal(bn_online.running_var, bn_target.running_var)
    assert int(bn_target.num_batches_tracked) == 1


def test_no_grad_flows_into_copy_and_optimizer_skips_it():
    online = _net()
    owner = nn.ModuleDict({"online": online, "target": MomentumEncoder(online)})
    x = torch.randn(6, 4)
    loss = (owner["online"](x) - owner["target"](x)).pow(2).sum()
    loss.backward()
    assert all(p.grad is None for p in owner["target"].parameters())
    assert all(p.grad is not None for p in owner["online"].parameters())


def test_state_dict_round_trip():
    online = _net()
    owner = nn.ModuleDict({"online": online, "target": MomentumEncoder(online)})
    with torch.no_grad():
        for p in online.parameters():
            p.mul_(2)
    owner["target"].update(online, 0, 10)
    state = owner.state_dict()
    assert any(key.startswith("target.module.") for key in state)
    fresh_online = _net()
    fresh = nn.ModuleDict({"online": fresh_online, "target": MomentumEncoder(fresh_online)})
    fresh.load_state_dict(state)
    for a, b in zip(owner["target"].parameters(), fresh["target"].parameters()):
        assert torch.equal(a, b)


def test_errors():
    with pytest.raises(ValueError, match="base_momentum"):
        MomentumEncoder(nn.Linear(2, 2), base_momentum=1.5)
    target = MomentumEncoder(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="total_steps"):
        target.momentum_at(0, 0)
    with pytest.raises(ValueError, match="does not match"):
        target.update(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), 0, 10)
    with pytest.raises(ValueError, match="shape mismatch"):
        target.update(nn.Linear(2, 3), 0, 10)
