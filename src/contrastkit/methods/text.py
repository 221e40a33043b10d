"""The base of every text method: batches of texts in, a sentence encoder, token views.

A text batch (:class:`contrastkit.data.text.TextPairDataset`) carries
``batch.inputs = {"query": [str], "positive": [str], optionally "negative": [str]}``.
A text method tokenises with its encoder (:class:`contrastkit.nn.text.TextEncoder`),
applies its views to the token batches, encodes and computes an objective. Evaluation
encodes whole corpora through :meth:`TextMethod.encode_texts`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.methods.base import Method

Tokens = dict[str, torch.Tensor]


class TextMethod(Method):
    """A method whose inputs are texts.

    Args:
        encoder: a sentence encoder with ``tokenize(texts, query=...)``, ``forward(tokens)``,
            ``encode(texts, ...)`` and ``output_dim`` (e.g. :class:`~contrastkit.nn.text.TextEncoder`).
        views: a pair ``(view_a, view_b)`` of token-batch views (``views.text``); by
            convention ``view_a`` applies to queries (or the first view) and ``view_b`` to
            documents (or the second view).
    """

    modalities = frozenset({"text"})

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, nn.Module]) -> None:
        super().__init__()
        missing = [name for name in ("tokenize", "encode", "output_dim") if not hasattr(encoder, name)]
        if missing:
            raise ValueError(
                f"{type(self).__name__}: expected a text encoder (with tokenize, encode and output_dim, "
                f"e.g. contrastkit.nn.text.TextEncoder), got {type(encoder).__name__} without {missing}"
            )
        if len(views) != 2:
            raise ValueError(f"{type(self).__name__}: expected a pair of text views, got {len(views)}")
        self.encoder = encoder
        self.view_a, self.view_b = views

    def check_batch(self, batch: Batch) -> None:
        if not isinstance(batch.inputs, dict):
            raise ValueError(
                f"{type(self).__name__}: expected text inputs {{'query': [...], 'positive': [...]}} "
                f"(a TextPairDataset), got {type(batch.inputs).__name__}"
            )
        if len(batch) < 2:
            raise ValueError(f"{type(self).__name__}: a batch needs at least 2 rows to have negatives, got {len(batch)}")
        super().check_batch(batch)

    def texts(self, batch: Batch, field: str) -> list[str]:
        """``batch.inputs[field]`` with a clear error when the data lacks that field."""
        inputs = batch.inputs
        if field not in inputs:
            raise ValueError(
                f"{type(self).__name__}: expected batch field {field!r}, got fields {sorted(inputs)}"
            )
        return list(inputs[field])

    def encode_view(self, texts: Sequence[str], view: nn.Module, *, query: bool = False) -> torch.Tensor:
        """Tokenise, apply a token view, encode: ``[B, output_dim]`` with gradient."""
        return self.encoder(view(self.encoder.tokenize(texts, query=query)))

    @torch.no_grad()
    def embed(self, texts: Sequence[str], query: bool = False) -> torch.Tensor:  # type: ignore[override]
        """The downstream representation of one batch of texts (no views, no gradient)."""
        return self.encoder(self.encoder.tokenize(texts, query=query))

    def encode_texts(
        self, texts: Sequence[str], *, query: bool = False, batch_size: int = 64, progress: bool = False
    ) -> torch.Tensor:
        """Embed a corpus or query set for evaluation and search: ``[N, output_dim]`` on the CPU."""
        return self.encoder.encode(texts, query=query, batch_size=batch_size, progress=progress)
