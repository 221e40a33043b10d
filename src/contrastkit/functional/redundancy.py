"""Redundancy-reduction objectives: Barlow Twins and VICReg (no negatives)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_pair, check_positive_scalar

__all__ = ["barlow_twins", "vicreg", "vicreg_terms"]


def _off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    return matrix.masked_select(~torch.eye(matrix.shape[0], dtype=torch.bool, device=matrix.device))


def _check_coefficient(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 or value == float("inf"):
        raise ValueError(f"{name}: expected a finite float >= 0, got {value!r}")


def barlow_twins(z_a: torch.Tensor, z_b: torch.Tensor, lambd: float = 5e-3, *, eps: float = 1e-5) -> torch.Tensor:
    r"""Barlow Twins loss (Zbontar et al., 2021, "Barlow Twins: Self-Supervised Learning via Redundancy Reduction").

    Each feature is standardised over the batch, ``\hat z = (z - \mu) / \sqrt{\sigma^2 + \epsilon}``
    with the biased variance (as ``BatchNorm1d(affine=False)`` in the official code),
    and the cross-correlation ``C = \hat z_a^\top \hat z_b / N`` is pushed to the identity:

    .. math::

        L = \sum_i (1 - C_{ii})^2 + \lambda \sum_i \sum_{j \ne i} C_{ij}^2

    No L2 normalisation.

    Args:
        z_a: ``[N, D]`` first views (projector outputs), ``N >= 2``.
        z_b: ``[N, D]`` second views.
        lambd: weight of the redundancy term (default ``5e-3``, the paper's value).
        eps: added to the variance (default ``1e-5``, BatchNorm's default).

    Returns:
        The scalar loss.

    Example:
        >>> z_a, z_b = torch.randn(16, 8), torch.randn(16, 8)
        >>> loss = barlow_twins(z_a, z_b, lambd=5e-3)
        >>> loss.shape
        torch.Size([])
    """
    _check_coefficient("lambd", lambd)
    check_positive_scalar("eps", eps)
    check_pair("z_a", z_a, "z_b", z_b, min_rows=2)
    n = z_a.shape[0]

    def standardise(z: torch.Tensor) -> torch.Tensor:
        return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)

    correlation = standardise(z_a).T @ standardise(z_b) / n
    on_diagonal = (torch.diagonal(correlation) - 1).pow(2).sum()
    off_diagonal = _off_diagonal(correlation).pow(2).sum()
    return on_diagonal + lambd * off_diagonal


def vicreg_terms(z_a: torch.Tensor, z_b: torch.Tensor, *, eps: float = 1e-4) -> dict[str, torch.Tensor]:
    r"""The three unweighted VICReg terms (Bardes et al., 2022), as in the official code.

    * ``invariance``: ``mse(z_a, z_b)`` (mean over ``N * D`` entries);
    * ``variance``: ``mean_d relu(1 - sqrt(Var(z_a[:, d]) + eps)) / 2`` plus the
      same for ``z_b`` (unbiased variance);
    * ``covariance``: ``sum_{i != j} Cov(z_a)_{ij}^2 / D`` plus the same for ``z_b``,
      ``Cov(z) = (z - mean)^T (z - mean) / (N - 1)``.

    Args:
        z_a: ``[N, D]`` first views, ``N >= 2``.
        z_b: ``[N, D]`` second views.
        eps: added to the variance before the square root (default ``1e-4``).

    Returns:
        ``{"invariance": ..., "variance": ..., "covariance": ...}``, scalar tensors.

    Example:
        >>> z_a, z_b = torch.randn(16, 8), torch.randn(16, 8)
        >>> terms = vicreg_terms(z_a, z_b)
        >>> sorted(terms)
        ['covariance', 'invariance', 'variance']
    """
    check_positive_scalar("eps", eps)
    check_pair("z_a", z_a, "z_b", z_b, min_rows=2)
    n, d = z_a.shape
    invariance = F.mse_loss(z_a, z_b)
    x = z_a - z_a.mean(dim=0)
    y = z_b - z_b.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + eps)
    std_y = torch.sqrt(y.var(dim=0) + eps)
    variance = F.relu(1 - std_x).mean() / 2 + F.relu(1 - std_y).mean() / 2
    cov_x = x.T @ x / (n - 1)
    cov_y = y.T @ y / (n - 1)
    covariance = _off_diagonal(cov_x).pow(2).sum() / d + _off_diagonal(cov_y).pow(2).sum() / d
    return {"invariance": invariance, "variance": variance, "covariance": covariance}


def vicreg(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    eps: float = 1e-4,
) -> torch.Tensor:
    r"""VICReg loss (Bardes et al., 2022, "VICReg: Variance-Invariance-Covariance Regularization").

    .. math::

        L = \lambda\, s(Z, Z') + \mu\, [v(Z) + v(Z')] / 2 + \nu\, [c(Z) + c(Z')]

    with ``s`` the mean squared error, ``v(Z) = mean_d relu(1 - sqrt(Var(Z_d) + eps))``
    (unbiased variance) and ``c(Z) = sum_{i != j} Cov(Z)_{ij}^2 / D``; exactly the
    official code (see :func:`vicreg_terms` for the separate terms). No L2
    normalisation.

    Args:
        z_a: ``[N, D]`` first views (expander outputs), ``N >= 2``.
        z_b: ``[N, D]`` second views.
        sim_coeff: invariance weight ``lambda`` (default 25).
        std_coeff: variance weight ``mu`` (default 25).
        cov_coeff: covariance weight ``nu`` (default 1).
        eps: added to the variance (default ``1e-4``).

    Returns:
        The scalar loss.

    Example:
        >>> z_a, z_b = torch.randn(16, 8), torch.randn(16, 8)
        >>> loss = vicreg(z_a, z_b)
        >>> loss.shape
        torch.Size([])
    """
    for name, value in (("sim_coeff", sim_coeff), ("std_coeff", std_coeff), ("cov_coeff", cov_coeff)):
        _check_coefficient(name, value)
    terms = vicreg_terms(z_a, z_b, eps=eps)
    return sim_coeff * terms["invariance"] + std_coeff * terms["variance"] + cov_coeff * terms["covariance"]
