"""Multiple-negatives ranking: the supervised workhorse of sentence-embedding training.

InfoNCE of each query against every document of the batch (its own positive, the other
rows' positives, and every row's hard negative when the data has a ``negative`` column),
with a fixed logit scale — sentence-transformers' ``MultipleNegativesRankingLoss``
(Henderson et al., 2017), the loss of the MoE-embedding paper (METHODS #39) and the
inter-modal term of CoCoSoDa. Options add MultiCSR's false-negative masking (#49) and
gradient caching (``train.grad_cache_micro_batch``) for batches larger than memory.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional.ranking import multiple_negatives_ranking
from contrastkit.methods.base import Output
from contrastkit.methods.text import TextMethod
from contrastkit.negatives import gather
from contrastkit.negatives.false_negatives import (
    false_negative_mask,
    false_negative_weights,
    masking_rate,
)


class MultipleNegativesRanking(TextMethod):
    """Query -> document InfoNCE with in-batch and hard negatives.

    ``view_a`` transforms query tokens and ``view_b`` document tokens (the ``dropout``
    preset leaves both unchanged; ``contriever`` crops and deletes words).

    Args:
        encoder: a text encoder (:class:`~contrastkit.nn.text.TextEncoder`).
        views: ``(query view, document view)`` token views.
        scale: logit scale ``s`` = 1 / temperature (sentence-transformers: 20).
        symmetric: also rank queries for each document (MultipleNegativesSymmetricRankingLoss).
        false_negative_threshold: MultiCSR's φ: drop from the denominator every in-batch
            document whose cosine to the query, under a frozen copy of the *initial*
            encoder, is at least φ (paper 0.95); ``None`` (default) drops nothing.
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        scale: float = 20.0,
        symmetric: bool = False,
        false_negative_threshold: float | None = None,
    ) -> None:
        super().__init__(encoder, views)
        if scale <= 0:
            raise ValueError(f"scale: expected a positive number, got {scale}")
        if false_negative_threshold is not None and not -1.0 <= false_negative_threshold <= 1.0:
            raise ValueError(f"false_negative_threshold: expected a cosine in [-1, 1], got {false_negative_threshold}")
        self.scale, self.symmetric = float(scale), bool(symmetric)
        self.false_negative_threshold = false_negative_threshold
        self.scorer: nn.Module | None = None
        if false_negative_threshold is not None:
            # MultiCSR scores candidates with a frozen pretrained encoder, not the one being trained.
            self.scorer = copy.deepcopy(encoder).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "MultipleNegativesRanking":
        super().train(mode)
        if self.scorer is not None:
            self.scorer.eval()  # frozen: never drop out
        return self

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """``(queries, documents[, hard negatives])`` and, with false-negative masking, the frozen
        scorer's embeddings of the same texts (no gradient)."""
        self.check_batch(batch)
        queries, documents = self.texts(batch, "query"), self.texts(batch, "positive")
        negatives = self.texts(batch, "negative") if "negative" in batch.inputs else None
        out = [self.encode_view(queries, self.view_a, query=True), self.encode_view(documents, self.view_b)]
        if negatives is not None:
            out.append(self.encode_view(negatives, self.view_b))
        if self.scorer is not None:
            with torch.no_grad():
                scorer = self.scorer
                out.append(scorer(scorer.tokenize(queries, query=True)))
                out.append(scorer(scorer.tokenize(documents)))
                if negatives is not None:
                    out.append(scorer(scorer.tokenize(negatives)))
        return tuple(out)

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        has_negatives = "negative" in batch.inputs
        queries, documents = embeddings[0], embeddings[1]
        hard = embeddings[2] if has_negatives else None
        # Under torchrun every rank computes the global loss over gathered rows (as SimCLR does).
        queries, documents = gather(queries, "with_grad"), gather(documents, "with_grad")
        hard = None if hard is None else gather(hard, "with_grad")
        weights = None
        logs: dict[str, float] = {}
        if self.scorer is not None:
            # Each field is its own entry (one row per batch row), so gradient caching can
            # concatenate row blocks field by field.
            scored = embeddings[3 if has_negatives else 2 :]
            scored_queries = gather(scored[0], "no_grad")
            candidates = [gather(part, "no_grad") for part in scored[1:]]
            mask = false_negative_mask(
                scored_queries, torch.cat(candidates), threshold=float(self.false_negative_threshold)
            )
            weights = false_negative_weights(mask)
            logs["false_negative_rate"] = masking_rate(mask)
        loss = multiple_negatives_ranking(
            queries, documents, hard, scale=self.scale, symmetric=self.symmetric, weights=weights
        )
        logs["loss"] = loss.item()
        return Output(loss, logs)
