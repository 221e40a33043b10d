"""SimCSE (Gao et al., EMNLP 2021) and WhitenedCSE (Zhuo et al., ACL 2023) on one text field.

Unsupervised SimCSE encodes each sentence twice; dropout is the only augmentation, so
the two passes are the positive pair and the other sentences of the batch the
negatives. WhitenedCSE (METHODS #12) encodes ``num_positives`` dropout views, whitens
each view in random channel groups (shuffled group whitening: a different
"distortion" per view, plus uniformity) and trains a multi-positive InfoNCE.
"""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import info_nce, supcon
from contrastkit.methods.base import Output
from contrastkit.methods.text import TextMethod
from contrastkit.nn import ProjectionHead


class SimCSE(TextMethod):
    """Dropout views of the same text as positives (unsupervised SimCSE / WhitenedCSE).

    Args:
        encoder: a text encoder in train mode (its dropout must be on: SimCSE uses 0.1).
        views: token views applied to the passes (the ``dropout`` preset: none).
        field: the batch field to train on (``query`` or ``positive``).
        temperature: InfoNCE temperature (paper 0.05).
        num_positives: dropout views per text (SimCSE 2; WhitenedCSE 3).
        whitening_groups: WhitenedCSE's channel groups G (paper 128 for BERT-base's 768
            channels); ``None`` (default) disables whitening (plain SimCSE).
        projection_dim: an MLP head used during training only (SimCSE's unsupervised
            setting); ``None`` trains on the encoder output directly.
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        field: str = "query",
        temperature: float = 0.05,
        num_positives: int = 2,
        whitening_groups: int | None = None,
        projection_dim: int | None = None,
    ) -> None:
        super().__init__(encoder, views)
        if num_positives < 2:
            raise ValueError(f"num_positives: expected at least 2 views per text, got {num_positives}")
        self.field = field
        self.temperature = float(temperature)
        self.num_positives = int(num_positives)
        self.head: nn.Module = nn.Identity()
        if projection_dim is not None:
            self.head = ProjectionHead(encoder.output_dim, encoder.output_dim, projection_dim)
        self.whitening: nn.Module | None = None
        if whitening_groups is not None:
            from contrastkit.nn.whitening import ShuffledGroupWhitening

            self.whitening = ShuffledGroupWhitening(num_groups=whitening_groups)

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """One embedding per dropout view (each pass draws its own dropout masks)."""
        self.check_batch(batch)
        texts = self.texts(batch, self.field)
        tokens = self.encoder.tokenize(texts, query=self.field == "query")
        views = (self.view_a, self.view_b)
        return tuple(self.head(self.encoder(views[i % 2](tokens))) for i in range(self.num_positives))

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        if self.whitening is None and len(embeddings) == 2:
            loss = info_nce(embeddings[0], embeddings[1], temperature=self.temperature, symmetric=False)
        else:
            views = list(embeddings)
            if self.whitening is not None:
                views = [self.whitening(view) for view in views]  # each view its own permutation
            # Multi-positive InfoNCE: every other view of the same text is a positive ([B, V, D]).
            loss = supcon(torch.stack(views, dim=1), temperature=self.temperature)
        return Output(loss, {"loss": loss.item()})
