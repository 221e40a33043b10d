"""One encoder per channel group of a multichannel series: sensors as modalities.

A series ``[B, C, T]`` whose channels come from different sensors (BasicMotions: a 3-axis
accelerometer on channels 0-2, a 3-axis gyroscope on 3-5) is a tuple of modalities
that share a time axis. :class:`ChannelGroupTowers` holds one tower per named group, each
built from the encoder registry over that group's channels only, so that
pairwise-contrastive methods (:class:`~contrastkit.methods.pairwise_mer.PairwiseMER`) see
one embedding per modality (:meth:`ChannelGroupTowers.encode_groups`), and everything
downstream sees the fused representation: ``forward`` concatenates the towers' outputs
(late fusion by concatenation, the inference rule of pairwise MER).

Example:
    >>> towers = build_channel_group_towers(6, channel_groups={"acc": [0, 1, 2], "gyro": [3, 4, 5]},
    ...                                     tower_options={"output_dim": 16, "hidden_dim": 8, "depth": 2})
    >>> [part.shape for part in towers.encode_groups(torch.randn(4, 6, 50))], towers(torch.randn(4, 6, 50)).shape
    ([torch.Size([4, 16]), torch.Size([4, 16])], torch.Size([4, 32]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from contrastkit.data.channel_groups import check_channel_groups

__all__ = ["ChannelGroupTowers", "build_channel_group_towers"]


class ChannelGroupTowers(nn.Module):
    """One tower per channel group; ``forward`` is the concatenation of their outputs.

    Args:
        towers: ``{group name: encoder}``; each maps ``[B, len(group), T]`` to ``[B, D_m]`` and has
            an ``output_dim``.
        channel_groups: ``{group name: channel indices}``, the same names in the same order.

    Attributes:
        group_names: the group names, in order (the order of :meth:`encode_groups` and of the fusion).
        group_dims: ``D_m`` per group.
        output_dim: ``sum(group_dims)``, the fused width.
    """

    def __init__(self, towers: Mapping[str, nn.Module], channel_groups: Mapping[str, Sequence[int]]) -> None:
        super().__init__()
        if list(towers) != list(channel_groups):
            raise ValueError(f"ChannelGroupTowers: expected one tower per group, in order {list(channel_groups)}, "
                             f"got towers for {list(towers)}")
        for name, tower in towers.items():
            if not isinstance(getattr(tower, "output_dim", None), int):
                raise ValueError(f"ChannelGroupTowers: tower {name!r} needs an integer 'output_dim'")
        self.towers = nn.ModuleDict(dict(towers))
        self.group_names = list(channel_groups)
        self.group_dims = [int(tower.output_dim) for tower in towers.values()]
        self.output_dim = sum(self.group_dims)
        for position, channels in enumerate(channel_groups.values()):
            # A buffer, so the index follows the module to its device (not saved: it comes from the config).
            self.register_buffer(f"_channels_{position}", torch.tensor(list(channels), dtype=torch.long),
                                 persistent=False)

    def channels(self, position: int) -> torch.Tensor:
        """The channel indices of group ``position``."""
        return getattr(self, f"_channels_{position}")

    def encode_groups(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One ``[B, D_m]`` embedding per group of ``x [B, C, T]``, in :attr:`group_names` order."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"ChannelGroupTowers: expected a series batch [B, C, T], got {got}")
        return [self.towers[name](x.index_select(1, self.channels(position)))
                for position, name in enumerate(self.group_names)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The fused representation: ``cat(encode_groups(x), dim=1)``, ``[B, output_dim]``."""
        return torch.cat(self.encode_groups(x), dim=1)


def build_channel_group_towers(in_channels: int, *, channel_groups: Mapping[str, Sequence[int]],
                               tower: str = "ts-dilated-conv-pooled",
                               tower_options: Mapping[str, Any] | None = None) -> ChannelGroupTowers:
    """The ``channel-group-towers`` encoder: a ``tower`` from the encoder registry per channel group.

    Args:
        in_channels: channels of the whole series (from the data).
        channel_groups: ``{name: channel indices}`` (from the data, ``channel-groups`` datasets).
        tower: the registered series encoder each group gets (its own copy, own weights).
        tower_options: that encoder's options (``output_dim``, ``hidden_dim``, ``depth``, ...),
            the same for every group; ``in_channels`` is each group's size.
    """
    from contrastkit.nn.registry import build_encoder

    groups = check_channel_groups(channel_groups, in_channels, key="encoder.channel_groups")
    towers = {name: build_encoder(tower, in_channels=len(channels), **dict(tower_options or {}))
              for name, channels in groups.items()}
    return ChannelGroupTowers(towers, groups)
