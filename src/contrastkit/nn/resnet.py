"""Small CIFAR-style residual networks for 28-32 px images.

The ImageNet ResNet stem (7x7 stride-2 convolution followed by a max-pool)
shrinks a 28 px image to 7 px before the first residual block, which throws
away most of the spatial detail of Fashion-MNIST/CIFAR. Following the CIFAR
variant of He et al. (2016) and SimCLR's CIFAR set-up, the stem here is a
single 3x3 stride-1 convolution without max-pool, and resolution is halved
only between stages.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34 block).

    Args:
        in_channels: channels of the input feature map.
        out_channels: channels of the output feature map.
        stride: stride of the first convolution; 2 halves the resolution.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        # bias=False: BatchNorm right after the convolution has its own shift.
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module
        if stride != 1 or in_channels != out_channels:
            # A 1x1 projection so the residual sum has matching shapes.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape ``[B, C_in, H, W]``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """CIFAR-style ResNet encoder: 3x3 stem, BasicBlock stages, global average pool.

    Each stage after the first starts with a stride-2 block, so a 28 px input is
    seen at 28, 14 and 7 px with the default three stages.

    Speed (measured on 2 CPU cores, torch 2.13 CPU, batch 256 of 28x28x1,
    forward + backward, training mode, best of 10 steps on a shared machine):
    the default ``widths=(32, 64, 128)`` with one block per stage runs at about
    340 images/s (channels-last; 110-300 images/s in NCHW layout), i.e.
    ~6 minutes for one SimCLR epoch of Fashion-MNIST's 60k images x 2 views.
    ``stem_stride=2`` with bf16 autocast on an AMX CPU trains one such epoch in about
    63 s (the main recipe). The ``resnet18_small`` preset runs at about 20-30
    images/s on CPU: a GPU network.

    Args:
        in_channels: channels of the input image (1 for grayscale, 3 for RGB).
        widths: output channels of each stage; ``output_dim`` is ``widths[-1]``.
        blocks_per_stage: number of ``BasicBlock`` per stage (same length as
            ``widths``); ``None`` means one per stage.
        zero_init_residual: start each block's last BatchNorm scale at zero so
            every block begins as an identity (Goyal et al. 2017); helps short
            training runs.
        stem_stride: 1 (CIFAR-style, full resolution) or 2 (halve the input first:
            about 4x less compute, what the CPU-sized main job uses).
        channels_last: keep weights and activations in channels-last (NHWC)
            layout; oneDNN's CPU convolutions measured 1.4-3x faster this way
            on the default network (same numbers to float tolerance).

    Example:
        >>> encoder = SmallResNet(in_channels=1)
        >>> encoder(torch.randn(8, 1, 28, 28)).shape
        torch.Size([8, 128])
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        blocks_per_stage: Sequence[int] | None = None,
        zero_init_residual: bool = False,
        channels_last: bool = True,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        # Default: one block per stage, whatever the number of stages.
        blocks_per_stage = (1,) * len(widths) if blocks_per_stage is None else tuple(int(b) for b in blocks_per_stage)
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride: expected 1 or 2, got {stem_stride}")
        if in_channels < 1:
            raise ValueError(f"in_channels: expected a positive integer, got {in_channels}")
        if not widths or any(w < 1 for w in widths):
            raise ValueError(f"widths: expected a non-empty sequence of positive integers, got {widths}")
        if len(blocks_per_stage) != len(widths) or any(b < 1 for b in blocks_per_stage):
            raise ValueError(
                f"blocks_per_stage: expected {len(widths)} positive integers (one per width), got {blocks_per_stage}"
            )
        self.in_channels = in_channels
        self.output_dim = widths[-1]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        channels = widths[0]
        for index, (width, count) in enumerate(zip(widths, blocks_per_stage)):
            stride = 1 if index == 0 else 2
            blocks: list[nn.Module] = []
            for block_index in range(count):
                blocks.append(BasicBlock(channels, width, stride if block_index == 0 else 1))
                channels = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, BasicBlock):
                    nn.init.zeros_(module.bn2.weight)
        self.channels_last = channels_last
        if channels_last:
            # Module.to(device) preserves this layout, so it survives moves and copies.
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode images.

        Args:
            x: images ``[B, C, H, W]`` with ``C == in_channels``.

        Returns:
            Features ``[B, output_dim]``.
        """
        out = self.feature_maps(x)[-1]
        return torch.flatten(self.pool(out), 1)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every stage, before pooling (what OBoW's BoW levels and SparK's decoder read).

        Args:
            x: images ``[B, C, H, W]`` with ``C == in_channels``.

        Returns:
            One map per stage, ``[B, widths[i], H_i, W_i]``; each stage after the first halves
            the resolution.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SmallResNet: expected input [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}"
            )
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.stem(x)
        maps = []
        for stage in self.stages:
            out = stage(out)
            maps.append(out)
        return maps


def resnet18_small(in_channels: int = 3, **kwargs: object) -> SmallResNet:
    """CIFAR-style ResNet-18: widths (64, 128, 256, 512), two blocks per stage.

    The usual SimCLR/solo-learn CIFAR backbone (11M parameters, 512-d output);
    much slower than the ``SmallResNet`` default on CPU, meant for a GPU.

    Args:
        in_channels: channels of the input image.
        **kwargs: passed to ``SmallResNet`` (e.g. ``zero_init_residual``).

    Returns:
        A ``SmallResNet`` with ``output_dim == 512``.
    """
    return SmallResNet(in_channels, widths=(64, 128, 256, 512), blocks_per_stage=(2, 2, 2, 2), **kwargs)  # type: ignore[arg-type]
