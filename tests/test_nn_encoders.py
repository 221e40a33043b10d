"""Encoders and heads: shapes, output_dim, registry, errors."""

import pytest
import torch
from torch import nn

from contrastkit.nn import (
    ENCODERS,
    MLPEncoder,
    PredictionHead,
    ProjectionHead,
    SmallResNet,
    build_encoder,
    encoder_names,
    resnet18_small,
)


@pytest.mark.parametrize(
    ("channels", "size", "widths", "blocks"),
    [(1, 28, (32, 64, 128), (1, 1, 1)), (3, 32, (8, 16), (2, 1)), (1, 28, (4,), (1,))],
)
def test_small_resnet_shape_and_output_dim(channels, size, widths, blocks):
    model = SmallResNet(channels, widths=widths, blocks_per_stage=blocks)
    out = model(torch.randn(3, channels, size, size))
    assert model.output_dim == widths[-1]
    assert out.shape == (3, widths[-1])


def test_small_resnet_downsamples_once_per_later_stage():
    # Stem keeps 28 px (stride 1, no max-pool); each later stage halves it.
    model = SmallResNet(1)
    features = model.stages(model.stem(torch.randn(2, 1, 28, 28)))
    assert features.shape == (2, 128, 7, 7)


def test_channels_last_layout_gives_same_numbers():
    torch.manual_seed(0)
    fast = SmallResNet(1, widths=(8, 16))
    torch.manual_seed(0)
    plain = SmallResNet(1, widths=(8, 16), channels_last=False)
    assert fast.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.stem[0].weight.is_contiguous()
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(fast(x), plain(x), atol=1e-5, rtol=1e-4)


def test_resnet18_small_preset():
    model = resnet18_small(1)
    assert model.output_dim == 512
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 512)
    blocks = sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in model.modules())
    assert blocks == 1 + 16  # stem + 8 BasicBlocks x 2 convolutions, as ResNet-18


def test_small_resnet_backward_reaches_stem():
    model = SmallResNet(1, widths=(8, 16))
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    assert model.stem[0].weight.grad is not None
    assert model.stem[0].weight.grad.abs().sum() > 0


def test_small_resnet_errors():
    with pytest.raises(ValueError, match="in_channels"):
        SmallResNet(0)
    with pytest.raises(ValueError, match="blocks_per_stage"):
        SmallResNet(1, widths=(8, 16), blocks_per_stage=(1,))
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        SmallResNet(1)(torch.randn(2, 3, 28, 28))


def test_mlp_encoder_flattens():
    model = MLPEncoder(28 * 28, hidden_dims=(64, 32), output_dim=16)
    assert model.output_dim == 16
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 16)
    assert model(torch.randn(5, 784)).shape == (5, 16)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 2
    plain = MLPEncoder(10, hidden_dims=(8,), output_dim=4, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain.modules())
    with pytest.raises(ValueError, match="784"):
        model(torch.randn(5, 3, 28, 28))


@pytest.mark.parametrize(("layers", "linears"), [(1, 1), (2, 2), (3, 3)])
def test_projection_head_shapes(layers, linears):
    head = ProjectionHead(32, hidden_dim=64, output_dim=16, num_layers=layers)
    assert head(torch.randn(4, 32)).shape == (4, 16)
    assert head.output_dim == 16
    assert sum(isinstance(m, nn.Linear) for m in head.modules()) == linears
    assert sum(isinstance(m, nn.BatchNorm1d) for m in head.modules()) == layers - 1


def test_projection_head_last_batch_norm_is_not_affine():
    head = ProjectionHead(8, hidden_dim=16, output_dim=4, num_layers=3, last_batch_norm=True)
    last = head.layers[-1]
    assert isinstance(last, nn.BatchNorm1d) and not last.affine
    out = head(torch.randn(64, 8))
    # Training-mode BN without affine: every output column has mean 0, std 1.
    torch.testing.assert_close(out.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="num_layers"):
        ProjectionHead(8, num_layers=0)
    with pytest.raises(ValueError, match=r"\[B, 8\]"):
        head(torch.randn(4, 9))


def test_prediction_head_structure():
    head = PredictionHead(16, 8, 16)
    assert head(torch.randn(4, 16)).shape == (4, 16)
    kinds = [type(m) for m in head.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert head.layers[0].out_features == 8


def test_registry_builds_every_encoder():
    assert encoder_names() == sorted(ENCODERS) == [
        "audio-cnn", "audio-sheet-towers", "channel-group-towers", "efficientnet-lite0", "gat", "gcn", "gin", "image-text-token-towers", "image-text-towers", "lightgcn", "mlp", "resnet18-small",
        "small-resnet", "transformer", "ts-dilated-conv", "ts-dilated-conv-pooled", "tuple-towers",
    ]
    # The pooled series encoder gives one vector per series ([B, C, T] -> [B, D]), for two-view methods.
    pooled = build_encoder("ts-dilated-conv-pooled", in_channels=2)
    assert pooled(torch.randn(3, 2, 40)).shape == (3, pooled.output_dim)
    x = torch.randn(2, 1, 28, 28)
    for name in ["small-resnet", "mlp"]:
        encoder = build_encoder(name, in_channels=1, image_size=28)
        assert encoder(x).shape == (2, encoder.output_dim)
    assert build_encoder("small-resnet", in_channels=1, widths=(8, 16)).output_dim == 16
    assert build_encoder("resnet18-small", in_channels=1).output_dim == 512
    assert build_encoder("mlp", input_dim=12, output_dim=3)(torch.randn(2, 12)).shape == (2, 3)


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown encoder 'resnet50'.*small-resnet"):
        build_encoder("resnet50")
    with pytest.raises(ValueError, match="input_dim"):
        build_encoder("mlp")


def test_small_resnet_feature_maps_are_the_stages_and_pool_to_forward():
    from contrastkit.nn.resnet import SmallResNet

    torch.manual_seed(0)
    encoder = SmallResNet(in_channels=1, widths=(8, 16, 32), stem_stride=1).eval()
    x = torch.randn(3, 1, 16, 16)
    maps = encoder.feature_maps(x)
    assert [tuple(m.shape) for m in maps] == [(3, 8, 16, 16), (3, 16, 8, 8), (3, 32, 4, 4)]
    torch.testing.assert_close(maps[-1].mean(dim=(2, 3)), encoder(x))
