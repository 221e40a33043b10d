"""Encoders registered by name, so recipes and the command line refer to names only."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from contrastkit.nn.mlp import MLPEncoder
from contrastkit.nn.resnet import SmallResNet, resnet18_small
from contrastkit.nn.series import DilatedConvEncoder, SeriesInstanceEncoder
from contrastkit.utils.registry import Registry


def _small_resnet(in_channels: int = 1, image_size: int | None = None, **kwargs: object) -> nn.Module:
    # image_size is accepted (and unused: global pooling handles any size) so a
    # recipe can pass the same {in_channels, image_size} to every image encoder.
    del image_size
    return SmallResNet(in_channels, **kwargs)  # type: ignore[arg-type]


def _resnet18_small(in_channels: int = 3, image_size: int | None = None, **kwargs: object) -> nn.Module:
    del image_size
    return resnet18_small(in_channels, **kwargs)


def _mlp(
    input_dim: int | None = None,
    *,
    in_channels: int | None = None,
    image_size: int | None = None,
    **kwargs: object,
) -> nn.Module:
    # Accept either input_dim or the image description the other encoders take.
    if input_dim is None:
        if in_channels is None or image_size is None:
            raise ValueError("mlp encoder: expected input_dim, or both in_channels and image_size")
        input_dim = in_channels * image_size * image_size
    return MLPEncoder(input_dim, **kwargs)  # type: ignore[arg-type]


def _ts_dilated_conv(in_channels: int = 1, **kwargs: object) -> nn.Module:
    return DilatedConvEncoder(in_channels, **kwargs)  # type: ignore[arg-type]


def _ts_dilated_conv_pooled(in_channels: int = 1, **kwargs: object) -> nn.Module:
    # [B, C, T] -> [B, D]: TS2Vec's encoder max-pooled over observed time, the instance
    # representation the generic two-view methods (SimCLR, BYOL, ...) train on series.
    return SeriesInstanceEncoder(DilatedConvEncoder(in_channels, **kwargs))  # type: ignore[arg-type]


def _transformer(**kwargs: object) -> nn.Module:
    # Imported here: transformers is the optional `text` extra, not needed for other modalities.
    from contrastkit.nn.text import TextEncoder

    return TextEncoder(**kwargs)  # type: ignore[arg-type]


def _audio_cnn(**kwargs: object) -> nn.Module:
    # Waveforms [B, T] or log-mel spectrograms [B, n_mels, frames] -> [B, D] (nn/audio.py).
    from contrastkit.nn.audio import AudioCNN

    return AudioCNN(**kwargs)  # type: ignore[arg-type]


def _gnn(conv: str) -> Callable[..., nn.Module]:
    def build(in_channels: int, **kwargs: object) -> nn.Module:
        # Imported here: torch-geometric is the optional `graph` extra.
        from contrastkit.nn.gnn import GNNEncoder

        return GNNEncoder(in_channels, conv=conv, **kwargs)  # type: ignore[arg-type]

    return build


def _lightgcn(**kwargs: object) -> nn.Module:
    from contrastkit.nn.lightgcn import LightGCN

    return LightGCN(**kwargs)  # type: ignore[arg-type]


ENCODERS: Registry[Callable[..., nn.Module]] = Registry("encoder", {
    "small-resnet": _small_resnet,
    "resnet18-small": _resnet18_small,
    "mlp": _mlp,
    "ts-dilated-conv": _ts_dilated_conv,
    "ts-dilated-conv-pooled": _ts_dilated_conv_pooled,
    "transformer": _transformer,
    "audio-cnn": _audio_cnn,
    "gcn": _gnn("gcn"),
    "gat": _gnn("gat"),
    "gin": _gnn("gin"),
    "lightgcn": _lightgcn,
})
"""Encoder factories by name. Every built encoder has an ``output_dim`` attribute."""

import contrastkit.nn.efficientnet  # noqa: E402,F401  registers "efficientnet-lite0" (its packages load lazily)


def _image_text_towers(**options: object) -> nn.Module:
    from contrastkit.nn.towers import build_image_text_towers

    return build_image_text_towers(**options)  # type: ignore[arg-type]


ENCODERS.register("image-text-towers", _image_text_towers)


def _image_text_token_towers(**options: object) -> nn.Module:
    from contrastkit.nn.token_towers import build_image_text_token_towers

    return build_image_text_token_towers(**options)  # type: ignore[arg-type]


ENCODERS.register("image-text-token-towers", _image_text_token_towers)

from contrastkit.nn.channel_groups import build_channel_group_towers  # noqa: E402 (imports the registry lazily)

ENCODERS.register("channel-group-towers", build_channel_group_towers)  # one series tower per channel group


def _tuple_towers(**options: object) -> nn.Module:
    from contrastkit.nn.tuple_towers import build_tuple_towers

    return build_tuple_towers(**options)  # type: ignore[arg-type]


ENCODERS.register("tuple-towers", _tuple_towers)  # one tower + head per field of a tuple (Symile)


def _audio_sheet_towers(**options: object) -> nn.Module:
    from contrastkit.nn.paired_towers import build_audio_sheet_towers

    return build_audio_sheet_towers(**options)  # type: ignore[arg-type]


ENCODERS.register("audio-sheet-towers", _audio_sheet_towers)  # log-mel tower + sheet-image tower (seed #11)


def encoder_names() -> list[str]:
    """Names of the registered encoders, sorted."""
    return ENCODERS.names()


def build_encoder(name: str, **kwargs: object) -> nn.Module:
    """Build a registered encoder.

    Args:
        name: one of ``encoder_names()``.
        **kwargs: passed to the encoder: ``in_channels`` / ``image_size`` for
            the image encoders (``mlp`` also takes ``input_dim``), plus the
            class's own options (``widths``, ``hidden_dims``, ...).

    Returns:
        The encoder module, with an ``output_dim`` attribute.

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> encoder = build_encoder("small-resnet", in_channels=1, image_size=28)
        >>> encoder.output_dim
        128
    """
    return ENCODERS[name](**kwargs)
