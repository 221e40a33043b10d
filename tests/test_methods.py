"""Methods: the forward/embed/on_step_end contract, method-specific state, bad input."""

from __future__ import annotations

import pytest
import torch

from contrastkit.data import Batch
from contrastkit.methods import build_method, method_options
from contrastkit.modalities import MODALITIES, methods_for
from contrastkit.nn.registry import build_encoder
from contrastkit.views.image import build_views
from tests.conftest import make_method

#: Methods that read the encoder's intermediate maps (``feature_maps``) need a convolutional encoder.
NEEDS_FEATURE_MAPS = {"obow", "spark"}


def _make(name: str):
    options = {"queue_size": 32} if name in ("moco", "mochi") else {}
    return make_method(name, encoder="resnet" if name in NEEDS_FEATURE_MAPS else "mlp", **options)


def _batch(n: int = 16, labels: bool = True) -> Batch:
    generator = torch.Generator().manual_seed(0)
    return Batch(torch.rand(n, 1, 8, 8, generator=generator), torch.arange(n) % 3 if labels else None)


@pytest.mark.parametrize("name", methods_for(MODALITIES["image"]))
def test_forward_gives_finite_loss_and_gradients_reach_the_encoder(name):
    method = _make(name)
    output = method(_batch())
    assert output.loss.dim() == 0 and torch.isfinite(output.loss)
    assert "loss" in output.logs and isinstance(output.logs["loss"], float)
    output.loss.backward()
    grads = [p.grad for p in method.encoder.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", methods_for(MODALITIES["image"]))
def test_embed_is_the_unaugmented_backbone(name):
    method = _make(name).eval()
    x = _batch().inputs
    embedded = method.embed(x)
    if name == "sepclr":  # two backbones: the representation is [common, salient]
        assert torch.equal(embedded, torch.cat([method.common(x), method.salient(x)], dim=1))
    else:
        assert embedded.shape == (16, method.encoder.output_dim)
        assert torch.equal(embedded, method.encoder(x))
    assert not embedded.requires_grad


def test_moco_enqueues_keys_after_the_step_only():
    method = make_method("moco", queue_size=32)
    method(_batch())
    assert method.queue.negatives().shape[0] == 0  # nothing enqueued during forward
    method.on_step_end(0, 10)
    assert method.queue.negatives().shape[0] == 16
    method(_batch())
    method.on_step_end(1, 10)
    assert method.queue.negatives().shape[0] == 32


@pytest.mark.parametrize("name,target_attr", [("byol", "target"), ("moco", "key_encoder")])
def test_momentum_copy_moves_towards_online_weights(name, target_attr):
    method = make_method(name, **({"queue_size": 32} if name == "moco" else {}))
    target = getattr(method, target_attr)
    with torch.no_grad():
        for parameter in method.encoder.parameters():
            parameter.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    method(_batch())
    method.on_step_end(0, 100)
    after = list(target.parameters())
    assert all(not p.requires_grad for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_simsiam_and_byol_stop_gradient_on_targets():
    method = make_method("byol")
    method(_batch()).loss.backward()
    assert all(p.grad is None for p in method.target.parameters())


def test_supcon_needs_labels():
    method = make_method("supcon")
    with pytest.raises(ValueError, match="labels"):
        method(_batch(labels=False))


def test_supervised_loss_uses_labels():
    method = make_method("supcon")
    batch = _batch()
    torch.manual_seed(0)
    with_labels = method(batch).loss
    torch.manual_seed(0)
    unique = method(Batch(batch.inputs, torch.arange(16))).loss
    assert not torch.allclose(with_labels, unique)


@pytest.mark.parametrize("name", methods_for(MODALITIES["image"]))
def test_batch_of_one_is_refused(name):
    method = _make(name)
    with pytest.raises(ValueError, match="at least 2"):
        method(_batch(n=1))


def test_unknown_method_and_option_errors():
    encoder = build_encoder("mlp", in_channels=1, image_size=8, output_dim=8)
    views = build_views("simclr", image_size=8, channels=1)
    with pytest.raises(ValueError, match="unknown method 'simclrr'.*simclr"):
        build_method("simclrr", encoder, views)
    with pytest.raises(ValueError, match="unknown option.*tempreature"):
        build_method("simclr", encoder, views, tempreature=0.1)
    assert method_options("simclr")["temperature"] == 0.5
