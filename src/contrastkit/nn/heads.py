"""Projection and prediction heads used on top of an encoder.

SimCLR (Chen et al. 2020) showed that the contrastive objective works best on
a small MLP "projection" of the representation, while the representation
before it is what transfers downstream. BYOL (Grill et al. 2020) and SimSiam
(Chen & He 2021) add a "predictor" on the online branch only; the asymmetry
is what prevents collapse without negatives.
"""

from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """MLP projector: ``num_layers`` linear layers, BN + ReLU between them.

    Covers the projectors of the common methods with arguments only:

    ===============  ==========  ==========  ==========  ===============
    method           hidden_dim  output_dim  num_layers  last_batch_norm
    ===============  ==========  ==========  ==========  ===============
    SimCLR           2048        128         2           False
    MoCo v2          2048        128         2           False
    BYOL             4096        256         2           False
    SimSiam          2048        2048        3           True
    Barlow Twins     8192        8192        3           False
    VICReg           8192        8192        3           False
    ===============  ==========  ==========  ==========  ===============

    (Barlow Twins normalises the output inside its loss; SimSiam puts a BN
    without affine parameters on its output, which ``last_batch_norm`` gives.)

    Args:
        input_dim: size of the encoder output.
        hidden_dim: width of the hidden layers.
        output_dim: size of the projection the objective sees.
        num_layers: number of linear layers (``>= 1``; 1 is a linear projection).
        batch_norm: add ``BatchNorm1d`` after each hidden linear layer.
        last_batch_norm: add a ``BatchNorm1d(affine=False)`` after the last layer.

    Example:
        >>> head = ProjectionHead(128, hidden_dim=512, output_dim=64)
        >>> head(torch.randn(8, 128)).shape
        torch.Size([8, 64])
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 2048,
        output_dim: int = 128,
        num_layers: int = 2,
        batch_norm: bool = True,
        last_batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"ProjectionHead: expected num_layers >= 1, got {num_layers}")
        if min(input_dim, hidden_dim, output_dim) < 1:
            raise ValueError(
                f"ProjectionHead: expected positive sizes, got input_dim={input_dim}, "
                f"hidden_dim={hidden_dim}, output_dim={output_dim}"
            )
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        layers: list[nn.Module] = []
        previous = self.input_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(previous, hidden_dim, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            previous = hidden_dim
        layers.append(nn.Linear(previous, self.output_dim, bias=not last_batch_norm))
        if last_batch_norm:
            layers.append(nn.BatchNorm1d(self.output_dim, affine=False))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``x [B, input_dim]`` to ``[B, output_dim]``."""
        if x.dim() != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"ProjectionHead: expected input [B, {self.input_dim}], got shape {tuple(x.shape)}")
        return self.layers(x)


class PredictionHead(nn.Module):
    """BYOL/SimSiam predictor: ``Linear -> BatchNorm1d -> ReLU -> Linear``.

    Args:
        input_dim: size of the projection it predicts from.
        hidden_dim: bottleneck width (BYOL 4096; SimSiam 512 for a 2048-d input).
        output_dim: size of the prediction; equals ``input_dim`` in both papers.

    Example:
        >>> predictor = PredictionHead(256, 64, 256)
        >>> predictor(torch.randn(8, 256)).shape
        torch.Size([8, 256])
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int) -> None:
        super().__init__()
        if min(input_dim, hidden_dim, output_dim) < 1:
            raise ValueError(
                f"PredictionHead: expected positive sizes, got input_dim={input_dim}, "
                f"hidden_dim={hidden_dim}, output_dim={output_dim}"
            )
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.layers = nn.Sequential(
            nn.Linear(self.input_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, self.output_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict ``[B, output_dim]`` from ``x [B, input_dim]``."""
        if x.dim() != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"PredictionHead: expected input [B, {self.input_dim}], got shape {tuple(x.shape)}")
        return self.layers(x)
