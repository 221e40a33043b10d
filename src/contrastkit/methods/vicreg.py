"""VICReg (Bardes et al., 2022): variance, invariance and covariance regularisation."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import vicreg
from contrastkit.methods.base import Output, TwoViewMethod
from contrastkit.negatives import gather
from contrastkit.nn import ProjectionHead


class VICReg(TwoViewMethod):
    """VICReg: invariance between views, a variance hinge and decorrelation per branch.

    Args:
        encoder: backbone with an ``output_dim`` attribute.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        projection_hidden_dim: hidden width of the expander (paper: 8192).
        projection_dim: expander output width (paper: 8192).
        sim_coeff: invariance weight λ (paper 25).
        std_coeff: variance weight μ (paper 25).
        cov_coeff: covariance weight ν (paper 1).
    """

    two_tensor_views = True

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_hidden_dim: int = 1024,
        projection_dim: int = 1024,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
    ) -> None:
        super().__init__(encoder, views)
        self.projector = ProjectionHead(encoder.output_dim, projection_hidden_dim, projection_dim, num_layers=3)
        self.sim_coeff, self.std_coeff, self.cov_coeff = sim_coeff, std_coeff, cov_coeff

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Projections ``(z_a, z_b)``, one pass per view: the loss standardises each branch over its own batch."""
        return self.each_view(batch, self.projector)

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        # Batch statistics must be global: gather with gradient, full loss on every process.
        z_a, z_b = (gather(z, "with_grad") for z in embeddings)
        loss = vicreg(z_a, z_b, sim_coeff=self.sim_coeff, std_coeff=self.std_coeff, cov_coeff=self.cov_coeff)
        return Output(loss, {"loss": loss.item()})
