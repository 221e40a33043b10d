"""Multi-level (hierarchical-label) supervised contrast, after DeTeCtive.

Guo et al., NeurIPS 2024, "DeTeCtive: Detecting AI-generated Text via Multi-Level
Contrastive Learning": every text carries a hierarchy of labels (source model ->
model family -> human/AI), and the encoder is trained so that texts of the same
model are closer than texts of the same family, which are closer than texts of the
same class, which are closer than the rest. Detection is then a kNN vote over a
database of training embeddings (:class:`contrastkit.eval.knn_detection.KNNDetector`).

Status (METHODS #19, PARTIAL; the official repository holds only a README): the
loss below is the reading in METHODS.md — one supervised-contrastive term per
level, averaged — and is tested against a naive loop and on the ordering property
it is meant to enforce. The paper's auxiliary human/AI cross-entropy is a plain
``cross_entropy`` on a classifier head and is not repeated here; the AI-text
benchmarks (M4, TuringBench, ...) are not available offline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.functional.core import contrastive_loss_from_logits
from contrastkit.utils.checks import Scalar, check_embeddings, check_positive_scalar

__all__ = ["multi_level_contrastive"]


def multi_level_contrastive(
    embeddings: torch.Tensor,
    level_labels: torch.Tensor,
    *,
    temperature: Scalar = 0.07,
    level_weights: torch.Tensor | list[float] | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    r"""Supervised contrast at every level of a label hierarchy (DeTeCtive).

    For level ``l`` with labels ``y^l`` and anchor ``i``, the positives are
    ``P_l(i) = {j != i : y^l_j = y^l_i}`` and every other row ``j != i`` is in the
    denominator (SupCon's ``L_out``):

    .. math::

        L_l = \frac{1}{|A_l|} \sum_{i \in A_l} \frac{-1}{|P_l(i)|} \sum_{p \in P_l(i)}
              \log \frac{\exp(z_i \cdot z_p / \tau)}{\sum_{a \ne i} \exp(z_i \cdot z_a / \tau)},
        \qquad L = \frac{\sum_l w_l L_l}{\sum_l w_l}

    where ``A_l`` are the anchors with at least one positive at level ``l`` (rows
    alone in their group are skipped at that level, and a level where no row has a
    positive leaves the average). With the finest level first (e.g. model ->
    family -> human/AI) and nested labels, level 0 pulls same-model pairs above
    same-family ones, level 1 same-family pairs above same-class ones, level 2
    same-class pairs above the rest: together they enforce
    ``sim(same model) > sim(same family) > sim(same class) > sim(other)``.

    Args:
        embeddings: ``[B, D]`` text embeddings, ``B >= 2``; L2-normalised here
            unless ``normalize=False``.
        level_labels: ``[L, B]`` integer labels, finest level first.
        temperature: ``tau > 0`` (default 0.07, SupCon's and SimCSE-style value;
            the paper's value is unverified).
        level_weights: ``[L]`` non-negative weights ``w_l`` (default all 1).
        normalize: L2-normalise the embeddings (default ``True``).

    Returns:
        The scalar loss.

    Raises:
        ValueError: on bad shapes, non-finite values, ``temperature <= 0``,
            negative weights, or when no level has any positive pair (with a
            non-zero weight).

    Example:
        >>> embeddings = torch.randn(8, 32)
        >>> labels = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 3], [0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 1, 1]])
        >>> loss = multi_level_contrastive(embeddings, labels, temperature=0.07)
    """
    check_positive_scalar("temperature", temperature)
    check_embeddings("embeddings", embeddings, min_rows=2)
    batch = embeddings.shape[0]
    if (
        not isinstance(level_labels, torch.Tensor)
        or level_labels.dim() != 2
        or level_labels.shape[1] != batch
        or level_labels.shape[0] < 1
    ):
        got = tuple(level_labels.shape) if isinstance(level_labels, torch.Tensor) else type(level_labels).__name__
        raise ValueError(f"level_labels: expected shape [L, {batch}] (levels x rows, finest first), got {got}")
    if level_labels.is_floating_point() or level_labels.is_complex():
        raise ValueError(f"level_labels: expected integer labels, got dtype {level_labels.dtype}")
    levels = level_labels.shape[0]
    if level_weights is None:
        weights = torch.ones(levels, dtype=embeddings.dtype, device=embeddings.device)
    else:
        weights = torch.as_tensor(level_weights, dtype=embeddings.dtype, device=embeddings.device)
        if weights.shape != (levels,) or not torch.isfinite(weights).all() or (weights < 0).any():
            raise ValueError(
                f"level_weights: expected {levels} finite non-negative weights, got {weights.tolist()}"
            )

    z = F.normalize(embeddings, dim=1) if normalize else embeddings
    logits = z @ z.T / temperature
    not_self = ~torch.eye(batch, dtype=torch.bool, device=z.device)
    labels = level_labels.to(z.device)
    # [L, B, B]: positives of every level at once.
    positives = (labels.unsqueeze(2) == labels.unsqueeze(1)) & not_self
    has_positive = positives.any(dim=2)  # [L, B]

    total = embeddings.new_zeros(())
    weight_sum = embeddings.new_zeros(())
    for level in range(levels):  # L is small (a handful of levels); each term is batched over rows
        anchors = has_positive[level]
        if not bool(anchors.any()) or float(weights[level]) == 0.0:
            continue
        term = contrastive_loss_from_logits(logits[anchors], positives[level][anchors], valid_mask=not_self[anchors])
        total = total + weights[level] * term
        weight_sum = weight_sum + weights[level]
    if float(weight_sum) == 0.0:
        raise ValueError(
            "level_labels: expected at least one level (with a non-zero weight) where some row shares its label "
            "with another row, got none; every row is alone at every level"
        )
    return total / weight_sum
