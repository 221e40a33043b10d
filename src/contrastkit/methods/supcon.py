"""Supervised contrastive learning (Khosla et al., 2020): same-label samples are positives."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import supcon
from contrastkit.methods.base import Method, Output
from contrastkit.nn import ProjectionHead


class SupCon(Method):
    """SupCon with two views per sample; needs ``batch.labels``.

    Args:
        encoder: backbone with an ``output_dim`` attribute.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        projection_hidden_dim: hidden width of the projection MLP.
        projection_dim: output width of the projection MLP.
        temperature: SupCon temperature (paper default 0.1).
    """

    needs_labels = True

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_hidden_dim: int = 512,
        projection_dim: int = 128,
        temperature: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.view_a, self.view_b = views
        self.projector = ProjectionHead(encoder.output_dim, projection_hidden_dim, projection_dim)
        self.temperature = temperature

    def forward(self, batch: Batch) -> Output:
        self.check_batch(batch)
        x = batch.inputs
        z = self.projector(self.encoder(torch.cat([self.view_a(x), self.view_b(x)])))
        z_a, z_b = z.chunk(2)
        loss = supcon(torch.stack([z_a, z_b], dim=1), batch.labels, temperature=self.temperature)
        return Output(loss, {"loss": loss.item()})
