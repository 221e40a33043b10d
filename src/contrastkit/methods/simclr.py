"""SimCLR (Chen et al., 2020): two augmented views, a projection head, NT-Xent."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import nt_xent
from contrastkit.methods.base import Method, Output
from contrastkit.nn import ProjectionHead


class SimCLR(Method):
    """SimCLR: NT-Xent between the projections of two views of each image.

    Args:
        encoder: backbone with an ``output_dim`` attribute; its output is the representation.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        projection_hidden_dim: hidden width of the 2-layer projection MLP.
        projection_dim: output width of the projection MLP.
        temperature: NT-Xent temperature (paper default 0.5 for small batches).
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_hidden_dim: int = 512,
        projection_dim: int = 128,
        temperature: float = 0.5,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.view_a, self.view_b = views
        self.projector = ProjectionHead(encoder.output_dim, projection_hidden_dim, projection_dim)
        self.temperature = temperature

    def forward(self, batch: Batch) -> Output:
        self.check_batch(batch)
        x = batch.inputs
        # One encoder pass over both views: half the kernel launches, same result up to BN statistics.
        z = self.projector(self.encoder(torch.cat([self.view_a(x), self.view_b(x)])))
        z_a, z_b = z.chunk(2)
        loss = nt_xent(z_a, z_b, temperature=self.temperature)
        return Output(loss, {"loss": loss.item()})
