"""The general masked, weighted softmax-contrastive objective.

Every InfoNCE-family objective in :mod:`contrastkit.functional` (``info_nce``,
``nt_xent``, ``supcon``, ``dcl``, ``clip_loss``) builds a logit matrix, a positive
mask and, where needed, a validity mask or column weights, and calls
:func:`contrastive_loss_from_logits`. The math lives here once.
"""

from __future__ import annotations

import torch

from contrastkit.utils.checks import check_embeddings, check_reduction

__all__ = ["contrastive_loss_from_logits"]


def reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply a 'mean' | 'sum' | 'none' reduction to per-row losses."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_matrix(name: str, tensor: torch.Tensor, shape: torch.Size) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape {tuple(shape)}, got {type(tensor).__name__}")
    if tensor.shape != shape:
        raise ValueError(f"{name}: expected shape {tuple(shape)} (same as logits), got {tuple(tensor.shape)}")


def _rows(mask: torch.Tensor) -> list[int]:
    return [int(i) for i in torch.nonzero(mask).flatten()[:10]]


def contrastive_loss_from_logits(
    logits: torch.Tensor,
    positive_weights: torch.Tensor,
    valid_mask: torch.Tensor | None = None,
    column_weights: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""General multi-positive, masked, weighted softmax cross-entropy over columns.

    For each row ``i`` (an anchor) and column ``j`` (a candidate):

    .. math::

        \ell_i = -\sum_j p_{ij} \log
            \frac{w_{ij} \exp(l_{ij})}{\sum_k v_{ik}\, w_{ik} \exp(l_{ik})}

    where ``l`` are the logits, ``p`` the positive distribution of row ``i`` (bool
    masks become uniform over the row's positives; float rows are divided by their
    sum), ``v`` the validity mask (``False`` drops a column from the denominator
    only, e.g. self-similarity, or the positive in decoupled contrastive learning)
    and ``w`` the column weights (``log w`` is added to the logit). The
    denominator is computed with a masked ``logsumexp`` (``-inf`` fill), so large
    logits are stable. This is the InfoNCE objective of van den Oord et al., 2018
    ("Representation Learning with Contrastive Predictive Coding"), generalised to
    several positives (Khosla et al., 2020) and weighted negatives.

    The function does not normalise anything: it works on logits (similarities
    already divided by a temperature or multiplied by a scale).

    Args:
        logits: ``[B, N]`` float logits, finite.
        positive_weights: ``[B, N]`` bool mask or non-negative float weights of the
            positives. Every row needs at least one positive (non-zero) entry.
        valid_mask: ``[B, N]`` bool, or ``None`` (all columns valid). Each row needs
            at least one valid column with a non-zero weight.
        column_weights: ``[B, N]`` non-negative float weights, or ``None`` (all 1).
            A positive entry (``p_ij > 0``) must have ``w_ij > 0``.
        reduction: ``'mean'`` (default; mean over rows), ``'sum'`` or ``'none'``
            (``[B]`` per-row losses).

    Returns:
        The loss: a scalar, or ``[B]`` for ``reduction='none'``.

    Raises:
        ValueError: on a wrong shape or dtype, non-finite or negative values, a row
            with no positive, a row with an empty denominator, or an unknown
            reduction.

    Example:
        >>> logits = torch.randn(4, 6)
        >>> positives = torch.eye(4, 6, dtype=torch.bool)
        >>> loss = contrastive_loss_from_logits(logits, positives)
    """
    check_reduction(reduction)
    check_embeddings("logits", logits)
    shape = logits.shape

    _check_matrix("positive_weights", positive_weights, shape)
    if positive_weights.dtype == torch.bool:
        is_positive = positive_weights
        target = positive_weights.to(logits.dtype)
    elif positive_weights.is_floating_point():
        if not torch.isfinite(positive_weights).all() or (positive_weights < 0).any():
            raise ValueError("positive_weights: expected finite, non-negative weights, got negative or NaN/inf entries")
        is_positive = positive_weights > 0
        target = positive_weights.to(logits.dtype)
    else:
        raise ValueError(f"positive_weights: expected a bool or float tensor, got dtype {positive_weights.dtype}")
    has_positive = is_positive.any(dim=1)
    if not has_positive.all():
        raise ValueError(
            "positive_weights: every row needs at least one positive, got "
            f"{int((~has_positive).sum())} row(s) with none (rows {_rows(~has_positive)}...)"
        )
    target = target / target.sum(dim=1, keepdim=True)

    if valid_mask is None:
        valid = torch.ones_like(is_positive)
    else:
        _check_matrix("valid_mask", valid_mask, shape)
        if valid_mask.dtype != torch.bool:
            raise ValueError(f"valid_mask: expected a bool tensor, got dtype {valid_mask.dtype}")
        valid = valid_mask

    if column_weights is None:
        log_weights = torch.zeros_like(logits)
        in_denominator = valid
    else:
        _check_matrix("column_weights", column_weights, shape)
        if not column_weights.is_floating_point():
            raise ValueError(f"column_weights: expected a float tensor, got dtype {column_weights.dtype}")
        if not torch.isfinite(column_weights).all() or (column_weights < 0).any():
            raise ValueError("column_weights: expected finite, non-negative weights, got negative or NaN/inf entries")
        nonzero = column_weights > 0
        zero_positive = is_positive & ~nonzero
        if zero_positive.any():
            raise ValueError(
                "column_weights: a positive column must have a weight > 0, got zero weight on "
                f"{int(zero_positive.sum())} positive entr(y/ies)"
            )
        safe = torch.where(nonzero, column_weights, torch.ones_like(column_weights)).to(logits.dtype)
        # Double where: log(0) = -inf without a NaN gradient through the log.
        log_weights = torch.where(nonzero, torch.log(safe), torch.full_like(logits, float("-inf")))
        in_denominator = valid & nonzero

    has_denominator = in_denominator.any(dim=1)
    if not has_denominator.all():
        raise ValueError(
            "valid_mask/column_weights: every row needs at least one valid column with a non-zero weight, got "
            f"{int((~has_denominator).sum())} row(s) with none (rows {_rows(~has_denominator)}...)"
        )

    weighted_logits = logits + log_weights
    denominator = torch.logsumexp(weighted_logits.masked_fill(~in_denominator, float("-inf")), dim=1, keepdim=True)
    log_prob = weighted_logits - denominator
    # Only positive entries enter the sum; where() keeps -inf entries out of the gradient.
    per_row = -(target * torch.where(is_positive, log_prob, torch.zeros_like(log_prob))).sum(dim=1)
    return reduce(per_row, reduction)
