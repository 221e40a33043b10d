"""The tiny SR net and PCL-SR's patch discriminator: shapes, start state, Haar sub-bands."""

import pytest
import torch
import torch.nn.functional as F

from contrastkit.nn.super_resolution import (
    PatchDiscriminator,
    TinySRNet,
    haar_high_frequencies,
)


def test_sr_net_doubles_size_and_starts_as_bicubic():
    net = TinySRNet(channels=1, features=8, num_layers=2, scale=2)
    x = torch.rand(3, 1, 14, 14)
    y = net(x)
    assert y.shape == (3, 1, 28, 28)
    torch.testing.assert_close(y, F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False))
    rgb = TinySRNet(channels=3, scale=3)
    assert rgb(torch.rand(2, 3, 5, 7)).shape == (2, 3, 15, 21)


def test_sr_net_learns():
    torch.manual_seed(0)
    net = TinySRNet(channels=1, features=8, num_layers=2)
    hr = torch.rand(8, 1, 8, 8)
    lr = F.avg_pool2d(hr, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        loss = F.l1_loss(net(lr), hr)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first


def test_haar_detail_bands():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    bands = haar_high_frequencies(x)
    # a=1 b=2 c=3 d=4: (a+b-c-d)/2=-2, (a-b+c-d)/2=-1, (a-b-c+d)/2=0
    torch.testing.assert_close(bands.flatten(), torch.tensor([-2.0, -1.0, 0.0]))
    assert haar_high_frequencies(torch.full((2, 3, 6, 6), 0.4)).abs().max() == 0  # constants have no detail
    assert haar_high_frequencies(torch.rand(2, 3, 7, 5)).shape == (2, 9, 4, 3)


@pytest.mark.parametrize("use_wavelet", [True, False])
def test_discriminator_shapes(use_wavelet):
    d = PatchDiscriminator(1, base_channels=8, depth=7, use_wavelet=use_wavelet)
    x = torch.rand(2, 1, 28, 28)
    assert d(x).shape == (2, 1, 4, 4)
    feats = d.features(x)
    assert len(feats) == 8
    assert len(d.features(x, 4)) == 5
    # blocks 1 and 3 have stride 2 (side / 4); blocks 2 and 4 double the width (4 * base)
    side = 14 if use_wavelet else 28
    assert feats[4].shape == (2, 32, -(-side // 4), -(-side // 4))
    # before the activation: negative values survive
    assert (feats[4] < 0).any()
    torch.testing.assert_close(d.features(x, 4)[4], feats[4])


def test_discriminator_bad_layer():
    with pytest.raises(ValueError, match="layers"):
        PatchDiscriminator(1, base_channels=4, depth=3).features(torch.rand(1, 1, 8, 8), 9)
