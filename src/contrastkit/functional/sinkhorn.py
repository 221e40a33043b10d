"""Sinkhorn-Knopp equipartition (Cuturi 2013; as used by SwAV, Caron et al. 2020).

One implementation for every place that needs balanced soft assignments of samples to
prototypes: SwAV-style swapped prediction (:mod:`contrastkit.functional.cluster_agreement`)
and BECLR's DyCE memory (:mod:`contrastkit.negatives.dyce`).
"""

from __future__ import annotations

import torch

__all__ = ["sinkhorn_knopp"]


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    r"""Equipartitioned soft codes of ``B`` samples over ``K`` prototypes.

    ``Q = exp(scores / epsilon)`` (normalised to total mass 1) is alternately rescaled so
    every prototype (column) holds mass ``1/K`` and every sample (row) ``1/B``; the returned
    codes are ``B * Q``, so each row sums to 1 exactly (the row step comes last) and each
    column sums to ``B / K`` at convergence. Computed in float64 in the log domain, so a small
    ``epsilon`` (BECLR's config uses 1e-5) does not overflow. No gradient.

    Args:
        scores: ``[B, K]`` sample-prototype similarities (cosines in SwAV).
        epsilon: entropic regularisation (SwAV: 0.05).
        iterations: rescaling rounds (SwAV: 3; BECLR: 10).

    Returns:
        ``[B, K]`` codes in ``scores.dtype``, rows summing to 1.

    Example:
        >>> codes = sinkhorn_knopp(torch.randn(32, 10))
        >>> bool(torch.allclose(codes.sum(dim=1), torch.ones(32)))
        True
    """
    if scores.dim() != 2 or scores.shape[0] < 1 or scores.shape[1] < 1:
        raise ValueError(f"sinkhorn_knopp: expected scores [B, K], got shape {tuple(scores.shape)}")
    if not float(epsilon) > 0:
        raise ValueError(f"sinkhorn_knopp: expected epsilon > 0, got {epsilon}")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise ValueError(f"sinkhorn_knopp: expected iterations an int >= 1, got {iterations!r}")
    batch, prototypes = scores.shape
    log_q = scores.double() / epsilon
    log_q = log_q - torch.logsumexp(log_q.flatten(), dim=0)
    log_k, log_b = torch.log(torch.tensor(float(prototypes))), torch.log(torch.tensor(float(batch)))
    for _ in range(iterations):
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - log_k.to(log_q)  # columns: 1/K
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - log_b.to(log_q)  # rows: 1/B
    return (log_q + log_b.to(log_q)).exp().to(scores.dtype)
