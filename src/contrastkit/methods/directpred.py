"""DirectPred on SimSiam: SimSiam whose learned predictor is replaced by a closed-form linear one.

Tian, Chen & Ganguli, "Understanding Self-supervised Learning Dynamics without
Contrastive Pairs" (ICML 2021; official code ``facebookresearch/luckmatters``).
METHODS.md #24, verdict **FULL**. The predictor is :class:`contrastkit.nn.direct_predictor.DirectPredictor`;
the paper evaluates it on BYOL and on SimSiam, and this is the SimSiam variant.
"""

from __future__ import annotations

from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import negative_cosine
from contrastkit.methods.base import Method, Output
from contrastkit.methods.simsiam import SimSiam
from contrastkit.negatives import gather
from contrastkit.nn import ProjectionHead
from contrastkit.nn.direct_predictor import DirectPredictor


class DirectPred(SimSiam):
    """SimSiam with ``p = W_p z``, ``W_p = U diag(sqrt(s / max s) + eps) U^T`` from the running ``E[z z^T]``.

    The loss is SimSiam's, ``D(p_a, sg z_b)/2 + D(p_b, sg z_a)/2``. In training mode each
    step first folds the batch's projections (both views, detached, gathered over
    processes so that every process holds the same ``W_p``) into the running correlation,
    then predicts with the updated ``W_p``. No parameter of the predictor is trained.

    Args:
        encoder: backbone with an ``output_dim`` attribute.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        projection_dim: projector output width (as :class:`SimSiam`).
        rho: running-correlation decay (paper 0.3).
        eps: added to every predictor eigenvalue (0.01, the official BYOL sample command; the
            official SimSiam variant uses 0.1).
        freq: recompute ``W_p`` every ``freq`` steps (paper 1; the official SimSiam variant uses 5).
        last_batch_norm: keep SimSiam's ``BatchNorm1d(affine=False)`` on the projector output
            (default, so that DirectPred and SimSiam differ only in the predictor). The official
            SimSiam+DirectPred code drops it to match BYOL's projector (``False``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_dim: int = 512,
        rho: float = 0.3,
        eps: float = 0.01,
        freq: int = 1,
        last_batch_norm: bool = True,
    ) -> None:
        super().__init__(encoder, views, projection_dim=projection_dim)
        if not last_batch_norm:
            self.projector = ProjectionHead(
                encoder.output_dim, projection_dim, projection_dim, num_layers=3, last_batch_norm=False
            )
        # Replaces SimSiam's learned PredictionHead (its parameters are dropped with it).
        self.predictor = DirectPredictor(projection_dim, rho=rho, eps=eps, freq=freq)

    # The predictor update is a per-step side effect on the whole batch: it cannot be split into
    # gradient-cache row blocks (each block would update F once). Restore the unsupported stubs.
    embeddings = Method.embeddings
    loss_from_embeddings = Method.loss_from_embeddings

    def forward(self, batch: Batch) -> Output:
        z = self.projector(self.encoder(self.both_views(batch)))
        if self.training:
            self.predictor.update(gather(z.detach(), "no_grad"))
        p_a, p_b = self.predictor(z).chunk(2)
        z_a, z_b = z.chunk(2)
        loss = 0.5 * (negative_cosine(p_a, z_b) + negative_cosine(p_b, z_a))
        return Output(loss, {"loss": loss.item()})
