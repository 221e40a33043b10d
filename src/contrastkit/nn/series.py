"""Time-series encoders: TS2Vec's dilated convolutional encoder and its pooling.

TS2Vec (Yue et al., AAAI 2022, "TS2Vec: Towards Universal Representation of Time
Series") encodes a series ``[B, C, T]`` into one representation per timestamp
``[B, T, D]``:

1. an input projection (a linear layer over channels at each timestamp);
2. a timestamp mask while training (each timestamp's projected features are
   zeroed with probability 1/2: the "binomial" mask, TS2Vec's default);
3. a stack of residual blocks of two "same"-padded dilated 1-D convolutions
   (kernel 3, dilation ``2**i`` in block ``i``, GELU before each convolution), so
   the receptive field doubles per block;
4. dropout 0.1 on the output.

Missing timestamps (NaN in any channel, e.g. the padding of unequal-length series)
are zeroed at the input and masked after the projection, as in TS2Vec. The
instance representation is a max-pool over the observed timestamps
(:func:`max_pool_time`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DilatedConvEncoder", "SeriesInstanceEncoder", "max_pool_time", "observed_timestamps"]

MASK_MODES = ("binomial", "continuous", "all_true")


def observed_timestamps(x: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` bool: timestamps where no channel of ``x [B, C, T]`` is NaN."""
    return ~torch.isnan(x).any(dim=1)


def max_pool_time(z: torch.Tensor, observed: torch.Tensor | None = None) -> torch.Tensor:
    """Instance representation: the max over time of ``z [B, T, D]`` -> ``[B, D]``.

    Args:
        z: per-timestamp representations.
        observed: optional ``[B, T]`` bool; unobserved timestamps (padding) are left
            out of the max. A row with no observed timestamp pools over all of them.
    """
    if observed is None:
        return z.amax(dim=1)
    keep = observed & observed.any(dim=1, keepdim=True) | ~observed.any(dim=1, keepdim=True)
    return z.masked_fill(~keep.unsqueeze(-1), float("-inf")).amax(dim=1)


class _SamePadConv(nn.Module):
    """A dilated 1-D convolution whose output has the input's length."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        field = (kernel_size - 1) * dilation + 1
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=field // 2, dilation=dilation)
        # An even receptive field pads one step too many on the right: drop it.
        self.remove = 1 if field % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out[:, :, : out.shape[-1] - self.remove] if self.remove else out


class _ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, final: bool) -> None:
        super().__init__()
        self.conv1 = _SamePadConv(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = _SamePadConv(out_channels, out_channels, kernel_size, dilation)
        self.projector = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels or final else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.projector is None else self.projector(x)
        x = self.conv2(F.gelu(self.conv1(F.gelu(x))))
        return x + residual


class DilatedConvEncoder(nn.Module):
    """TS2Vec's encoder: ``[B, C, T]`` -> per-timestamp representations ``[B, T, output_dim]``.

    Args:
        in_channels: channels ``C`` of the input series.
        output_dim: representation size (TS2Vec: 320).
        hidden_dim: width of the projection and hidden blocks (TS2Vec: 64).
        depth: number of hidden residual blocks (TS2Vec: 10); one more block maps
            to ``output_dim``.
        kernel_size: convolution kernel (3).
        mask_mode: the training-time timestamp mask: ``"binomial"`` (each timestamp
            kept with probability 1/2, TS2Vec's default), ``"continuous"`` (5
            random segments of ~10% of the length masked) or ``"all_true"`` (none).
            Evaluation mode never masks.
        dropout: dropout on the output representations (0.1).

    Example:
        >>> encoder = DilatedConvEncoder(in_channels=1, output_dim=32, hidden_dim=16, depth=2)
        >>> encoder(torch.randn(4, 1, 50)).shape
        torch.Size([4, 50, 32])
    """

    def __init__(
        self,
        in_channels: int,
        output_dim: int = 320,
        hidden_dim: int = 64,
        depth: int = 10,
        kernel_size: int = 3,
        mask_mode: str = "binomial",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        for label, value in (("in_channels", in_channels), ("output_dim", output_dim), ("hidden_dim", hidden_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DilatedConvEncoder: expected {label} to be a positive int, got {value!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"DilatedConvEncoder: expected depth to be a non-negative int, got {depth!r}")
        if mask_mode not in MASK_MODES:
            raise ValueError(f"DilatedConvEncoder: expected mask_mode in {MASK_MODES}, got {mask_mode!r}")
        self.in_channels, self.output_dim, self.mask_mode = in_channels, output_dim, mask_mode
        self.input_fc = nn.Linear(in_channels, hidden_dim)
        widths = [hidden_dim] * depth + [output_dim]
        self.blocks = nn.Sequential(
            *(
                _ConvBlock(widths[i - 1] if i > 0 else hidden_dim, widths[i], kernel_size, 2**i, i == len(widths) - 1)
                for i in range(len(widths))
            )
        )
        self.repr_dropout = nn.Dropout(dropout)

    def _training_mask(self, batch: int, length: int, device: torch.device) -> torch.Tensor | None:
        if self.mask_mode == "binomial":
            return torch.rand(batch, length, device=device) < 0.5
        if self.mask_mode == "continuous":
            keep = torch.ones(batch, length, dtype=torch.bool, device=device)
            width = max(1, int(0.1 * length))
            starts = torch.randint(0, max(1, length - width + 1), (batch, 5), device=device)
            steps = torch.arange(length, device=device)
            for segment in range(5):
                start = starts[:, segment : segment + 1]
                keep &= ~((steps >= start) & (steps < start + width))
            return keep
        return None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode ``x [B, C, T]`` (NaN = missing) into ``[B, T, output_dim]``.

        Args:
            x: the series.
            mask: optional ``[B, T]`` bool of timestamps to keep, overriding the
                training-time mask.
        """
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"DilatedConvEncoder: expected series [B, {self.in_channels}, T], got {tuple(x.shape)}"
            )
        observed = observed_timestamps(x)
        h = self.input_fc(torch.nan_to_num(x, nan=0.0).transpose(1, 2))  # [B, T, hidden]
        if mask is None and self.training:
            mask = self._training_mask(x.shape[0], x.shape[2], x.device)
        keep = observed if mask is None else observed & mask
        h = h * keep.unsqueeze(-1).to(h.dtype)
        out = self.blocks(h.transpose(1, 2))  # [B, D, T]
        return self.repr_dropout(out.transpose(1, 2))


class SeriesInstanceEncoder(nn.Module):
    """A per-timestamp series encoder followed by a max-pool over observed time: ``[B, C, T]`` -> ``[B, D]``.

    What evaluation (kNN, linear and SVM probes) sees; ``encoder`` is the
    per-timestamp network the objectives train.
    """

    def __init__(self, encoder: DilatedConvEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.output_dim = encoder.output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_time(self.encoder(x), observed_timestamps(x))
