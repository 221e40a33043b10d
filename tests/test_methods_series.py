"""TS2Vec and AutoTCL: losses, weight averaging, the augmenter's isolation, the optimiser's lr scales."""

from __future__ import annotations

import pytest
import torch

from contrastkit.data.batch import Batch
from contrastkit.methods import build_method
from contrastkit.methods.autotcl import AugmentationNetwork
from contrastkit.nn import DilatedConvEncoder
from contrastkit.train.optim import build_optimizer
from contrastkit.views.series import build_series_views


def _series(batch: int = 6, channels: int = 2, length: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 6.28, length)
    phase = torch.rand(batch, channels, 1, generator=g) * 6.28
    return torch.sin(t + phase) + 0.1 * torch.randn(batch, channels, length, generator=g)


def _method(name: str, channels: int = 2, **options: object):
    torch.manual_seed(0)
    encoder = DilatedConvEncoder(channels, output_dim=8, hidden_dim=8, depth=2)
    return build_method(name, encoder, build_series_views("identity"), **options)


@pytest.mark.parametrize("name", ["ts2vec", "autotcl"])
def test_step_trains_the_encoder(name: str) -> None:
    method = _method(name)
    x = _series()
    x[0, :, 20:] = float("nan")  # an unequal-length row
    out = method(Batch(inputs=x))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in method.timestamp_encoder.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    # NaN padding must not leak into any gradient (AutoTCL multiplies learned scales with the series).
    assert all(torch.isfinite(p.grad).all() for p in method.parameters() if p.grad is not None)
    assert method.embed(x).shape == (6, 8)


def test_embed_uses_the_equal_weight_average_of_all_steps() -> None:
    method = _method("ts2vec")
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1)
    snapshots = []
    for step in range(3):
        optimizer.zero_grad()
        method(Batch(inputs=_series(seed=step))).loss.backward()
        optimizer.step()
        method.on_step_end(step, 3)
        snapshots.append([p.detach().clone() for p in method.encoder.parameters()])
    for i, average in enumerate(method.averaged.parameters()):
        torch.testing.assert_close(average, sum(s[i] for s in snapshots) / 3)
    method.eval()
    x = _series(seed=9)
    torch.testing.assert_close(method.embed(x), method.averaged(x))
    assert not torch.allclose(method.embed(x), method.encoder(x))


def test_without_averaging_embed_is_the_encoder() -> None:
    method = _method("ts2vec", average_weights=False).eval()
    x = _series()
    torch.testing.assert_close(method.embed(x), method.encoder(x))


def test_augmenter_loss_reaches_only_the_augmenter() -> None:
    method = _method("autotcl")
    x = _series()
    v, keep, _ = method.augmenter(x)
    loss, logs = method.augmenter_loss(x, v, keep)
    loss.backward()
    assert all(p.grad is None for p in method.timestamp_encoder.parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in method.augmenter.parameters())
    assert logs["aug_mmd"] >= 0


def test_augmenter_runs_every_n_steps() -> None:
    method = _method("autotcl", augmenter_every=2)
    method.on_step_end(0, 10)  # steps_done = 1: not an augmenter step
    out = method(Batch(inputs=_series()))
    out.loss.backward()
    assert "aug_mmd" not in out.logs
    assert all(p.grad is None for p in method.augmenter.parameters())  # v is detached in the encoder's loss


def test_hard_concrete_mask_is_binary_with_a_soft_gradient() -> None:
    torch.manual_seed(0)
    network = AugmentationNetwork(2)
    x = _series()
    v, keep, mask = network(x)
    assert set(torch.unique(mask.detach()).tolist()) <= {0.0, 1.0}
    assert ((keep > 0) & (keep < 1)).all()
    # v = g * m * x with g in (0, 1): |v| <= |x| and v is 0 where the mask drops a timestamp
    assert (v.abs() <= x.abs() + 1e-6).all()
    assert (v.detach()[mask.detach().unsqueeze(1).expand_as(v) == 0] == 0).all()
    v.sum().backward()
    assert float(network.keep_head.weight.grad.abs().sum()) > 0  # straight-through reaches the keep logits


def test_optimizer_applies_lr_scales() -> None:
    method = _method("autotcl", augmenter_lr_scale=10.0)
    optimizer = build_optimizer("adamw", method, lr=1e-3, weight_decay=0.01, lr_scales=method.lr_scales())
    augmenter = {id(p) for p in method.augmenter.parameters()}
    for group in optimizer.param_groups:
        in_augmenter = {id(p) in augmenter for p in group["params"]}
        assert len(in_augmenter) == 1
        assert group["lr"] == pytest.approx(1e-2 if in_augmenter.pop() else 1e-3)
    counted = sum(len(g["params"]) for g in optimizer.param_groups)
    assert counted == sum(1 for p in method.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="positive lr scales"):
        build_optimizer("adamw", method, lr=1e-3, lr_scales={"augmenter.": 0.0})


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="per-timestamp series encoder"):
        build_method("ts2vec", torch.nn.Linear(3, 3), build_series_views("identity"))
    method = _method("ts2vec")
    with pytest.raises(ValueError, match=r"expected series batches \[B, C, T\]"):
        method(Batch(inputs=torch.randn(4, 10)))
    with pytest.raises(ValueError, match="shorter than the smallest crop"):
        method(Batch(inputs=torch.randn(4, 2, 1)))
    with pytest.raises(ValueError, match="alpha in"):
        _method("ts2vec", alpha=2.0)
