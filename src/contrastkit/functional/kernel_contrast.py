r"""Kernel-weighted (metadata-aware) contrastive loss of AnatCL.

Barbano et al., "Anatomical Foundation Models for Brain MRIs" (AnatCL, 2024; code
``carloalbertobarbano/AnatCL``, inference only). Pairs of brain scans are pulled together in
proportion to the similarity of their anatomical measures (cortical thickness, volumes, ...
per region) and of their ages, in the y-aware form of Dufumier et al. (MICCAI 2021):

.. math::

    w_{ij} = K(m_i, m_j), \qquad
    \ell_i = -\sum_{j \ne i} \frac{w_{ij}}{\sum_{k \ne i} w_{ik}}
        \log \frac{e^{s_{ij}/\tau}}{\sum_{k \ne i} e^{s_{ik}/\tau}}

with ``K`` a Gaussian/RBF kernel on standardised metadata: **global** on the whole vector,
**local** the mean of one kernel per region. :func:`anatcl_loss` mixes the anatomy term with
the same term built from an age kernel.

METHODS.md verdict: **PARTIAL** (the training code was not released; this loss is a
low-confidence reconstruction from the paper). A paper-scale check would need a 3D ResNet-18
pretrained on OpenBHB T1 volumes with FreeSurfer measures, evaluated on the 12 diagnosis tasks
and 10 clinical scores.

Limits: with identical metadata every weight is equal and ``ell_i`` is SupCon with one class;
as the bandwidth goes to 0 only pairs with identical metadata (the two views of a scan)
keep weight and the loss becomes NT-Xent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.functional.core import reduce
from contrastkit.utils.checks import Scalar, check_embeddings, check_positive_scalar, check_reduction

__all__ = [
    "standardize_metadata",
    "rbf_kernel_weights",
    "kernel_weighted_info_nce",
    "anatcl_loss",
]

DESCRIPTORS = ("global", "local")


def _check_metadata(name: str, metadata: torch.Tensor, rows: int | None = None) -> None:
    if not isinstance(metadata, torch.Tensor) or metadata.dim() not in (1, 2, 3):
        shape = tuple(metadata.shape) if isinstance(metadata, torch.Tensor) else type(metadata).__name__
        raise ValueError(f"{name}: expected a [N], [N, F] or [N, R, F] tensor, got {shape}")
    if not metadata.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {metadata.dtype}")
    if rows is not None and metadata.shape[0] != rows:
        raise ValueError(f"{name}: expected {rows} rows (one per sample), got shape {tuple(metadata.shape)}")
    if not torch.isfinite(metadata).all():
        raise ValueError(f"{name}: expected finite values")


def standardize_metadata(
    metadata: torch.Tensor,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
    *,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Z-score each metadata feature: ``(m - mean) / max(std, eps)``.

    Args:
        metadata: ``[N, ...]`` metadata (feature axes after the first).
        mean: the per-feature mean (shape ``metadata.shape[1:]``); ``None``: the batch mean.
            Pass dataset statistics for a batch-independent kernel.
        std: the per-feature standard deviation (biased); ``None``: the batch's.
        eps: floor of the standard deviation (constant features stay 0, not NaN).

    Returns:
        The standardised tensor, same shape.
    """
    _check_metadata("metadata", metadata)
    check_positive_scalar("eps", eps)
    mean = metadata.mean(dim=0) if mean is None else mean.to(metadata)
    std = metadata.std(dim=0, unbiased=False) if std is None else std.to(metadata)
    return (metadata - mean) / std.clamp(min=eps)


def rbf_kernel_weights(metadata: torch.Tensor, *, sigma: float = 1.0, descriptor: str = "global") -> torch.Tensor:
    r"""Gaussian kernel weights between all pairs of metadata vectors.

    * ``descriptor="global"``: ``w_ij = exp(-||m_i - m_j||^2 / (2 sigma^2))`` on the
      flattened vectors;
    * ``descriptor="local"``: ``metadata [N, R, F]`` holds ``R`` regions of ``F`` measures,
      ``w_ij = (1/R) sum_r exp(-||m_ir - m_jr||^2 / (2 sigma^2))``.

    The inputs are used as given (standardise first, :func:`standardize_metadata`).

    Args:
        metadata: ``[N]``, ``[N, F]`` or ``[N, R, F]`` (``local`` needs ``[N, R, F]``).
        sigma: the bandwidth ``> 0`` (default 1.0, one standard deviation).
        descriptor: ``"global"`` (default) or ``"local"``.

    Returns:
        ``[N, N]`` symmetric weights in ``(0, 1]`` with a unit diagonal.

    Example:
        >>> weights = rbf_kernel_weights(torch.randn(6, 10, 3), sigma=1.0, descriptor="local")
        >>> weights.shape
        torch.Size([6, 6])
    """
    _check_metadata("metadata", metadata)
    check_positive_scalar("sigma", sigma)
    if descriptor not in DESCRIPTORS:
        raise ValueError(f"descriptor: expected one of {', '.join(DESCRIPTORS)}, got {descriptor!r}")
    if descriptor == "local":
        if metadata.dim() != 3:
            raise ValueError(f"metadata: descriptor='local' expects [N, R, F] (regions), got {tuple(metadata.shape)}")
        regions = metadata.transpose(0, 1)  # [R, N, F]
        squared = (regions.unsqueeze(2) - regions.unsqueeze(1)).pow(2).sum(-1)  # [R, N, N]
        return torch.exp(-squared / (2 * sigma**2)).mean(dim=0)
    flat = metadata.reshape(metadata.shape[0], -1)
    # exact differences (not the |a|^2 + |b|^2 - 2ab expansion) so identical vectors give weight exactly 1
    squared = (flat.unsqueeze(1) - flat.unsqueeze(0)).pow(2).sum(-1)
    return torch.exp(-squared / (2 * sigma**2))


def kernel_weighted_info_nce(
    embeddings: torch.Tensor,
    weights: torch.Tensor,
    temperature: Scalar = 0.1,
    *,
    normalize: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Kernel-weighted InfoNCE (y-aware contrastive loss, Dufumier et al., MICCAI 2021).

    .. math::

        \ell_i = -\sum_{j \ne i} \frac{w_{ij}}{\sum_{k \ne i} w_{ik}}
            \log \frac{e^{s_{ij}/\tau}}{\sum_{k \ne i} e^{s_{ik}/\tau}}

    with ``s`` the cosine similarity (``normalize=True``) or the dot product. The diagonal of
    ``weights`` is ignored (self-pairs are excluded from both sums).

    Args:
        embeddings: ``[N, D]``, all views stacked (e.g. ``[z_a; z_b]``), ``N >= 2``.
        weights: ``[N, N]`` non-negative pair weights; every row needs an off-diagonal weight > 0.
        temperature: ``tau > 0`` (default 0.1).
        normalize: L2-normalise the embeddings (default ``True``).
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'`` (``[N]``).

    Returns:
        The loss.

    Raises:
        ValueError: on bad shapes, negative weights or a row without an off-diagonal weight.

    Example:
        >>> z = torch.randn(8, 16)
        >>> loss = kernel_weighted_info_nce(z, torch.rand(8, 8), temperature=0.1)
    """
    check_reduction(reduction)
    check_positive_scalar("temperature", temperature)
    check_embeddings("embeddings", embeddings, min_rows=2)
    n = embeddings.shape[0]
    if not isinstance(weights, torch.Tensor) or tuple(weights.shape) != (n, n):
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"weights: expected shape [{n}, {n}], got {shape}")
    if not torch.isfinite(weights).all() or bool((weights < 0).any()):
        raise ValueError("weights: expected finite non-negative values")
    z = F.normalize(embeddings, dim=1) if normalize else embeddings
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = torch.log_softmax(logits, dim=1).masked_fill(eye, 0.0)
    pair_weights = weights.to(z).masked_fill(eye, 0.0)
    totals = pair_weights.sum(dim=1)
    if bool((totals <= 0).any()):
        raise ValueError("weights: every row needs an off-diagonal weight > 0 (a positive), got an all-zero row")
    loss = -(pair_weights * log_prob).sum(dim=1) / totals
    return reduce(loss, reduction)


def anatcl_loss(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    anatomy: torch.Tensor,
    age: torch.Tensor | None = None,
    *,
    descriptor: str = "local",
    sigma: float = 1.0,
    age_sigma: float = 5.0,
    alpha: float = 0.5,
    temperature: Scalar = 0.1,
    standardize: bool = True,
) -> torch.Tensor:
    r"""AnatCL: anatomy-kernel and age-kernel weighted contrastive losses on two views.

    The ``2N`` embeddings ``[z_a; z_b]`` share their sample's metadata (the two views of a
    scan get weight 1 to each other). With ``L_anat`` the kernel-weighted InfoNCE on the
    anatomy kernel (:func:`rbf_kernel_weights` on standardised measures) and ``L_age`` the
    same on an RBF kernel of the raw ages (``age_sigma`` in years, y-aware's 5):

    .. math::  L = \alpha L_{anat} + (1 - \alpha) L_{age}

    (``age=None``: ``L = L_anat``.) The form of the mixing is [recalled]: the paper states
    a weighted combination of the two terms.

    Args:
        z_a: ``[N, D]`` first views.
        z_b: ``[N, D]`` second views.
        anatomy: ``[N, F]`` or ``[N, R, F]`` anatomical measures (``local`` needs regions).
        age: optional ``[N]`` ages.
        descriptor: ``"local"`` (default, mean of per-region kernels) or ``"global"``.
        sigma: anatomy-kernel bandwidth in standard deviations (default 1.0).
        age_sigma: age-kernel bandwidth (default 5.0, in the units of ``age``).
        alpha: weight of the anatomy term in ``[0, 1]`` (default 0.5).
        temperature: ``tau`` (default 0.1).
        standardize: z-score ``anatomy`` over the batch first (default ``True``).

    Returns:
        The scalar loss.

    Example:
        >>> z_a, z_b = torch.randn(8, 16), torch.randn(8, 16)
        >>> loss = anatcl_loss(z_a, z_b, torch.randn(8, 5, 2), torch.rand(8) * 60 + 20)
    """
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a float in [0, 1], got {alpha!r}")
    check_embeddings("z_a", z_a, min_rows=1)
    check_embeddings("z_b", z_b, dim=z_a.shape[1], min_rows=z_a.shape[0])
    if z_b.shape[0] != z_a.shape[0]:
        raise ValueError(f"z_b: expected {z_a.shape[0]} rows (paired with z_a), got shape {tuple(z_b.shape)}")
    n = z_a.shape[0]
    _check_metadata("anatomy", anatomy, rows=n)
    embeddings = torch.cat([z_a, z_b], dim=0)
    measures = standardize_metadata(anatomy) if standardize else anatomy
    weights = rbf_kernel_weights(measures, sigma=sigma, descriptor=descriptor).repeat(2, 2)
    loss = kernel_weighted_info_nce(embeddings, weights, temperature)
    if age is None:
        return loss
    _check_metadata("age", age, rows=n)
    if age.dim() != 1:
        raise ValueError(f"age: expected shape [{n}], got {tuple(age.shape)}")
    age_weights = rbf_kernel_weights(age.unsqueeze(1), sigma=age_sigma).repeat(2, 2)
    return alpha * loss + (1 - alpha) * kernel_weighted_info_nce(embeddings, age_weights, temperature)
