"""HBI's amortised Banzhaf-interaction estimator: a small network from token similarity to interaction.

Jin et al., CVPR 2023 ("Video-Text as Game Players"). Monte-Carlo Banzhaf interactions cost
``4 * N_t * N_v * samples`` value calls per pair, too slow inside training, so HBI pretrains
this network by MSE (:func:`contrastkit.functional.banzhaf.banzhaf_estimator_loss`) to the
Monte-Carlo targets (:func:`contrastkit.functional.banzhaf.hbi_banzhaf_interaction`) and then
uses it frozen as the teacher of the alignment loss; a second, trainable copy per level maps
the similarity to the aligned prediction.

Architecture as the official ``BanzhafModule`` (github.com/jpthu17/HBI,
``HBI/models/banzhaf.py``), written independently: a 3x3 convolution 1 -> ``planes`` channels
(padding 1) and ReLU on the ``[N_t, N_v]`` similarity map; one softmax self-attention over the
``N_t * N_v`` cells with ``planes x planes`` query/key/value matrices (Xavier-uniform, gain
1.414) and no ``1/sqrt(d)`` scaling; a residual add; a 3x3 convolution ``planes`` -> 1.
Official ``planes`` is 64. Deviations: the official module also builds a ``BatchNorm2d`` it
never uses (omitted here), and takes a 4-d ``[B, 1, N_t, N_v]`` input (here ``[B, N_t, N_v]``).
"""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.utils.checks import check_int, fail

__all__ = ["BanzhafEstimator"]


class BanzhafEstimator(nn.Module):
    """Map a token-similarity map ``[B, N_t, N_v]`` to a Banzhaf-interaction map of the same shape.

    Args:
        planes: hidden channels (official 64).

    Example:
        >>> est = BanzhafEstimator(planes=16)
        >>> est(torch.randn(2, 5, 3)).shape
        torch.Size([2, 5, 3])
    """

    def __init__(self, planes: int = 64) -> None:
        super().__init__()
        planes = check_int("BanzhafEstimator", "planes", planes, 1)
        self.encode = nn.Conv2d(1, planes, kernel_size=3, padding=1)
        self.decode = nn.Conv2d(planes, 1, kernel_size=3, padding=1)
        self.query = nn.Parameter(torch.empty(planes, planes))
        self.key = nn.Parameter(torch.empty(planes, planes))
        self.value = nn.Parameter(torch.empty(planes, planes))
        for weight in (self.query, self.key, self.value):
            nn.init.xavier_uniform_(weight, gain=1.414)

    def forward(self, similarity: torch.Tensor) -> torch.Tensor:
        if not isinstance(similarity, torch.Tensor) or similarity.dim() != 3:
            fail("BanzhafEstimator", "a similarity map [B, N_t, N_v]", getattr(similarity, "shape", similarity))
        b, nt, nv = similarity.shape
        x = torch.relu(self.encode(similarity[:, None]))  # [B, C, N_t, N_v]
        cells = x.flatten(2).transpose(1, 2)  # [B, N_t * N_v, C]
        q, k, v = cells @ self.query, cells @ self.key, cells @ self.value
        attended = torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v  # un-scaled, as the official module
        x = x + attended.transpose(1, 2).reshape(b, -1, nt, nv)
        return self.decode(x)[:, 0]
