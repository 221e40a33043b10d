"""Loss modules: same values as functional, learnable temperature / scale / bias get gradients and are clamped."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit import functional as CF
from contrastkit.losses import (
    BarlowTwinsLoss,
    ClipLoss,
    DCLLoss,
    InfoNCELoss,
    NegativeCosineLoss,
    NTXentLoss,
    SigLipLoss,
    SupConLoss,
    VICRegLoss,
)

DTYPE = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


A, B = randn(6, 5, seed=1), randn(6, 5, seed=2)
FEATURES = randn(6, 3, 5, seed=3)
LABELS = torch.tensor([0, 1, 0, 2, 1, 2])


@pytest.mark.parametrize(
    ("module", "call", "expected"),
    [
        (InfoNCELoss(temperature=0.2), lambda m: m(A, B), lambda: CF.info_nce(A, B, temperature=0.2)),
        (
            InfoNCELoss(temperature=0.2, symmetric=True),
            lambda m: m(A, B, labels=LABELS),
            lambda: CF.info_nce(A, B, temperature=0.2, symmetric=True, labels=LABELS),
        ),
        (NTXentLoss(temperature=0.3), lambda m: m(A, B), lambda: CF.nt_xent(A, B, 0.3)),
        (
            SupConLoss(temperature=0.1, base_temperature=0.07),
            lambda m: m(FEATURES, LABELS),
            lambda: CF.supcon(FEATURES, LABELS, 0.1, 0.07),
        ),
        (DCLLoss(temperature=0.2), lambda m: m(A, B), lambda: CF.dcl(A, B, 0.2)),
        (DCLLoss(temperature=0.2, weighted=True, sigma=0.3), lambda m: m(A, B), lambda: CF.dclw(A, B, 0.2, 0.3)),
        (BarlowTwinsLoss(lambd=0.1), lambda m: m(A, B), lambda: CF.barlow_twins(A, B, 0.1)),
        (VICRegLoss(sim_coeff=1.0), lambda m: m(A, B), lambda: CF.vicreg(A, B, 1.0)),
        (NegativeCosineLoss(), lambda m: m(A, B), lambda: CF.negative_cosine(A, B)),
        (ClipLoss(init_logit_scale=20.0), lambda m: m(A, B), lambda: CF.clip_loss(A, B, 20.0)),
        (SigLipLoss(), lambda m: m(A, B), lambda: CF.siglip_loss(A, B, 10.0, -10.0)),
    ],
)
def test_module_equals_functional(module, call, expected):
    # learnable scales are stored as float32 logs, so compare to float32 precision
    module = module.to(DTYPE)
    assert torch.allclose(call(module), expected(), atol=0, rtol=1e-6)


def test_weighted_dcl_module_differs_from_unweighted():
    assert not torch.allclose(DCLLoss(weighted=True)(A, B), DCLLoss()(A, B))


def test_info_nce_learnable_temperature_gets_gradient_and_is_clamped():
    fixed = InfoNCELoss(temperature=0.1)
    assert list(fixed.parameters()) == []
    module = InfoNCELoss(temperature=0.1, learnable_temperature=True, min_temperature=0.05).to(DTYPE)
    (parameter,) = list(module.parameters())
    assert abs(float(module.temperature.detach()) - 0.1) < 1e-7
    module(A, B).backward()
    assert parameter.grad is not None and float(parameter.grad.abs()) > 0
    # an optimiser step past the clamp: the temperature used is the bound and no gradient flows
    with torch.no_grad():
        parameter.fill_(math.log(0.001))
    parameter.grad = None
    loss = module(A, B)
    assert abs(float(module.temperature.detach()) - 0.05) < 1e-12
    assert torch.allclose(loss, CF.info_nce(A, B, temperature=0.05), atol=1e-12, rtol=0)
    loss.backward()
    assert float(parameter.grad.abs()) == 0.0


def test_info_nce_learned_temperature_moves_under_optimisation():
    module = InfoNCELoss(temperature=1.0, learnable_temperature=True).to(DTYPE)
    (parameter,) = list(module.parameters())
    z = randn(8, 8, seed=4)
    before = module(z, z + 0.01 * randn(8, 8, seed=5)).item()
    for _ in range(20):  # plain gradient descent
        (grad,) = torch.autograd.grad(module(z, z + 0.01 * randn(8, 8, seed=5)), parameter)
        with torch.no_grad():
            parameter -= 0.5 * grad
    # near-identical views: a lower temperature lowers the loss
    assert float(module.temperature.detach()) < 1.0
    assert module(z, z + 0.01 * randn(8, 8, seed=5)).item() < before


def test_clip_logit_scale_is_stored_as_log_gets_gradient_and_is_clamped():
    module = ClipLoss().to(DTYPE)
    assert abs(float(module.log_logit_scale.detach()) - math.log(1 / 0.07)) < 1e-6
    assert abs(float(module.logit_scale.detach()) - 1 / 0.07) < 1e-5
    module(A, B).backward()
    assert float(module.log_logit_scale.grad.abs()) > 0
    with torch.no_grad():
        module.log_logit_scale.fill_(math.log(500.0))
    module.log_logit_scale.grad = None
    loss = module(A, B)
    assert float(module.logit_scale.detach()) == pytest.approx(100.0)
    assert torch.allclose(loss, CF.clip_loss(A, B, 100.0), atol=1e-12, rtol=0)
    loss.backward()
    assert float(module.log_logit_scale.grad.abs()) == 0.0


def test_clip_not_learnable_has_no_parameters_but_keeps_state():
    module = ClipLoss(init_logit_scale=10.0, learnable=False)
    assert list(module.parameters()) == []
    assert "log_logit_scale" in module.state_dict()


def test_siglip_scale_and_bias_get_gradients_and_scale_is_clamped():
    module = SigLipLoss(max_logit_scale=50.0).to(DTYPE)
    assert {name for name, _ in module.named_parameters()} == {"log_logit_scale", "logit_bias"}
    module(A, B).backward()
    assert float(module.log_logit_scale.grad.abs()) > 0
    assert float(module.logit_bias.grad.abs()) > 0
    with torch.no_grad():
        module.log_logit_scale.fill_(math.log(80.0))
    assert float(module.logit_scale.detach()) == pytest.approx(50.0)
    module.zero_grad()
    module(A, B).backward()
    assert float(module.log_logit_scale.grad.abs()) == 0.0
    assert float(module.logit_bias.grad.abs()) > 0
    frozen = SigLipLoss(learnable=False)
    assert list(frozen.parameters()) == []


@pytest.mark.parametrize(
    "build",
    [
        lambda: InfoNCELoss(temperature=0.0),
        lambda: InfoNCELoss(temperature=0.001, min_temperature=0.01),
        lambda: NTXentLoss(temperature=-1.0),
        lambda: SupConLoss(base_temperature=0.0),
        lambda: DCLLoss(sigma=0.0),
        lambda: ClipLoss(init_logit_scale=0.0),
        lambda: ClipLoss(init_logit_scale=200.0),
        lambda: SigLipLoss(init_logit_bias=float("nan")),
    ],
)
def test_bad_hyper_parameters_raise(build):
    with pytest.raises(ValueError):
        build()


def test_modules_validate_inputs():
    with pytest.raises(ValueError, match="finite"):
        ClipLoss()(torch.full((4, 3), float("nan")), torch.randn(4, 3))
    with pytest.raises(ValueError, match="rows"):
        InfoNCELoss()(torch.randn(4, 3), torch.randn(5, 3))
