"""SepCLR method: loss equals the functional on its own heads, spaces, labels, learning the split."""

import pytest
import torch
from torch import nn

from contrastkit.data import Batch
from contrastkit.functional.sepclr import sepclr_loss
from contrastkit.methods.sepclr import SepCLR
from contrastkit.nn.registry import build_encoder
from contrastkit.utils.seed import seed_everything


def _method(**options) -> SepCLR:
    seed_everything(0)
    encoder = build_encoder("mlp", in_channels=1, image_size=8, hidden_dims=(32,), output_dim=16)
    return SepCLR(encoder, (nn.Identity(), nn.Identity()), common_dim=4, salient_dim=3, head_hidden_dim=16, **options)


def _batch(n: int = 12) -> Batch:
    generator = torch.Generator().manual_seed(0)
    return Batch(torch.rand(n, 1, 8, 8, generator=generator), torch.arange(n) % 3)


def test_forward_equals_functional_on_the_heads():
    method = _method(jem_weight=2.0)
    batch = _batch()
    output = method(batch)
    c_a, c_b, s_a, s_b = method.embeddings(batch)
    expected, parts = sepclr_loss(c_a, c_b, s_a, s_b, batch.labels, jem_weight=2.0)
    torch.testing.assert_close(output.loss, expected)
    assert set(output.logs) == {"loss", "common", "salient", "info_less", "jem"}
    assert output.logs["jem"] == pytest.approx(parts["jem"].item(), rel=1e-5)


def test_gradients_reach_both_backbones_and_spaces_are_separate():
    method = _method()
    assert method.salient_encoder is not method.encoder
    first_common = next(method.encoder.parameters())
    first_salient = next(method.salient_encoder.parameters())
    assert not torch.equal(first_common, first_salient)  # re-initialised copy
    method(_batch()).loss.backward()
    for net in (method.encoder, method.salient_encoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_embed_is_common_then_salient():
    method = _method().eval()
    x = _batch().inputs
    embedded = method.embed(x)
    assert embedded.shape == (12, 7) and not embedded.requires_grad
    torch.testing.assert_close(embedded[:, :4], method.common(x))
    torch.testing.assert_close(embedded[:, 4:], method.salient(x))


def test_needs_labels():
    method = _method()
    assert method.needs_labels
    with pytest.raises(ValueError, match="labels"):
        method(Batch(torch.rand(4, 1, 8, 8), None))


def test_training_pushes_background_salient_codes_to_zero():
    # background: noise images; target: the same plus a bright top row. The information-less
    # term drives the salient head's output of background images to 0 while target images
    # keep spread-out salient codes.
    torch.manual_seed(0)
    method = _method()
    optimizer = torch.optim.Adam(method.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(48, 1, 8, 8, generator=generator) * 0.5
    labels = (torch.arange(48) % 2).long()
    images[labels == 1, :, 0, :] = 1.0
    batch = Batch(images, labels)
    first = method(batch).logs["info_less"]
    for _ in range(40):
        loss = method(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        _, _, salient_a, _ = method.embeddings(batch)
        output = method(batch)
    norms = salient_a.norm(dim=1)
    assert output.logs["info_less"] < 0.05 * first
    assert norms[labels == 0].mean() < 0.2 * norms[labels == 1].mean()


def test_bad_sizes():
    encoder = build_encoder("mlp", in_channels=1, image_size=8, hidden_dims=(8,), output_dim=8)
    with pytest.raises(ValueError, match="salient_dim"):
        SepCLR(encoder, (nn.Identity(), nn.Identity()), salient_dim=0)
