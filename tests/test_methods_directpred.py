"""DirectPred(SimSiam): closed-form predictor updated in training only, SimSiam loss, no trained predictor."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.data import Batch
from contrastkit.functional import negative_cosine
from contrastkit.methods.directpred import DirectPred
from contrastkit.methods.simsiam import SimSiam
from contrastkit.nn.direct_predictor import DirectPredictor, direct_predictor_weight
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


def _method(**options) -> DirectPred:
    seed_everything(0)
    encoder = build_encoder("mlp", in_channels=1, image_size=8, hidden_dims=(64,), output_dim=32)
    views = (nn.Identity(), nn.Identity()) if options.pop("identity_views", False) else build_views(
        "simclr", image_size=8, channels=1
    )
    return DirectPred(encoder, views, projection_dim=24, **options)


def test_step_runs_loss_finite_and_only_encoder_projector_train():
    method = _method()
    assert isinstance(method.predictor, DirectPredictor)
    assert not any(name.startswith("predictor.") for name, _ in method.named_parameters())
    output = method(_batch())
    assert output.loss.dim() == 0 and torch.isfinite(output.loss) and -1 <= output.loss.item() <= 1
    output.loss.backward()
    grads = [p.grad for p in method.encoder.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert method.predictor.weight.grad is None


def test_training_step_updates_f_from_both_views_then_predicts_with_w():
    method = _method(identity_views=True, rho=0.3, eps=0.02)
    batch = _batch()
    output = method(batch)
    assert int(method.predictor.num_updates) == 1
    with torch.no_grad():
        z = method.projector(method.encoder(torch.cat([batch.inputs, batch.inputs])))
    assert torch.allclose(method.predictor.correlation, z.T @ z / z.shape[0], atol=1e-5)
    weight = direct_predictor_weight(z.T @ z / z.shape[0], 0.02)
    assert torch.allclose(method.predictor.weight, weight, atol=1e-5)
    p = z @ weight
    expected = 0.5 * (negative_cosine(p[:16], z[16:]) + negative_cosine(p[16:], z[:16]))
    assert output.loss.item() == pytest.approx(expected.item(), abs=1e-5)


def test_eval_mode_does_not_update_the_predictor():
    method = _method()
    method(_batch())
    state = {k: v.clone() for k, v in method.predictor.state_dict().items()}
    method.eval()
    method(_batch())
    for key, value in method.predictor.state_dict().items():
        assert torch.equal(value, state[key])


def test_same_backbone_and_projector_as_simsiam_for_the_same_seed():
    ours = _method()
    seed_everything(0)
    encoder = build_encoder("mlp", in_channels=1, image_size=8, hidden_dims=(64,), output_dim=32)
    simsiam = SimSiam(encoder, build_views("simclr", image_size=8, channels=1), projection_dim=24)
    for (name, a), (_, b) in zip(ours.projector.named_parameters(), simsiam.projector.named_parameters()):
        assert torch.equal(a, b), name
    assert isinstance(ours.projector.layers[-1], nn.BatchNorm1d)
    assert not isinstance(_method(last_batch_norm=False).projector.layers[-1], nn.BatchNorm1d)


def test_a_few_steps_train_without_nan_and_the_option_errors():
    method = _method(freq=2)
    for _ in range(4):
        output = method(_batch(32))
        method.zero_grad()
        output.loss.backward()
        _sgd_step(method)
        assert torch.isfinite(output.loss)
    assert int(method.predictor.num_updates) == 4
    assert not method.supports_grad_cache
    with pytest.raises(ValueError, match="rho"):
        _method(rho=1.5)
    with pytest.raises(ValueError, match="at least 2"):
        method(_batch(1))
