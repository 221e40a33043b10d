"""SimCLR (Chen et al., 2020): two augmented views, a projection head, NT-Xent."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import nt_xent
from contrastkit.methods.base import Output, TwoViewMethod
from contrastkit.negatives import gather
from contrastkit.nn import ProjectionHead


class SimCLR(TwoViewMethod):
    """SimCLR: NT-Xent between the projections of two views of each image.

    Args:
        encoder: backbone with an ``output_dim`` attribute; its output is the representation.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        projection_hidden_dim: hidden width of the 2-layer projection MLP.
        projection_dim: output width of the projection MLP.
        temperature: NT-Xent temperature (paper default 0.5 for small batches).
    """

    two_tensor_views = True

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_hidden_dim: int = 512,
        projection_dim: int = 128,
        temperature: float = 0.5,
    ) -> None:
        super().__init__(encoder, views)
        self.projector = ProjectionHead(encoder.output_dim, projection_hidden_dim, projection_dim)
        self.temperature = temperature

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Projections ``(z_a, z_b)`` of the two views."""
        z_a, z_b = self.projector(self.encoder(self.both_views(batch))).chunk(2)
        return z_a, z_b

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        z_a, z_b = embeddings
        loss = self.objective(z_a, z_b, batch)
        return Output(loss, {"loss": loss.item()})

    def objective(self, z_a: torch.Tensor, z_b: torch.Tensor, batch: Batch) -> torch.Tensor:
        """NT-Xent of the two views' projections over the global batch.

        Under torchrun the projections of every process are gathered with gradient and each
        process computes the full loss, so 2 processes x B take the step of 1 process x 2B.
        """
        return nt_xent(gather(z_a, "with_grad"), gather(z_b, "with_grad"), temperature=self.temperature)
