"""SparK method: padding and patch size, loss on masked patches only, no leak of masked pixels."""

import pytest
import torch
import torch.nn.functional as F

from contrastkit.data.batch import Batch
from contrastkit.methods.spark import SparK
from contrastkit.nn.resnet import SmallResNet
from contrastkit.nn.sparse_masking import random_patch_mask, upsample_mask
from contrastkit.views.image import build_views


def _method(seed: int = 0, **options) -> SparK:
    torch.manual_seed(seed)
    encoder = SmallResNet(1, widths=(4, 8, 8), stem_stride=2)
    return SparK(encoder, None, decoder_width=16, **options)


def _batch(images: torch.Tensor) -> Batch:
    return Batch(inputs=images, labels=None, index=torch.arange(images.shape[0]))


def _capture(method: SparK) -> dict:
    """Record the decoder's mask and output (with its gradient) on every forward."""
    seen: dict = {}

    def hook(module, inputs, output):
        output.retain_grad()
        seen["visible"], seen["reconstruction"] = inputs[1], output

    method.decoder.register_forward_hook(hook)
    return seen


def test_patch_size_is_the_total_downsampling_and_28px_images_are_padded_to_32():
    method = _method()
    assert method.patch_size == 8
    images = torch.rand(3, 1, 28, 28)
    padded = method.pad(images)
    assert padded.shape == (3, 1, 32, 32)
    torch.testing.assert_close(padded[..., 2:30, 2:30], images)
    assert padded[..., :2, :].abs().sum() == 0 and padded[..., :, 30:].abs().sum() == 0
    method.eval()
    torch.testing.assert_close(method.embed(images), method.encoder(padded))
    assert method.embed(images).shape == (3, 8)


def test_forward_masks_sixty_percent_and_trains_every_part():
    method = _method()
    seen = _capture(method)
    output = method(_batch(torch.rand(4, 1, 28, 28)))
    assert torch.isfinite(output.loss) and output.loss.dim() == 0
    assert seen["visible"].shape == (4, 4, 4)
    assert output.logs["visible_fraction"] == pytest.approx(6 / 16)
    output.loss.backward()
    for name, parameter in method.named_parameters():
        assert parameter.grad is not None, name
    assert method.encoder.stem[0].weight.grad.abs().sum() > 0
    assert all(token.grad.abs().sum() > 0 for token in method.decoder.mask_tokens)


def test_loss_gradient_reaches_masked_patches_only():
    method = _method()
    seen = _capture(method)
    output = method(_batch(torch.rand(4, 1, 28, 28)))
    output.loss.backward()
    grad = seen["reconstruction"].grad
    masked = ~upsample_mask(seen["visible"], (32, 32)).unsqueeze(1)
    assert grad[~masked].abs().max() == 0
    assert (grad[masked] != 0).float().mean() > 0.9


def test_reconstruction_ignores_the_content_of_masked_patches():
    images = torch.rand(4, 1, 28, 28)
    first = _method(seed=1)
    second = _method(seed=1)
    seen_first, seen_second = _capture(first), _capture(second)
    torch.manual_seed(7)  # views=None: the mask is the first random draw of a step
    first(_batch(images))
    visible = random_patch_mask(4, (4, 4), 0.6, generator=torch.Generator().manual_seed(7))
    assert torch.equal(seen_first["visible"], visible)

    padded_mask = upsample_mask(visible, (32, 32))[:, None, 2:30, 2:30]
    other = torch.where(padded_mask, images, torch.rand(4, 1, 28, 28))
    torch.manual_seed(7)
    second(_batch(other))
    torch.testing.assert_close(seen_first["reconstruction"], seen_second["reconstruction"], rtol=0, atol=0)
    # The targets do depend on the masked content, so the loss does too.
    torch.manual_seed(7)
    assert second(_batch(other)).loss.item() != pytest.approx(first(_batch(images)).loss.item())


def test_only_the_first_view_is_applied_and_bf16_autocast_runs():
    torch.manual_seed(0)
    encoder = SmallResNet(1, widths=(4, 8, 8), stem_stride=2)
    views = build_views("crop-flip", image_size=28, channels=1, crop_scale=(0.67, 1.0))
    method = SparK(encoder, views)
    assert method.view is views[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = method(_batch(torch.rand(4, 1, 28, 28)))
    assert torch.isfinite(output.loss)


def test_a_few_steps_lower_the_reconstruction_loss():
    method = _method(seed=2)
    images = F.avg_pool2d(torch.rand(4, 1, 56, 56), 2)  # smooth-ish images
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-2)
    torch.manual_seed(3)
    losses = []
    for _ in range(12):
        output = method(_batch(images))
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        losses.append(output.loss.item())
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


def test_rejects_an_encoder_without_feature_maps_and_bad_ratios():
    with pytest.raises(ValueError, match="feature_maps"):
        SparK(torch.nn.Linear(4, 4), None)
    with pytest.raises(ValueError, match="mask_ratio"):
        _method(mask_ratio=1.0)
