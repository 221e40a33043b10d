"""A multilayer perceptron encoder for flat or flattened inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLPEncoder(nn.Module):
    """Flatten the input, then ``Linear -> (BatchNorm) -> ReLU`` per hidden layer, then ``Linear``.

    A cheap baseline encoder for tabular data, embeddings, or small images
    (a 28x28 image becomes a 784-d vector).

    Args:
        input_dim: number of features after flattening (e.g. ``28 * 28``).
        hidden_dims: widths of the hidden layers; empty gives a linear encoder.
        output_dim: size of the representation.
        batch_norm: add ``BatchNorm1d`` after each hidden linear layer.

    Example:
        >>> encoder = MLPEncoder(28 * 28, output_dim=128)
        >>> encoder(torch.randn(4, 1, 28, 28)).shape
        torch.Size([4, 128])
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (512, 512),
        output_dim: int = 128,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        hidden_dims = tuple(int(h) for h in hidden_dims)
        if input_dim < 1 or output_dim < 1 or any(h < 1 for h in hidden_dims):
            raise ValueError(
                f"MLPEncoder: expected positive sizes, got input_dim={input_dim}, "
                f"hidden_dims={hidden_dims}, output_dim={output_dim}"
            )
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        layers: list[nn.Module] = []
        previous = self.input_dim
        for width in hidden_dims:
            # No bias when BatchNorm follows: its shift makes the bias redundant.
            layers.append(nn.Linear(previous, width, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.ReLU(inplace=True))
            previous = width
        layers.append(nn.Linear(previous, self.output_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``x`` of shape ``[B, ...]`` with ``prod(...) == input_dim`` into ``[B, output_dim]``."""
        if x.dim() < 2:
            raise ValueError(f"MLPEncoder: expected input [B, ...], got shape {tuple(x.shape)}")
        flat = torch.flatten(x, 1)
        if flat.shape[1] != self.input_dim:
            raise ValueError(
                f"MLPEncoder: expected {self.input_dim} features per row after flattening, "
                f"got shape {tuple(x.shape)} ({flat.shape[1]} features)"
            )
        return self.layers(flat)
