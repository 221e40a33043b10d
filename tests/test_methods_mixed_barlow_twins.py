"""MixedBarlowTwins: loss = Barlow Twins + the mixup regulariser, options, gradients, grad-cache refusal."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from contrastkit.data import Batch
from contrastkit.functional import barlow_twins
from contrastkit.functional.mixing import mix_inputs, mixed_barlow_twins_regularizer
from contrastkit.methods.barlow_twins import BarlowTwins
from contrastkit.methods.mixed_barlow_twins import MixedBarlowTwins
from contrastkit.nn.registry import build_encoder
from contrastkit.utils.seed import seed_everything
from contrastkit.views.image import build_views


def _sgd_step(method: nn.Module, lr: float = 0.05) -> None:
    # A hand-written step: torch.optim's first step imports ~20 s of machinery on this CPU.
    with torch.no_grad():
        for parameter in method.parameters():
            if parameter.grad is not None:
                parameter -= lr * parameter.grad


def _batch(n: int = 16) -> Batch:
    generator = torch.Generator().manual_seed(0)
    return Batch(torch.rand(n, 1, 8, 8, generator=generator), None)


def _encoder() -> nn.Module:
    return build_encoder("mlp", in_channels=1, image_size=8, hidden_dims=(64,), output_dim=32)


def _method(views=None, **options) -> MixedBarlowTwins:
    seed_everything(0)
    encoder = _encoder()
    views = views or build_views("simclr", image_size=8, channels=1)
    return MixedBarlowTwins(encoder, views, projection_hidden_dim=64, projection_dim=48, **options)


class _Shift(nn.Module):
    """A deterministic 'augmentation', so the test can recompute the step by hand."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1 + self.shift) + self.shift


def test_forward_finite_loss_logs_and_gradients_reach_the_encoder():
    method = _method()
    output = method(_batch())
    assert output.loss.dim() == 0 and torch.isfinite(output.loss)
    assert {"loss", "loss_bt", "loss_mix", "alpha"} <= set(output.logs)
    assert output.logs["loss"] == pytest.approx(output.logs["loss_bt"] + output.logs["loss_mix"], rel=1e-5)
    assert output.logs["loss_mix"] > 0 and 0 <= output.logs["alpha"] <= 1
    output.loss.backward()
    grads = [p.grad for p in method.encoder.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_loss_is_barlow_twins_plus_the_regularizer_recomputed_by_hand():
    views = (_Shift(0.1), _Shift(-0.2))
    method = _method(views, mix_weight=3.0, lambd=0.01)
    batch = _batch()
    torch.manual_seed(123)
    output = method(batch)

    torch.manual_seed(123)  # the same mixing draw
    x_a, x_b = views[0](batch.inputs), views[1](batch.inputs)
    x_m, permutation, alpha = mix_inputs(x_a, x_b)
    assert alpha == output.logs["alpha"]
    z_a, z_b, z_m = (method.projector(method.encoder(x)) for x in (x_a, x_b, x_m))
    expected_bt = barlow_twins(z_a, z_b, lambd=0.01)
    expected_mix = mixed_barlow_twins_regularizer(z_a, z_b, z_m, permutation, alpha, lambd=0.01, mix_weight=3.0)
    assert torch.allclose(output.loss, expected_bt + expected_mix, rtol=1e-5)
    assert output.logs["loss_mix"] == pytest.approx(expected_mix.item(), rel=1e-5)


def test_mix_weight_zero_is_barlow_twins():
    views = (_Shift(0.1), _Shift(-0.2))
    mixed = _method(views, mix_weight=0.0)
    seed_everything(0)
    plain = BarlowTwins(_encoder(), views, projection_hidden_dim=64, projection_dim=48)
    plain.load_state_dict(mixed.state_dict())
    batch = _batch()
    assert torch.allclose(mixed(batch).loss, plain(batch).loss, rtol=1e-5)


def test_options_keep_every_barlow_twins_default_and_add_mix_weight():
    def keyword_defaults(cls):
        params = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}

    ours, base = keyword_defaults(MixedBarlowTwins), keyword_defaults(BarlowTwins)
    assert {k: ours[k] for k in base} == base
    assert ours["mix_weight"] == 4.0 and set(ours) - set(base) == {"mix_weight"}


def test_gradient_caching_is_refused_and_bad_options_raise():
    method = _method()
    assert not method.supports_grad_cache
    with pytest.raises(NotImplementedError):
        method.embeddings(_batch())
    with pytest.raises(ValueError, match="mix_weight"):
        _method(mix_weight=-1.0)
    with pytest.raises(ValueError, match="at least 2"):
        method(_batch(1))


def test_a_few_steps_train_without_nan():
    method = _method()
    losses = []
    for _ in range(4):
        output = method(_batch(32))
        method.zero_grad()
        output.loss.backward()
        _sgd_step(method)
        losses.append(output.loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
