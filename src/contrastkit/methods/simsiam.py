"""SimSiam (Chen & He, 2021): a predictor and stop-gradient, no momentum, no negatives."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import negative_cosine
from contrastkit.methods.base import Output, TwoViewMethod
from contrastkit.nn import PredictionHead, ProjectionHead


class SimSiam(TwoViewMethod):
    """SimSiam: ``L = D(p_a, stopgrad z_b)/2 + D(p_b, stopgrad z_a)/2`` with ``D`` negative cosine.

    Args:
        encoder: backbone with an ``output_dim`` attribute.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        projection_dim: projector output width (paper 2048).
        predictor_hidden_dim: bottleneck of the predictor (paper 512, i.e. dim/4).
    """

    two_tensor_views = True

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_dim: int = 512,
        predictor_hidden_dim: int = 128,
    ) -> None:
        super().__init__(encoder, views)
        # The paper's projector: 3 layers with BN on the output too.
        self.projector = ProjectionHead(
            encoder.output_dim, projection_dim, projection_dim, num_layers=3, last_batch_norm=True
        )
        self.predictor = PredictionHead(projection_dim, predictor_hidden_dim, projection_dim)

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """Predictions ``(p_a, p_b)`` and projections ``(z_a, z_b)`` of the two views."""
        z = self.projector(self.encoder(self.both_views(batch)))
        p_a, p_b = self.predictor(z).chunk(2)
        z_a, z_b = z.chunk(2)
        return p_a, p_b, z_a, z_b

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        p_a, p_b, z_a, z_b = embeddings
        loss = 0.5 * (negative_cosine(p_a, z_b) + negative_cosine(p_b, z_a))
        return Output(loss, {"loss": loss.item()})
