"""Alignment and uniformity of embeddings on the hypersphere (Wang & Isola, 2020)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings, check_pair, check_positive_scalar

__all__ = ["alignment", "mmd", "uniformity"]


def alignment(z_a: torch.Tensor, z_b: torch.Tensor, alpha: float = 2.0, *, normalize: bool = True) -> torch.Tensor:
    r"""Alignment loss (Wang & Isola, 2020, "Understanding Contrastive Representation Learning through Alignment and Uniformity on the Hypersphere").

    .. math::

        L_{align} = \frac{1}{B} \sum_i \| f(x_i) - f(y_i) \|_2^{\alpha}

    The paper defines it on L2-normalised embeddings; this function normalises
    them (``normalize=True``, default) — pass ``normalize=False`` for inputs
    already on the sphere or to measure raw distances. Lower is better (0 when
    positives coincide; at most ``2^alpha`` on the sphere).

    Args:
        z_a: ``[B, D]`` embeddings.
        z_b: ``[B, D]`` embeddings of the positives, paired row by row.
        alpha: the exponent ``alpha > 0`` (default 2).
        normalize: L2-normalise the inputs (default ``True``).

    Returns:
        The scalar loss.

    Example:
        >>> z_a, z_b = torch.randn(8, 32), torch.randn(8, 32)
        >>> value = alignment(z_a, z_b, alpha=2)
        >>> bool(0 <= value <= 4)
        True
    """
    check_positive_scalar("alpha", alpha)
    check_pair("z_a", z_a, "z_b", z_b)
    if normalize:
        z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    squared = (z_a - z_b).pow(2).sum(dim=1)
    return squared.mean() if alpha == 2 else squared.pow(alpha / 2).mean()


def uniformity(z: torch.Tensor, t: float = 2.0, *, normalize: bool = True) -> torch.Tensor:
    r"""Uniformity loss (Wang & Isola, 2020).

    .. math::

        L_{uniform} = \log \frac{2}{B(B-1)} \sum_{i < j} \exp(-t \| f(x_i) - f(x_j) \|_2^2)

    over the distinct pairs ``i < j`` (``torch.pdist``), computed with a
    ``logsumexp``. The paper defines it on L2-normalised embeddings; this function
    normalises them (``normalize=True``, default). Lower (more negative) is more
    uniform; the value lies in ``[-4t, 0]`` on the sphere.

    Args:
        z: ``[B, D]`` embeddings, ``B >= 2``.
        t: the kernel scale ``t > 0`` (default 2).
        normalize: L2-normalise the inputs (default ``True``).

    Returns:
        The scalar loss.

    Example:
        >>> z = torch.randn(64, 16)
        >>> value = uniformity(z, t=2)
        >>> bool(value <= 0)
        True
    """
    check_positive_scalar("t", t)
    check_embeddings("z", z, min_rows=2)
    if normalize:
        z = F.normalize(z, dim=1)
    squared = torch.pdist(z, p=2).pow(2)
    return torch.logsumexp(-t * squared, dim=0) - math.log(squared.numel())


def mmd(x: torch.Tensor, y: torch.Tensor, *, bandwidths: tuple[float, ...] = (0.5, 1.0, 2.0)) -> torch.Tensor:
    r"""Squared maximum mean discrepancy between two samples, Gaussian kernels (Gretton et al., 2012).

    .. math::

        \mathrm{MMD}^2 = \overline{k(x, x')} + \overline{k(y, y')} - 2\, \overline{k(x, y)},
        \qquad k(a, b) = \sum_s \exp\left(-\frac{\|a - b\|^2}{2 (s\, m)^2}\right)

    (the biased V-statistic: every pair, diagonal included, so it is ``>= 0``),
    with one kernel per ``s`` in ``bandwidths`` scaled by ``m``, the median pairwise
    distance of the pooled sample (detached: the scale follows the data, it is not
    optimised). AutoTCL's augmenter keeps its views close to the originals in
    representation space with it.

    Args:
        x: ``[N, D]`` first sample.
        y: ``[M, D]`` second sample, same ``D``.
        bandwidths: kernel widths as multiples of the median distance.

    Returns:
        The scalar ``MMD^2``.

    Example:
        >>> x = torch.randn(16, 4)
        >>> float(mmd(x, x)) == 0.0
        True
    """
    check_embeddings("x", x)
    check_embeddings("y", y, dim=x.shape[1])
    if not bandwidths or any(s <= 0 for s in bandwidths):
        raise ValueError(f"mmd: expected positive bandwidths, got {bandwidths}")
    pooled = torch.cat([x, y])
    distances = torch.cdist(pooled, pooled).pow(2)
    off_diagonal = distances.detach()[~torch.eye(len(pooled), dtype=torch.bool, device=pooled.device)]
    median = off_diagonal.median().clamp_min(1e-12) if off_diagonal.numel() else distances.new_tensor(1.0)
    kernel = sum(torch.exp(-distances / (2 * (s**2) * median)) for s in bandwidths)
    n = x.shape[0]
    assert isinstance(kernel, torch.Tensor)
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()
