"""A projection head with batch normalisation on one branch only (CCP's asymmetric BN).

In a batch-norm projection head shared by both branches of a contrastive model,
batch statistics mix the rows of a batch: a query can "see" its batch (and so,
indirectly, which key is its positive) through the mean and variance, and the
objective can be lowered through that leak instead of through the
representation — the problem MoCo solves with shuffled BN. Contrastive Context
Prediction (Wu et al., 2022, "Unsupervised Context Aware Sentence Representation
Pretraining for Multi-lingual Dense Retrieval") normalises with batch statistics
on one branch only. Which branch, and where in the head, is not verified
(METHODS #43, no public code); here the query branch carries the BatchNorm and
the key branch is row-independent.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["AsymmetricProjection"]

Branch = Literal["query", "key"]


class AsymmetricProjection(nn.Module):
    """``Linear -> [BatchNorm1d on the query branch only] -> ReLU -> Linear``.

    Both branches share every weight; only the query branch normalises with batch
    statistics (running statistics in ``eval()`` mode). The key branch output of
    a row therefore depends on that row alone, in training as in evaluation.

    Args:
        in_dim: size of the encoder output.
        out_dim: size of the projection the objective sees.
        hidden_dim: width of the hidden layer (default ``in_dim``).

    Example:
        >>> head = AsymmetricProjection(32, 16)
        >>> queries = head(torch.randn(8, 32), branch="query")
        >>> keys = head(torch.randn(8, 32), branch="key")
        >>> keys.shape
        torch.Size([8, 16])
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = in_dim if hidden_dim is None else hidden_dim
        if min(in_dim, out_dim, hidden_dim) < 1:
            raise ValueError(
                "AsymmetricProjection: expected positive sizes, got "
                f"in_dim={in_dim}, out_dim={out_dim}, hidden_dim={hidden_dim}"
            )
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.hidden = nn.Linear(self.in_dim, int(hidden_dim))
        self.batch_norm = nn.BatchNorm1d(int(hidden_dim))
        self.activation = nn.ReLU()
        self.output = nn.Linear(int(hidden_dim), self.out_dim)

    def forward(self, x: torch.Tensor, *, branch: Branch) -> torch.Tensor:
        """Project ``x [B, in_dim]`` to ``[B, out_dim]`` on the ``"query"`` or ``"key"`` branch.

        Raises:
            ValueError: on an unknown branch, or an input that is not ``[B, in_dim]``.
        """
        if branch not in ("query", "key"):
            raise ValueError(f"branch: expected 'query' or 'key', got {branch!r}")
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.in_dim:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"AsymmetricProjection: expected input of shape [B, {self.in_dim}], got {got}")
        hidden = self.hidden(x)
        if branch == "query":
            hidden = self.batch_norm(hidden)
        return self.output(self.activation(hidden))

    def extra_repr(self) -> str:
        return "batch norm on the query branch only"
