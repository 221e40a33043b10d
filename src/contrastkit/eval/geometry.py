"""Alignment and uniformity of L2-normalised features (Wang & Isola, ICML 2020).

"Understanding Contrastive Representation Learning through Alignment and Uniformity
on the Hypersphere": with ``f`` normalised to the unit sphere,

    alignment  = E_(x, y positive) ||f(x) - f(y)||^alpha          (lower is better, alpha = 2)
    uniformity = log E_(x, y independent) exp(-t ||f(x) - f(y)||^2)  (lower is better, t = 2)

This module is self-contained (evaluation only, no gradients needed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings


def alignment(features_a: torch.Tensor, features_b: torch.Tensor, *, alpha: float = 2.0) -> float:
    """Mean ``||a_i - b_i||^alpha`` over paired rows of L2-normalised features.

    Args:
        features_a: ``[N, D]`` features of the first views.
        features_b: ``[N, D]`` features of their positives (row ``i`` pairs with row ``i``).
        alpha: the exponent (paper: 2).
    """
    check_embeddings("features_a", features_a)
    check_embeddings("features_b", features_b, dim=features_a.shape[1])
    if features_a.shape[0] != features_b.shape[0]:
        raise ValueError(
            f"alignment: expected paired rows, got {features_a.shape[0]} and {features_b.shape[0]} rows"
        )
    a = F.normalize(features_a.detach().float(), dim=1)
    b = F.normalize(features_b.detach().float(), dim=1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(features: torch.Tensor, *, t: float = 2.0, max_rows: int = 5000, seed: int = 0) -> float:
    """``log mean_{i<j} exp(-t ||f_i - f_j||^2)`` over L2-normalised features.

    Args:
        features: ``[N, D]`` features (``N >= 2``).
        t: the Gaussian potential's scale (paper: 2).
        max_rows: at most this many rows are used (a seeded random sample), bounding the
            cost to ``max_rows^2 / 2`` pairs.
        seed: the sample's seed.
    """
    check_embeddings("features", features, min_rows=2)
    x = features.detach().float()
    if x.shape[0] > max_rows:
        generator = torch.Generator().manual_seed(seed)
        x = x[torch.randperm(x.shape[0], generator=generator)[:max_rows].to(x.device)]
    x = F.normalize(x, dim=1)
    squared = torch.pdist(x).pow(2)
    return float(torch.logsumexp(-t * squared, dim=0) - torch.log(torch.tensor(float(squared.numel()))))


def alignment_uniformity(
    features_a: torch.Tensor,
    features_b: torch.Tensor,
    *,
    alpha: float = 2.0,
    t: float = 2.0,
    max_rows: int = 5000,
    seed: int = 0,
) -> dict[str, float]:
    """Alignment of paired views and uniformity of both (their mean), as in Wang & Isola 2020.

    Args:
        features_a: ``[N, D]`` features of the first views.
        features_b: ``[N, D]`` features of the paired second views.
        alpha: the alignment exponent (paper: 2).
        t: the uniformity scale (paper: 2).
        max_rows: uniformity uses at most this many rows of each side (seeded sample).
        seed: the sample's seed.

    Returns:
        ``{"alignment": float, "uniformity": float}``; both lower-is-better. Alignment lies in
        ``[0, 2^alpha]``, uniformity in ``[-4t, 0]``.

    Example:
        >>> a = torch.randn(256, 32)
        >>> alignment_uniformity(a, a)["alignment"]
        0.0
    """
    value = alignment(features_a, features_b, alpha=alpha)
    spread = (uniformity(features_a, t=t, max_rows=max_rows, seed=seed)
              + uniformity(features_b, t=t, max_rows=max_rows, seed=seed)) / 2  # fmt: skip
    return {"alignment": value, "uniformity": spread}
