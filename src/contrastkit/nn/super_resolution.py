"""Super-resolution networks for PCL-SR: a tiny SR CNN and the patch-discriminator embedding.

PCL-SR (Wu, Jiang, Liu and Ma, IEEE TNNLS 2023; METHODS.md #14, FULL at toy scale; the
paper-scale check would need DIV2K, the SR benchmarks and EDSR/RCAN-size networks) embeds
images with a patch discriminator trained on the same task instead of a VGG:

* :class:`PatchDiscriminator` follows the official ``loss/discriminator.py``: an optional
  one-level Haar wavelet front end keeping only the three high-frequency sub-bands
  (``--use_wavelet``), then ``depth + 1`` blocks of conv3x3 (no bias) + BN + LeakyReLU(0.2),
  stride 2 on every other block and channels doubled after each stride-1 one, then a
  patch classifier (adaptive average pool to 4x4, 1x1 conv to one logit per patch).
  :meth:`PatchDiscriminator.features` returns each block's output *before* its activation
  (``--before_relu``); PCL-SR uses block 4 (``--cl_layer 4``). It is trained with
  :func:`contrastkit.functional.pcl_sr.dual_contrastive_discriminator_loss`: positives
  (HR, unsharp-masked HR) are *real*, blurred HR and the SR output are *fake*.
* :class:`TinySRNet` is a small residual CNN for the toy check: a few 3x3 convolutions on
  the LR image, a sub-pixel (PixelShuffle) upsampler, and a global skip from the bicubic
  upsampling of the input, so it learns only the missing detail.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TinySRNet", "PatchDiscriminator", "haar_high_frequencies"]


def haar_high_frequencies(x: torch.Tensor) -> torch.Tensor:
    """One-level orthonormal Haar transform's three detail sub-bands, ``[B, 3C, H/2, W/2]``.

    For each 2x2 block ``[[a, b], [c, d]]``: ``(a + b - c - d)/2``, ``(a - b + c - d)/2`` and
    ``(a - b - c + d)/2`` (horizontal, vertical and diagonal detail), channel-major as
    ``[C0 bands, C1 bands, ...]``. An odd side is padded by reflection first.

    Args:
        x: ``[B, C, H, W]`` images.

    Returns:
        The detail coefficients.
    """
    if x.dim() != 4:
        raise ValueError(f"x: expected images [B, C, H, W], got {tuple(x.shape)}")
    pad_w, pad_h = x.shape[-1] % 2, x.shape[-2] % 2
    if pad_w or pad_h:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    bands = torch.stack([a + b - c - d, a - b + c - d, a - b - c + d], dim=2) / 2.0  # [B, C, 3, h, w]
    return bands.flatten(1, 2)


class TinySRNet(nn.Module):
    """A tiny ``scale``-times SR CNN, residual over bicubic upsampling.

    ``y = bicubic(x) + PixelShuffle(conv(ReLU(conv(... conv(x)))))``.

    Args:
        channels: image channels (1 grey, 3 RGB).
        features: width of the hidden convolutions.
        num_layers: number of 3x3 convolutions before the upsampler (``>= 1``).
        scale: the upscaling factor (2 for x2).
    """

    def __init__(self, channels: int = 1, features: int = 32, num_layers: int = 4, scale: int = 2) -> None:
        super().__init__()
        if min(channels, features, num_layers, scale) < 1:
            raise ValueError(
                f"TinySRNet: expected positive sizes, got channels={channels}, features={features}, "
                f"num_layers={num_layers}, scale={scale}"
            )
        layers: list[nn.Module] = []
        width = channels
        for _ in range(num_layers):
            layers += [nn.Conv2d(width, features, 3, padding=1), nn.ReLU(inplace=True)]
            width = features
        layers += [nn.Conv2d(width, channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)
        # Start as plain bicubic: the last convolution's output is zero.
        last = layers[-2]
        assert isinstance(last, nn.Conv2d)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.channels = int(channels)
        self.scale = int(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` low-resolution images -> ``[B, C, scale*H, scale*W]``."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"TinySRNet: expected [B, {self.channels}, H, W], got {tuple(x.shape)}")
        upsampled = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return upsampled + self.body(x)


class PatchDiscriminator(nn.Module):
    """PCL-SR's patch discriminator, also its embedding network.

    Args:
        channels: image channels.
        base_channels: width of the first block (paper 64).
        depth: number of blocks after the first (paper 7).
        use_wavelet: feed the Haar detail sub-bands instead of the image (paper: on).
        negative_slope: LeakyReLU slope (paper 0.2).
    """

    def __init__(
        self,
        channels: int = 1,
        base_channels: int = 64,
        depth: int = 7,
        *,
        use_wavelet: bool = True,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if min(channels, base_channels) < 1 or depth < 0:
            raise ValueError(
                f"PatchDiscriminator: expected channels, base_channels >= 1 and depth >= 0, got "
                f"{channels}, {base_channels}, {depth}"
            )
        self.use_wavelet = use_wavelet
        in_channels = 3 * channels if use_wavelet else channels

        def block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            # bias=False: the BatchNorm right after has its own shift.
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out))

        blocks = [block(in_channels, base_channels, 1)]
        width = base_channels
        for i in range(depth):
            stride = 2 if i % 2 == 0 else 1
            out = width * 2 if i % 2 == 1 else width
            blocks.append(block(width, out, stride))
            width = out
        self.blocks = nn.ModuleList(blocks)
        self.activation = nn.LeakyReLU(negative_slope)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(width, 1, 1))
        self.output_channels = width

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"PatchDiscriminator: expected images [B, C, H, W], got {tuple(x.shape)}")
        return haar_high_frequencies(x) if self.use_wavelet else x

    def features(self, x: torch.Tensor, layers: int | None = None) -> list[torch.Tensor]:
        """Each block's output before its activation; only the first ``layers + 1`` when given.

        PCL-SR's embedding is ``features(x, 4)[4]``.
        """
        if layers is not None and not 0 <= layers < len(self.blocks):
            raise ValueError(f"layers: expected a block index in [0, {len(self.blocks) - 1}], got {layers}")
        h = self._input(x)
        out = []
        for k, block in enumerate(self.blocks):
            h = block(h)
            out.append(h)
            if layers is not None and k == layers:
                break
            h = self.activation(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch logits ``[B, 1, 4, 4]``."""
        h = self._input(x)
        for block in self.blocks:
            h = self.activation(block(h))
        return self.classifier(h)
