"""The TS2Vec encoder: shapes, receptive field, masking of missing timestamps, pooling."""

from __future__ import annotations

import pytest
import torch

from contrastkit.nn import (
    DilatedConvEncoder,
    SeriesInstanceEncoder,
    build_encoder,
    max_pool_time,
)


def test_shapes_and_registry() -> None:
    encoder = build_encoder("ts-dilated-conv", in_channels=3, output_dim=16, hidden_dim=8, depth=3)
    assert isinstance(encoder, DilatedConvEncoder)
    for length in (1, 2, 7, 50):  # "same" padding keeps every length, even with even receptive fields
        assert encoder(torch.randn(4, 3, length)).shape == (4, length, 16)
    pooled = SeriesInstanceEncoder(encoder)
    assert pooled(torch.randn(4, 3, 20)).shape == (4, 16)
    assert pooled.output_dim == 16


def test_receptive_field_grows_with_depth() -> None:
    """An impulse at t=20 reaches timestamp 20 +- sum of dilations * 2 blocks, and no further."""
    torch.manual_seed(0)
    encoder = DilatedConvEncoder(1, output_dim=4, hidden_dim=4, depth=2, dropout=0.0).eval()
    x = torch.zeros(1, 1, 41)
    base = encoder(x)
    x[0, 0, 20] = 5.0
    changed = (encoder(x) - base).abs().sum(dim=-1)[0] > 1e-7
    reach = torch.nonzero(changed).flatten()
    # blocks with dilation 1, 2, 4 (the output block), two kernel-3 convs each: radius 2 * (1 + 2 + 4) = 14
    assert int(reach.min()) >= 20 - 14 and int(reach.max()) <= 20 + 14
    assert int(reach.max()) - int(reach.min()) > 14


def test_missing_timestamps_do_not_leak_values() -> None:
    """NaN timestamps act as zeros: changing the values behind a NaN changes nothing."""
    torch.manual_seed(0)
    encoder = DilatedConvEncoder(2, output_dim=4, hidden_dim=4, depth=1, dropout=0.0).eval()
    x = torch.randn(2, 2, 10)
    x[:, :, 7:] = float("nan")
    out = encoder(x)
    assert torch.isfinite(out).all()
    observed = ~torch.isnan(x).any(dim=1)
    for fill in (0.0, 3.0):  # any values behind an explicit mask give the NaN result
        y = torch.nan_to_num(x, nan=fill)
        torch.testing.assert_close(encoder(y, mask=observed), out)
    pooled = max_pool_time(out, ~torch.isnan(x).any(dim=1))
    torch.testing.assert_close(pooled, out[:, :7].amax(dim=1))


def test_training_mask_modes() -> None:
    torch.manual_seed(0)
    encoder = DilatedConvEncoder(1, output_dim=4, hidden_dim=4, depth=0, mask_mode="binomial", dropout=0.0)
    keep = encoder._training_mask(200, 100, torch.device("cpu"))
    assert keep is not None and 0.45 < float(keep.float().mean()) < 0.55
    encoder.mask_mode = "continuous"
    keep = encoder._training_mask(50, 100, torch.device("cpu"))
    assert keep is not None and 0.5 < float(keep.float().mean()) < 0.95
    x = torch.randn(3, 1, 12)
    encoder.eval()
    torch.testing.assert_close(encoder(x), encoder(x))  # no mask, no dropout: deterministic


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="mask_mode"):
        DilatedConvEncoder(1, mask_mode="sometimes")
    with pytest.raises(ValueError, match="in_channels to be a positive int"):
        DilatedConvEncoder(0)
    with pytest.raises(ValueError, match=r"expected series \[B, 2, T\]"):
        DilatedConvEncoder(2)(torch.randn(3, 1, 5))
