"""TS2Vec's hierarchical contrastive loss over per-timestamp representations.

Yue et al., AAAI 2022, "TS2Vec: Towards Universal Representation of Time Series",
Sec. 3.3 and Alg. 1. Two views ``z_a, z_b [B, T, D]`` of the same timestamps are
contrasted at every scale of a max-pool pyramid over time (kernel 2 until one
timestamp is left):

* **instance-wise**: at each timestamp, row ``i`` of view ``a`` against every row of
  both views at that timestamp (its positive: row ``i`` of view ``b``; itself
  excluded) — NT-Xent over the batch, one problem per timestamp;
* **temporal**: within each series, timestamp ``t`` of view ``a`` against every
  timestamp of both views (positive: ``t`` of view ``b``) — NT-Xent over time, one
  problem per series.

Both are NT-Xent with dot-product similarity and temperature 1 (TS2Vec normalises
nothing), i.e. :func:`contrastkit.functional.nt_xent` with ``normalize=False``,
``temperature=1`` applied to many groups at once. The loss is
``mean over scales of (alpha * instance + (1 - alpha) * temporal)``; the temporal
term starts at scale ``temporal_unit`` and is skipped where only one timestamp is
left, the instance term is skipped for a batch of one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["grouped_nt_xent", "hierarchical_contrastive"]


def grouped_nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""NT-Xent of many independent groups at once, dot-product similarity.

    For each group ``g``, the ``2N`` rows ``[z_a[g]; z_b[g]]`` are contrasted as in
    :func:`contrastkit.functional.nt_xent` (``normalize=False``): row ``i``'s positive
    is its other view, itself is excluded, the rest are negatives. Equal to
    ``mean_g nt_xent(z_a[g], z_b[g], temperature, normalize=False)``, in one batched
    matrix product ``[G, 2N, 2N]``.

    Args:
        z_a: ``[G, N, D]`` first views, ``N >= 1``.
        z_b: ``[G, N, D]`` second views.
        temperature: ``tau > 0``.

    Returns:
        The scalar mean over groups and their ``2N`` rows.
    """
    if z_a.dim() != 3 or z_a.shape != z_b.shape:
        raise ValueError(
            f"grouped_nt_xent: expected two [G, N, D] tensors of one shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"grouped_nt_xent: expected temperature > 0, got {temperature}")
    n = z_a.shape[1]
    z = torch.cat([z_a, z_b], dim=1)  # [G, 2N, D]
    logits = z @ z.transpose(1, 2) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    partner = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    return F.cross_entropy(logits.flatten(0, 1), partner.repeat(z.shape[0]))


def hierarchical_contrastive(
    z_a: torch.Tensor, z_b: torch.Tensor, *, alpha: float = 0.5, temporal_unit: int = 0
) -> torch.Tensor:
    """TS2Vec's hierarchical contrastive loss of two aligned views ``[B, T, D]``.

    Args:
        z_a: ``[B, T, D]`` per-timestamp representations of the first view.
        z_b: ``[B, T, D]`` of the second view, timestamp ``t`` aligned with ``z_a``'s.
        alpha: weight of the instance-wise term (TS2Vec: 0.5); ``1 - alpha`` weighs
            the temporal term.
        temporal_unit: the first pyramid scale (0 = full resolution) at which the
            temporal term is used (TS2Vec: 0).

    Returns:
        The scalar loss, averaged over the pyramid's scales.

    Raises:
        ValueError: on mismatched shapes, ``alpha`` outside ``[0, 1]`` or a negative
            ``temporal_unit``.

    Example:
        >>> z_a, z_b = torch.randn(4, 16, 8), torch.randn(4, 16, 8)
        >>> hierarchical_contrastive(z_a, z_b).shape
        torch.Size([])
    """
    if z_a.dim() != 3 or z_a.shape != z_b.shape:
        raise ValueError(
            f"hierarchical_contrastive: expected two [B, T, D] tensors of one shape, got "
            f"{tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    if z_a.shape[1] < 1:
        raise ValueError("hierarchical_contrastive: expected at least one timestamp, got T = 0")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"hierarchical_contrastive: expected alpha in [0, 1], got {alpha}")
    if temporal_unit < 0:
        raise ValueError(f"hierarchical_contrastive: expected temporal_unit >= 0, got {temporal_unit}")
    batch = z_a.shape[0]
    # Zero that still depends on the inputs: when no term applies (a batch of one with one
    # timestamp left, or temporal_unit beyond the pyramid with alpha = 0) backward still runs.
    loss = (z_a.sum() + z_b.sum()) * 0.0
    scales = 0
    while True:
        length = z_a.shape[1]
        if alpha != 0 and batch > 1:  # instance-wise: one problem per timestamp, over the batch
            loss = loss + alpha * grouped_nt_xent(z_a.transpose(0, 1), z_b.transpose(0, 1))
        if length > 1 and scales >= temporal_unit and alpha != 1:  # temporal: one problem per series
            loss = loss + (1 - alpha) * grouped_nt_xent(z_a, z_b)
        scales += 1
        if length == 1:
            break
        z_a = F.max_pool1d(z_a.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z_b = F.max_pool1d(z_b.transpose(1, 2), kernel_size=2).transpose(1, 2)
    return loss / scales
