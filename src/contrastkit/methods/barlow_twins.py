"""Barlow Twins (Zbontar et al., 2021): push the views' cross-correlation to the identity."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import barlow_twins
from contrastkit.methods.base import Output, TwoViewMethod
from contrastkit.negatives import gather
from contrastkit.nn import ProjectionHead


class BarlowTwins(TwoViewMethod):
    """Barlow Twins: redundancy reduction, no negatives.

    Args:
        encoder: backbone with an ``output_dim`` attribute.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        projection_hidden_dim: hidden width of the projector (paper: 8192; smaller for CPU runs).
        projection_dim: projector output width (paper: 8192).
        lambd: weight of the off-diagonal term (paper default 5e-3).
    """

    two_tensor_views = True

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_hidden_dim: int = 1024,
        projection_dim: int = 1024,
        lambd: float = 5e-3,
    ) -> None:
        super().__init__(encoder, views)
        self.projector = ProjectionHead(encoder.output_dim, projection_hidden_dim, projection_dim, num_layers=3)
        self.lambd = lambd

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Projections ``(z_a, z_b)``, one pass per view: the loss standardises each branch over its own batch."""
        return self.each_view(batch, self.projector)

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        # Batch statistics must be global: gather with gradient, full loss on every process.
        z_a, z_b = (gather(z, "with_grad") for z in embeddings)
        loss = barlow_twins(z_a, z_b, lambd=self.lambd)
        return Output(loss, {"loss": loss.item()})
