"""Series whose channel groups are modalities: the ``channel-groups`` dataset.

``load_dataset("channel-groups", source="uea:BasicMotions")`` loads a registered series
dataset (any ``ucr:``/``uea:`` set or the user's own ``series``) and declares which of its
channels form which modality. The inputs stay one ``[N, C, T]`` tensor, so batching,
evaluation and export work as for any series; the splits carry ``channel_groups``
(``{name: channel indices}``) and name the ``channel-groups`` modality, whose encoder
(``channel-group-towers``) gets one tower per group.

Known layouts (:data:`KNOWN_GROUPS`) need no ``groups``: BasicMotions (aeon bundled, UEA):
a smart watch's 3-axis accelerometer and 3-axis gyroscope. The files do not name their
dimensions; channels 0-2 are the accelerometer and 3-5 the gyroscope, as the UEA archive
orders them, which the data agree with: over every training series, channels 3-5 average
to about 0 in every class (angular velocity over a 10 s recording) and channels 0-2 do not
(e.g. +4.8 on channel 0 while running).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contrastkit.data.registry import DatasetSplits, load_dataset, register_dataset

__all__ = ["KNOWN_GROUPS", "ChannelGroupSplits", "check_channel_groups", "load_channel_groups"]

#: Channel groups of bundled sets whose sensor layout is known.
KNOWN_GROUPS: dict[str, dict[str, list[int]]] = {
    "uea:BasicMotions": {"accelerometer": [0, 1, 2], "gyroscope": [3, 4, 5]},
}


def check_channel_groups(channel_groups: object, in_channels: int, *, key: str = "channel_groups") -> dict[str, list[int]]:
    """``channel_groups`` as ``{name: [channel, ...]}`` once checked; else one clear ``ValueError``.

    At least two groups, each a non-empty list of distinct channel indices in ``[0, in_channels)``,
    no channel in two groups (a channel shared by two modalities would make their agreement trivial).
    """
    if not isinstance(channel_groups, Mapping) or len(channel_groups) < 2:
        raise ValueError(f"{key}: expected a mapping of at least 2 group names to channel lists, "
                         f"e.g. {{accelerometer: [0, 1, 2], gyroscope: [3, 4, 5]}}, got {channel_groups!r}")
    groups: dict[str, list[int]] = {}
    seen: dict[int, str] = {}
    for name, channels in channel_groups.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{key}: expected group names as non-empty strings, got {name!r}")
        if (isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels
                or not all(isinstance(c, int) and not isinstance(c, bool) for c in channels)):
            raise ValueError(f"{key}.{name}: expected a non-empty list of channel indices, got {channels!r}")
        for channel in channels:
            if not 0 <= channel < in_channels:
                raise ValueError(f"{key}.{name}: channel {channel} is outside the series' {in_channels} channels "
                                 f"(0..{in_channels - 1})")
            if channel in seen:
                raise ValueError(f"{key}: channel {channel} is in both {seen[channel]!r} and {name!r}; "
                                 "groups must not share channels")
            seen[channel] = name
        groups[name] = list(channels)
    return groups


@dataclass
class ChannelGroupSplits(DatasetSplits):
    """:class:`DatasetSplits` of a series set plus the channel groups that are its modalities.

    Attributes:
        channel_groups: ``{modality name: channel indices}``, in order.
        source: the series dataset the splits come from.
    """

    channel_groups: dict[str, list[int]] = field(default_factory=dict)
    source: str = ""


@register_dataset("channel-groups")
def load_channel_groups(data_dir: str | Path | None = None, *, source: str = "uea:BasicMotions",
                        groups: Mapping[str, Sequence[int]] | None = None,
                        source_options: Mapping[str, Any] | None = None) -> ChannelGroupSplits:
    """A multichannel series set whose channel groups are modalities (default BasicMotions: accelerometer, gyroscope).

    Args:
        data_dir: passed to the source dataset.
        source: a registered series dataset (``uea:BasicMotions``, ``series`` with your files, ...).
        groups: ``{modality name: channel indices}``; ``None`` takes the layout of
            :data:`KNOWN_GROUPS` for ``source``.
        source_options: the source dataset's own options (``normalize``, ``train``, ...).

    Raises:
        ValueError: a source that is not series data, unknown groups for an unknown layout,
            or groups that do not fit its channels.
    """
    if not isinstance(source, str) or not source:
        raise ValueError(f"data.source: expected the name of a series dataset (e.g. 'uea:BasicMotions'), got {source!r}")
    splits = load_dataset(source, data_dir=data_dir, **dict(source_options or {}))
    if splits.modality != "series" or len(splits.input_shape) != 2:
        raise ValueError(f"data.source: expected a series dataset ([C, T] samples), got {source!r} "
                         f"({splits.modality} data of shape {splits.input_shape})")
    if groups is None:
        if source not in KNOWN_GROUPS:
            raise ValueError(f"data.groups: expected {{modality name: channel indices}} for {source!r} "
                             f"(known layouts: {', '.join(KNOWN_GROUPS)}), got none")
        groups = KNOWN_GROUPS[source]
    channels = splits.input_shape[0]
    checked = check_channel_groups(groups, channels, key="data.groups")
    layout = ", ".join(f"{name} {list(indices)}" for name, indices in checked.items())
    return ChannelGroupSplits(
        train=splits.train, test=splits.test, num_classes=splits.num_classes, input_shape=splits.input_shape,
        description=f"{splits.description or source}; modalities: {layout}", modality="channel-groups",
        class_names=splits.class_names, validation=splits.validation, channel_groups=checked, source=source,
    )
