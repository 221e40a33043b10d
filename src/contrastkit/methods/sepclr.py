"""SepCLR (Louiset et al., ICLR 2024): common and salient spaces for contrastive analysis.

METHODS.md #48, verdict FULL. The background dataset (label 0) and the target dataset
(label > 0) share common factors, which go to the common space ``c``; the factors only the
target has go to the salient space ``s``, where every background sample sits at ``0``.
The objective is :func:`contrastkit.functional.sepclr.sepclr_loss` (k-JEM variant).

Architecture, as in the official code (``cifar_mnist/architectures.py``): two backbones, a
common one and a salient one, each followed by a linear layer to its 32-d representation
(the spaces evaluated downstream), and a 32 -> 128 -> 32 MLP head (BN + ReLU) on each, on
whose outputs the loss is computed.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional.sepclr import sepclr_loss
from contrastkit.methods.base import Output, TwoViewMethod
from contrastkit.nn import ProjectionHead


class SepCLR(TwoViewMethod):
    """SepCLR: ``L = L_c + beta_s L_s + beta_r L_reg + lambda L_jem`` on two views.

    Needs ``batch.labels`` with ``0`` for background samples and ``> 0`` for target samples
    (the value of a target label, e.g. a sub-group id, is not used by the loss).

    Downstream spaces: :meth:`common` gives ``c(x)`` ``[B, common_dim]``, :meth:`salient`
    gives ``s(x)`` ``[B, salient_dim]`` (both before the heads, as the official evaluation),
    and :meth:`embed` their concatenation ``[c(x), s(x)]`` ``[B, common_dim + salient_dim]``
    (the first ``common_dim`` columns are the common space).

    Args:
        encoder: the common backbone, with an ``output_dim`` attribute.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        salient_encoder: the salient backbone; ``None`` makes a fresh copy of ``encoder``
            with re-initialised weights (the paper uses two separate networks).
        common_dim: size of the common representation (paper 32).
        salient_dim: size of the salient representation (paper 32).
        head_hidden_dim: hidden width of both MLP heads (paper 128).
        temperature: ``tau`` of the align/uniform/k-JEM kernels (paper 0.5).
        beta_salient: weight of the salient term (paper 1000).
        beta_info_less: weight of the information-less term (paper 1000).
        jem_weight: weight ``lambda`` of the k-JEM mutual-information penalty (paper 10; 0
            drops the penalty, the ablation of the paper).
    """

    needs_labels = True

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        salient_encoder: nn.Module | None = None,
        common_dim: int = 32,
        salient_dim: int = 32,
        head_hidden_dim: int = 128,
        temperature: float = 0.5,
        beta_salient: float = 1000.0,
        beta_info_less: float = 1000.0,
        jem_weight: float = 10.0,
    ) -> None:
        super().__init__(encoder, views)
        if min(common_dim, salient_dim, head_hidden_dim) < 1:
            raise ValueError(
                f"SepCLR: expected positive sizes, got common_dim={common_dim}, salient_dim={salient_dim}, "
                f"head_hidden_dim={head_hidden_dim}"
            )
        if salient_encoder is None:
            salient_encoder = copy.deepcopy(encoder)
            # A copy would start as the same function: re-draw its weights so the spaces start apart.
            for module in salient_encoder.modules():
                if module is not salient_encoder and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        if not hasattr(salient_encoder, "output_dim"):
            raise ValueError("SepCLR: the salient encoder needs an 'output_dim' attribute")
        self.salient_encoder = salient_encoder
        self.common_layer = nn.Linear(encoder.output_dim, common_dim)
        self.salient_layer = nn.Linear(salient_encoder.output_dim, salient_dim)
        self.common_head = ProjectionHead(common_dim, head_hidden_dim, common_dim, num_layers=2)
        self.salient_head = ProjectionHead(salient_dim, head_hidden_dim, salient_dim, num_layers=2)
        self.common_dim = int(common_dim)
        self.salient_dim = int(salient_dim)
        self.temperature = temperature
        self.beta_salient = beta_salient
        self.beta_info_less = beta_info_less
        self.jem_weight = jem_weight

    def _common(self, x: torch.Tensor) -> torch.Tensor:
        return self.common_layer(self.encoder(x))

    def _salient(self, x: torch.Tensor) -> torch.Tensor:
        return self.salient_layer(self.salient_encoder(x))

    @torch.no_grad()
    def common(self, inputs: torch.Tensor) -> torch.Tensor:
        """The common representation ``c(x)``, ``[B, common_dim]``."""
        return self._common(inputs)

    @torch.no_grad()
    def salient(self, inputs: torch.Tensor) -> torch.Tensor:
        """The salient representation ``s(x)``, ``[B, salient_dim]`` (near 0 on background samples)."""
        return self._salient(inputs)

    @torch.no_grad()
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[c(x), s(x)]``, ``[B, common_dim + salient_dim]``: common columns first."""
        return torch.cat([self._common(inputs), self._salient(inputs)], dim=1)

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """Head outputs ``(c_a, c_b, s_a, s_b)`` of the two views (one pass per backbone over both)."""
        x = self.both_views(batch)
        common_a, common_b = self.common_head(self._common(x)).chunk(2)
        salient_a, salient_b = self.salient_head(self._salient(x)).chunk(2)
        return common_a, common_b, salient_a, salient_b

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        assert batch.labels is not None  # check_batch guarantees it
        common_a, common_b, salient_a, salient_b = embeddings
        loss, parts = sepclr_loss(
            common_a.float(), common_b.float(), salient_a.float(), salient_b.float(), batch.labels,
            temperature=self.temperature, beta_salient=self.beta_salient,
            beta_info_less=self.beta_info_less, jem_weight=self.jem_weight,
        )
        logs = {"loss": loss.item(), **{name: value.item() for name, value in parts.items()}}
        return Output(loss, logs)
