"""Supervised contrastive learning (Khosla et al., 2020): same-label samples are positives."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import supcon
from contrastkit.methods.simclr import SimCLR
from contrastkit.negatives import gather


class SupCon(SimCLR):
    """SupCon: SimCLR's two views and projector, with every same-label row a positive.

    Needs ``batch.labels``.

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
        super().__init__(
            encoder, views, projection_hidden_dim=projection_hidden_dim, projection_dim=projection_dim,
            temperature=temperature,
        )

    def objective(self, z_a: torch.Tensor, z_b: torch.Tensor, batch: Batch) -> torch.Tensor:
        """SupCon ``L_out`` over both views and the global batch, positives from ``batch.labels``."""
        assert batch.labels is not None  # check_batch guarantees it
        features = gather(torch.stack([z_a, z_b], dim=1), "with_grad")
        return supcon(features, gather(batch.labels, "no_grad"), temperature=self.temperature)
