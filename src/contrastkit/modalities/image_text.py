"""Image–text pairs: an image and its captions per row, two towers, retrieval and zero-shot evaluation."""

from __future__ import annotations

from typing import Any

from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.image_text import ImageTextProtocol
from contrastkit.modalities.base import Modality
from contrastkit.views.image_text import IMAGE_TEXT_VIEW_PRESETS, build_image_text_views


class ImageTextModality(Modality):
    """Images with captions: image and caption views, two towers, retrieval both ways and zero-shot classification."""

    name = "image-text"
    description = "images with captions: image and caption views, two towers, retrieval + zero-shot evaluation"
    protocol = ImageTextProtocol

    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        return {"in_channels": splits.input_shape[0], "image_size": splits.input_shape[-1]}

    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        options = dict(options)
        return build_image_text_views(options.pop("preset"), **options)

    def view_presets(self) -> list[str]:
        return list(IMAGE_TEXT_VIEW_PRESETS)
