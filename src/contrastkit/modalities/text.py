"""Text and code: query/document pairs, token-level views, a transformer encoder, dense retrieval."""

from __future__ import annotations

from typing import Any

from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.retrieval import RetrievalProtocol
from contrastkit.modalities.base import Modality
from contrastkit.utils.schema import callable_parameters, check_section
from contrastkit.views.text import build_text_views, text_view_preset_names


class TextModality(Modality):
    """Text and code pairs: token views and a dense-retrieval evaluation (trec_eval) against BM25."""

    name = "text"
    description = "text and code pairs: token views, dense-retrieval evaluation (trec_eval) against BM25"
    protocol = RetrievalProtocol

    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        return {}  # the encoder brings its own tokenizer and vocabulary

    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        options = dict(options)
        # Token-level views need the encoder's vocabulary: its mask and padding tokens.
        options.setdefault("mask_token_id", getattr(encoder, "mask_token_id", None))
        pad_token_id = getattr(getattr(encoder, "tokenizer", None), "pad_token_id", None)
        if pad_token_id is not None:
            options.setdefault("pad_token_id", pad_token_id)
        preset = options.pop("preset")
        parameters, _ = callable_parameters(build_text_views, skip=("preset",))
        return build_text_views(preset, **check_section("views", options, parameters))

    def view_presets(self) -> list[str]:
        return text_view_preset_names()
