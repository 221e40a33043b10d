"""Images: ``[B, C, H, W]`` tensors, image views, encoders told the channels and size, kNN and probes."""

from __future__ import annotations

from typing import Any

from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.classification import ClassificationProtocol
from contrastkit.modalities.base import Modality
from contrastkit.views.image import build_views, view_preset_names


class ImageModality(Modality):
    """Images ``[C, H, W]``: image views and a kNN + linear-probe evaluation of the frozen features."""

    name = "image"
    description = "images [C, H, W]: image views, kNN + linear-probe evaluation"
    protocol = ClassificationProtocol
    two_tensor_views = True

    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        return {"in_channels": splits.input_shape[0], "image_size": splits.input_shape[-1]}

    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        options = dict(options)
        channels, image_size = splits.input_shape[0], splits.input_shape[-1]
        # views.image_size lets a run train on smaller crops than it evaluates on (cheaper on CPU);
        # the encoders pool globally, so they accept both sizes.
        view_size = int(options.pop("image_size", image_size))
        return build_views(options.pop("preset"), image_size=view_size, channels=channels, **options)

    def view_presets(self) -> list[str]:
        return view_preset_names()
