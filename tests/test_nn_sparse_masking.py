"""SparK pieces against loop references and the information-flow properties of sparse convolution."""

import copy

import pytest
import torch
from torch import nn

from contrastkit.nn.resnet import SmallResNet
from contrastkit.nn.sparse_masking import (
    SparKDecoder,
    SparseEncoding,
    masked_patch_loss,
    normalized_patch_targets,
    patchify,
    random_patch_mask,
    sparse_feature_maps,
    stage_geometry,
    upsample_mask,
)


def _encoder(seed: int = 0) -> SmallResNet:
    torch.manual_seed(seed)
    return SmallResNet(1, widths=(4, 8, 8), stem_stride=2)


def _patch_of(images, b, row, col, p):
    """Patch (row, col) of image b as a (row-in-patch, column-in-patch, channel) vector, by hand."""
    values = []
    for i in range(p):
        for j in range(p):
            for c in range(images.shape[1]):
                values.append(float(images[b, c, row * p + i, col * p + j]))
    return torch.tensor(values, dtype=torch.float64)


# -- masks ---------------------------------------------------------------------------------------


def test_random_patch_mask_keeps_the_same_number_of_cells_per_image():
    generator = torch.Generator().manual_seed(0)
    visible = random_patch_mask(64, (4, 4), 0.6, generator=generator)
    assert visible.shape == (64, 4, 4) and visible.dtype == torch.bool
    assert (visible.flatten(1).sum(1) == round(16 * 0.4)).all()  # 6 visible, 10 masked
    # Different images get different masks, and every cell is visible sometimes.
    assert len({tuple(row.tolist()) for row in visible.flatten(1)}) > 50
    assert visible.any(0).all()
    again = random_patch_mask(64, (4, 4), 0.6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(visible, again)


def test_random_patch_mask_keeps_at_least_one_cell_and_rejects_bad_ratios():
    assert random_patch_mask(3, (1, 2), 0.99).flatten(1).sum(1).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="mask_ratio"):
        random_patch_mask(2, (4, 4), 1.0)


def test_upsample_mask_matches_a_loop():
    visible = random_patch_mask(2, (2, 3), 0.5, generator=torch.Generator().manual_seed(1))
    big = upsample_mask(visible, (8, 6))
    for b in range(2):
        for y in range(8):
            for x in range(6):
                assert bool(big[b, y, x]) == bool(visible[b, y // 4, x // 2])
    with pytest.raises(ValueError, match="multiple"):
        upsample_mask(visible, (7, 6))


# -- targets and loss ----------------------------------------------------------------------------


def test_patchify_and_per_patch_normalisation_match_a_loop():
    images = torch.rand(2, 3, 8, 12, dtype=torch.float64)
    patches = patchify(images, 4)
    targets = normalized_patch_targets(images, 4, eps=1e-6)
    assert patches.shape == targets.shape == (2, 6, 48)
    for b in range(2):
        for row in range(2):
            for col in range(3):
                vector = _patch_of(images, b, row, col, 4)
                index = row * 3 + col
                torch.testing.assert_close(patches[b, index], vector)
                # Unbiased variance over the p*p*C values, as in SparK / MAE's norm_pix_loss.
                mean = vector.sum() / len(vector)
                var = ((vector - mean) ** 2).sum() / (len(vector) - 1)
                torch.testing.assert_close(targets[b, index], (vector - mean) / (var + 1e-6) ** 0.5)


def test_masked_patch_loss_matches_a_loop_and_ignores_visible_patches():
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(3, 1, 8, 8, generator=generator, dtype=torch.float64)
    reconstruction = torch.randn(3, 1, 8, 8, generator=generator, dtype=torch.float64)
    visible = random_patch_mask(3, (2, 2), 0.5, generator=generator)
    loss = masked_patch_loss(reconstruction, images, visible)

    total, count = 0.0, 0
    for b in range(3):
        for row in range(2):
            for col in range(2):
                if visible[b, row, col]:
                    continue
                target = _patch_of(images, b, row, col, 4)
                target = (target - target.mean()) / (target.var() + 1e-6).sqrt()
                total += float(((_patch_of(reconstruction, b, row, col, 4) - target) ** 2).mean())
                count += 1
    assert count == 6
    assert loss.item() == pytest.approx(total / count, rel=1e-10)

    # Changing the reconstruction inside visible patches does not change the loss ...
    cell_mask = upsample_mask(visible, (8, 8)).unsqueeze(1)
    changed = torch.where(cell_mask, reconstruction + 5.0, reconstruction)
    assert masked_patch_loss(changed, images, visible).item() == pytest.approx(loss.item(), rel=1e-12)
    # ... inside masked patches it does.
    changed = torch.where(cell_mask, reconstruction, reconstruction + 5.0)
    assert masked_patch_loss(changed, images, visible).item() > loss.item() + 1.0
    # Raw-pixel targets are the plain MSE over masked patches.
    raw = masked_patch_loss(reconstruction, images, visible, normalize_targets=False)
    squared = ((reconstruction - images) ** 2)[~cell_mask.expand_as(images)]
    assert raw.item() == pytest.approx(float(squared.mean()), rel=1e-10)


# -- sparse convolution and batch norm -----------------------------------------------------------


def test_two_sparse_convolutions_re_zero_between_layers_unlike_dense_ones():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 2, 3, padding=1))
    x = torch.rand(2, 1, 8, 8)
    visible = torch.tensor([[[True, False], [False, True]], [[False, True], [True, True]]])
    mask = upsample_mask(visible, (8, 8)).unsqueeze(1).float()
    with SparseEncoding(net, visible):
        sparse = net(x * mask)
    # Submanifold semantics: every layer's output is re-zeroed at masked positions.
    reference = net[1](net[0](x * mask) * mask) * mask
    torch.testing.assert_close(sparse, reference)
    # A dense network on the masked image leaks visible pixels into masked positions and back.
    dense = net(x * mask) * mask
    assert (dense - sparse).abs().max() > 1e-3
    # The modules are restored on exit.
    assert not net[0]._forward_hooks and torch.equal(net(x), net[1](net[0](x)))


def test_sparse_batch_norm_uses_visible_statistics_only():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, 4, 4) * 2 + 1
    visible = torch.tensor([[[True, False], [False, False]], [[True, True], [False, True]]])
    with SparseEncoding(bn, visible):
        out = bn(x)
    mask = upsample_mask(visible, (4, 4))
    rows = x.permute(0, 2, 3, 1)[mask]  # [N_visible, C]
    mean, var = rows.mean(0), rows.var(0, unbiased=False)
    expected = (x - mean[:, None, None]) / (var[:, None, None] + bn.eps).sqrt()
    expected = (expected * bn.weight[:, None, None] + bn.bias[:, None, None]) * mask.unsqueeze(1)
    torch.testing.assert_close(out, expected)
    # Running statistics move towards the visible mean and unbiased variance.
    torch.testing.assert_close(bn.running_mean, 0.1 * mean)
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * rows.var(0, unbiased=True))
    assert int(bn.num_batches_tracked) == 1
    # In eval mode the running statistics are used.
    bn.eval()
    with SparseEncoding(bn, visible):
        out = bn(x)
    torch.testing.assert_close(out, bn(x) * mask.unsqueeze(1))


def test_sparse_resnet_maps_are_zero_at_masked_positions_and_ignore_masked_pixels():
    encoder = _encoder()
    widths, factors = stage_geometry(encoder, 1)
    assert widths == [4, 8, 8] and factors == [2, 4, 8]  # patch size 8: one cell per last-stage location
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(4, 1, 32, 32, generator=generator)
    visible = random_patch_mask(4, (4, 4), 0.6, generator=generator)
    encoder.train()  # batch statistics: the strongest coupling between positions
    twin = copy.deepcopy(encoder)
    maps = sparse_feature_maps(encoder, images, visible)
    for feature in maps:
        mask = upsample_mask(visible, feature.shape[-2:]).unsqueeze(1)
        assert (feature.masked_select(~mask) == 0).all()
        assert feature.masked_select(mask).abs().sum() > 0

    # New content in masked patches changes nothing: not the maps, not the BN running statistics.
    pixel_mask = upsample_mask(visible, (32, 32)).unsqueeze(1)
    other = torch.where(pixel_mask, images, torch.rand(4, 1, 32, 32, generator=generator))
    again = sparse_feature_maps(twin, other, visible)
    for first, second in zip(maps, again):
        torch.testing.assert_close(first, second, rtol=0, atol=0)
    for name, buffer in encoder.named_buffers():
        torch.testing.assert_close(buffer, dict(twin.named_buffers())[name], rtol=0, atol=0)
    # ... while new content in a visible patch does change the maps.
    visible_pixel = pixel_mask[0, 0].nonzero()[0]
    other[0, 0, visible_pixel[0], visible_pixel[1]] += 1.0
    moved = sparse_feature_maps(copy.deepcopy(twin), other, visible)
    assert (moved[0] - maps[0]).abs().max() > 0


def test_visible_cells_that_do_not_touch_share_no_information():
    # With 3x3 (and stride-2 3x3) convolutions re-zeroed after every layer, information moves only
    # between 8-adjacent visible cells: isolated visible patches are encoded independently. A dense
    # network on the masked image does not have this property (masked positions relay information).
    encoder = _encoder(1)
    encoder.eval()  # running statistics: no coupling through batch statistics
    visible = torch.zeros(1, 4, 4, dtype=torch.bool)
    visible[0, 0, 0] = visible[0, 3, 3] = visible[0, 0, 3] = True
    generator = torch.Generator().manual_seed(4)
    images = torch.rand(1, 1, 32, 32, generator=generator)
    changed = images.clone()
    changed[..., :8, :8] = torch.rand(1, 1, 8, 8, generator=generator)  # only cell (0, 0) changes
    with torch.no_grad():
        before = sparse_feature_maps(encoder, images, visible)
        after = sparse_feature_maps(encoder, changed, visible)
    for first, second in zip(before, after):
        scale = first.shape[-1] // 4
        far = (slice(None), slice(None), slice(3 * scale, None), slice(3 * scale, None))
        torch.testing.assert_close(first[far], second[far], rtol=0, atol=0)  # cell (3, 3)
        side = (slice(None), slice(None), slice(0, scale), slice(3 * scale, None))
        torch.testing.assert_close(first[side], second[side], rtol=0, atol=0)  # cell (0, 3)
        near = (slice(None), slice(None), slice(0, scale), slice(0, scale))
        assert (first[near] - second[near]).abs().max() > 0  # cell (0, 0) itself does change

    pixel_mask = upsample_mask(visible, (32, 32)).unsqueeze(1).float()
    with torch.no_grad():
        dense_before = encoder.feature_maps(images * pixel_mask)[-1][..., 3, 3]
        dense_after = encoder.feature_maps(changed * pixel_mask)[-1][..., 3, 3]
    assert (dense_before - dense_after).abs().max() > 1e-4


def test_sparse_encoding_restores_the_encoder_even_after_an_error():
    encoder = _encoder()
    encoder.eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        before = encoder(x)
    with pytest.raises(RuntimeError, match="boom"):
        with SparseEncoding(encoder, random_patch_mask(2, (4, 4))):
            raise RuntimeError("boom")
    assert all("forward" not in vars(m) and not m._forward_hooks for m in encoder.modules())
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), before)


# -- decoder -------------------------------------------------------------------------------------


def test_decoder_fills_masked_positions_with_its_mask_tokens_and_reconstructs_full_size():
    encoder = _encoder()
    widths, factors = stage_geometry(encoder, 1)
    decoder = SparKDecoder(widths, factors, out_channels=1, decoder_width=16)
    assert decoder.patch_size == 8 and decoder.levels == [2, 1, 0] and decoder.level_widths == [16, 8, 8, 8]
    visible = random_patch_mask(2, (4, 4), 0.6, generator=torch.Generator().manual_seed(5))
    maps = sparse_feature_maps(encoder, torch.rand(2, 1, 32, 32), visible)
    with torch.no_grad():
        for token in decoder.mask_tokens:
            token.copy_(torch.arange(token.shape[1], dtype=torch.float32).view(1, -1, 1, 1) + 7.0)
    decoder.eval()
    # Check the densified input of the deepest scale's projection by hooking its conv: the stage map
    # after the batch-norm at visible positions, the raw (un-normalised) mask token elsewhere.
    seen = {}
    handle = decoder.densify[2][1].register_forward_hook(lambda m, inputs, out: seen.update(x=inputs[0]))
    reconstruction = decoder(maps, visible)
    handle.remove()
    assert reconstruction.shape == (2, 1, 32, 32)
    mask = visible.unsqueeze(1).expand_as(seen["x"])
    torch.testing.assert_close(seen["x"][mask], decoder.densify[2][0](maps[2])[mask])
    expected_tokens = (torch.arange(8.0) + 7.0).view(1, -1, 1, 1).expand_as(seen["x"])
    torch.testing.assert_close(seen["x"][~mask], expected_tokens[~mask])
    reconstruction.sum().backward()
    assert all(token.grad is not None and token.grad.abs().sum() > 0 for token in decoder.mask_tokens)


def test_densify_normalises_visible_positions_before_the_mask_tokens_fill_in():
    # SparK's order (spark.py: densify_norms[i], then where(active, ., mask_tokens[i]), then
    # densify_projs[i]): the batch-norm's statistics come from the visible features only, and the
    # tokens are not normalised. Normalising after the fill would mix the tokens into the statistics.
    torch.manual_seed(0)
    decoder = SparKDecoder([4], [2], out_channels=1, decoder_width=8)
    norm, project = decoder.densify[0]
    feature = torch.randn(2, 4, 4, 4) * 3 + 2
    visible = torch.tensor([[[True, False], [False, True]], [[False, False], [True, False]]])
    mask = upsample_mask(visible, (4, 4))  # [B, H, W]
    feature = feature * mask.unsqueeze(1)  # what the sparse encoder hands over: zeros at masked positions
    with torch.no_grad():
        decoder.mask_tokens[0].copy_(torch.tensor([5.0, -5.0, 2.0, 0.5]).view(1, -1, 1, 1))
    (dense,) = decoder.densified([feature], visible)
    rows = feature.permute(0, 2, 3, 1)[mask]  # [N_visible, C]
    mean, var = rows.mean(0), rows.var(0, unbiased=False)
    normalised = (feature - mean[:, None, None]) / (var[:, None, None] + norm.eps).sqrt()
    filled = torch.where(mask.unsqueeze(1), normalised, decoder.mask_tokens[0])
    torch.testing.assert_close(dense, project(filled))
    torch.testing.assert_close(norm.running_mean, 0.1 * mean)
    torch.testing.assert_close(norm.running_var, 0.9 + 0.1 * rows.var(0, unbiased=True))


def test_decoder_initialisation_follows_spark_light_decoder():
    torch.manual_seed(0)
    decoder = SparKDecoder([32, 64, 128], [2, 4, 8], out_channels=1, decoder_width=64)
    convs = [m for m in [*decoder.up.modules(), decoder.head] if isinstance(m, nn.Conv2d)]
    transposed = [m for m in decoder.up.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert convs and transposed
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(float(weights.std()) - 0.02) < 0.002 and abs(float(weights.mean())) < 0.002
    assert all(m.bias is None or not m.bias.any() for m in [*convs, *transposed])
    for m in transposed:  # Kaiming normal, fan-out: std = sqrt(2 / (out_channels * k * k))
        expected = (2.0 / (m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3])) ** 0.5
        assert abs(float(m.weight.std()) / expected - 1) < 0.1
