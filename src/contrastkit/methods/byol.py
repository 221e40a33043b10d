"""BYOL (Grill et al., 2020): predict a momentum target network's projection of the other view."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import negative_cosine
from contrastkit.methods.base import Output, TwoViewMethod
from contrastkit.nn import MomentumEncoder, PredictionHead, ProjectionHead


class BYOL(TwoViewMethod):
    """BYOL: online encoder + projector + predictor regress an EMA target; no negatives.

    The loss is ``negative_cosine`` summed over both view orders, i.e. BYOL's
    ``2 - 2 cos`` up to an affine change that leaves the gradients' direction unchanged.

    Args:
        encoder: backbone with an ``output_dim`` attribute.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        projection_hidden_dim: hidden width of the projector and predictor (paper 4096).
        projection_dim: projector output width (paper 256).
        base_momentum: EMA momentum at step 0 (paper 0.996; 0.99 suits short runs).
        final_momentum: EMA momentum at the last step (cosine schedule; paper 1.0).
    """

    two_tensor_views = True

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_hidden_dim: int = 1024,
        projection_dim: int = 256,
        base_momentum: float = 0.99,
        final_momentum: float = 1.0,
    ) -> None:
        super().__init__(encoder, views)
        self.projector = ProjectionHead(encoder.output_dim, projection_hidden_dim, projection_dim)
        self.predictor = PredictionHead(projection_dim, projection_hidden_dim, projection_dim)
        self.target = MomentumEncoder(
            nn.Sequential(self.encoder, self.projector), base_momentum=base_momentum, final_momentum=final_momentum
        )

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """Online predictions ``(p_a, p_b)`` and target projections ``(t_a, t_b)`` (no gradient)."""
        views = self.both_views(batch)
        p_a, p_b = self.predictor(self.projector(self.encoder(views))).chunk(2)
        with torch.no_grad():
            t_a, t_b = self.target(views).chunk(2)
        return p_a, p_b, t_a, t_b

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        p_a, p_b, t_a, t_b = embeddings
        loss = negative_cosine(p_a, t_b) + negative_cosine(p_b, t_a)
        return Output(loss, {"loss": loss.item()})

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.target.update(nn.Sequential(self.encoder, self.projector), step, total_steps)
