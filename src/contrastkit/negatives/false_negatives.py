"""False-negative masking with a frozen scorer (MultiCSR, Wang et al., NAACL 2024, stage 3).

In-batch negatives of a sentence-embedding batch are sometimes paraphrases of the
anchor; pushing them away teaches the model the wrong thing. MultiCSR ("Large
Language Models can Contrastively Refine their Generation for Better Sentence
Representation Learning") scores every (anchor, candidate) pair with a *frozen*
pretrained sentence encoder and drops from the InfoNCE denominator the candidates
whose cosine to the anchor is at least ``phi = 0.95``; the row's own positive is
never dropped. The paper then trains supervised SimCSE (``tau = 0.05``) on
LLM-generated triples; that data pipeline (an instruction LLM generating and
self-curating entailment / contradiction pairs) needs a model that is not
available offline and is not part of this module.

Usage with :func:`contrastkit.functional.contrastive.info_nce`::

    with torch.no_grad():
        scores_a, scores_c = scorer(anchors), scorer(torch.cat([positives, hard_negatives]))
    mask = false_negative_mask(scores_a, scores_c, threshold=0.95)
    weights = false_negative_weights(mask).to(query.dtype)
    loss = info_nce(query, key, negatives=hard, temperature=0.05, weights=weights)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings

__all__ = ["false_negative_mask", "false_negative_weights", "masking_rate"]


def _check_positive_index(positive_index: torch.Tensor | None, rows: int, columns: int) -> torch.Tensor:
    """The default ``arange(rows)`` or a checked integer ``[rows]`` tensor of column indices."""
    if positive_index is None:
        if columns < rows:
            raise ValueError(
                f"positive_index: the default (row i's positive is column i) needs at least {rows} candidate "
                f"columns, got {columns}; pass positive_index"
            )
        return torch.arange(rows)
    if not isinstance(positive_index, torch.Tensor) or positive_index.shape != (rows,):
        got = tuple(positive_index.shape) if isinstance(positive_index, torch.Tensor) else type(positive_index).__name__
        raise ValueError(f"positive_index: expected an integer tensor of shape [{rows}], got {got}")
    if positive_index.is_floating_point() or positive_index.is_complex() or positive_index.dtype == torch.bool:
        raise ValueError(f"positive_index: expected an integer tensor, got dtype {positive_index.dtype}")
    if rows and (int(positive_index.min()) < 0 or int(positive_index.max()) >= columns):
        raise ValueError(
            f"positive_index: expected column indices in [0, {columns}), got values in "
            f"[{int(positive_index.min())}, {int(positive_index.max())}]"
        )
    return positive_index.long()


def _check_mask(mask: torch.Tensor) -> None:
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or mask.dtype != torch.bool:
        got = f"{tuple(mask.shape)} {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask: expected a bool tensor of shape [B, M], got {got}")


@torch.no_grad()
def false_negative_mask(
    anchor_scores: torch.Tensor,
    candidate_scores: torch.Tensor,
    *,
    threshold: float = 0.95,
    positive_index: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Which candidate columns are likely false negatives of each anchor.

    ``mask[i, j] = cos(f_0(s_i), f_0(c_j)) >= phi`` and ``j != positive_index[i]``,
    where ``f_0`` is a frozen scorer (MultiCSR uses a pretrained sentence encoder)
    and ``phi`` the ``threshold``. ``True`` means "drop this column from row
    ``i``'s denominator". The row's own positive is never dropped, however similar.

    Args:
        anchor_scores: ``[B, D]`` the scorer's embeddings of the anchors (not
            necessarily normalised; cosine is used).
        candidate_scores: ``[M, D]`` the scorer's embeddings of the candidate
            columns, in the order the objective sees them (e.g. the ``B``
            positives, then hard negatives).
        threshold: ``phi`` in ``[-1, 1]`` (default 0.95, MultiCSR's value).
        positive_index: ``[B]`` the column of each row's positive (default
            ``arange(B)``: paired rows).

    Returns:
        A bool ``[B, M]`` mask on the candidates' device, without gradient.

    Raises:
        ValueError: on bad shapes, non-finite scores, a threshold outside
            ``[-1, 1]`` or positive indices out of range.

    Example:
        >>> anchors, candidates = torch.randn(4, 8), torch.randn(6, 8)
        >>> mask = false_negative_mask(anchors, candidates, threshold=0.95)
        >>> mask.shape
        torch.Size([4, 6])
    """
    check_embeddings("anchor_scores", anchor_scores)
    check_embeddings("candidate_scores", candidate_scores, dim=anchor_scores.shape[1])
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold: expected a cosine threshold in [-1, 1], got {threshold!r}")
    rows, columns = anchor_scores.shape[0], candidate_scores.shape[0]
    index = _check_positive_index(positive_index, rows, columns).to(candidate_scores.device)
    similarity = F.normalize(anchor_scores.to(candidate_scores), dim=1) @ F.normalize(candidate_scores, dim=1).T
    mask = similarity >= float(threshold)
    mask[torch.arange(rows, device=mask.device), index] = False
    return mask


def false_negative_weights(
    mask: torch.Tensor, extra_columns: int = 0, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Column weights for ``info_nce(weights=...)``: 1 keeps a column, 0 drops it.

    Args:
        mask: ``[B, M]`` bool, ``True`` = drop (from :func:`false_negative_mask`).
        extra_columns: number of further columns appended after the ``M`` masked
            ones, all kept (e.g. queue negatives the scorer did not see).
        dtype: the float dtype of the result (default float32; use the logits' dtype).

    Returns:
        ``[B, M + extra_columns]`` float weights.

    Example:
        >>> mask = torch.tensor([[False, True], [False, False]])
        >>> false_negative_weights(mask, extra_columns=1)
        tensor([[1., 0., 1.],
                [1., 1., 1.]])
    """
    _check_mask(mask)
    if isinstance(extra_columns, bool) or not isinstance(extra_columns, int) or extra_columns < 0:
        raise ValueError(f"extra_columns: expected an int >= 0, got {extra_columns!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype: expected a floating-point dtype, got {dtype}")
    keep = (~mask).to(dtype)
    return F.pad(keep, (0, extra_columns), value=1.0)


def masking_rate(mask: torch.Tensor, positive_index: torch.Tensor | None = None) -> float:
    """The fraction of negative entries that the mask drops.

    Negatives are all ``B * M`` (row, column) entries except each row's positive,
    so the rate is ``mask.sum() / (B * (M - 1))``; MultiCSR reports how many
    in-batch negatives its scorer filters out.

    Args:
        mask: ``[B, M]`` bool, ``True`` = drop.
        positive_index: ``[B]`` the column of each row's positive (default
            ``arange(B)``); only used to check that no positive is masked.

    Returns:
        The rate in ``[0, 1]`` (0.0 when there is no negative entry).

    Raises:
        ValueError: on a malformed mask, or a mask that drops a row's positive.

    Example:
        >>> masking_rate(torch.tensor([[False, True], [False, False]]))
        0.5
    """
    _check_mask(mask)
    rows, columns = mask.shape
    index = _check_positive_index(positive_index, rows, columns).to(mask.device)
    if rows and bool(mask[torch.arange(rows, device=mask.device), index].any()):
        raise ValueError("mask: expected no row's positive to be masked, got at least one masked positive")
    negatives = rows * (columns - 1)
    return float(mask.sum()) / negatives if negatives else 0.0
