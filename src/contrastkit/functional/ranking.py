"""Multiple-negatives ranking: sentence-transformers' in-batch retrieval loss.

The loss sentence-transformers calls ``MultipleNegativesRankingLoss`` (MNRL;
Henderson et al., 2017, "Efficient Natural Language Response Suggestion for
Smart Reply", and the ``MultipleNegativesSymmetricRankingLoss`` variant) is
InfoNCE with a scale instead of a temperature and optional hard-negative
columns. Here it is a thin wrapper over
:func:`contrastkit.functional.contrastive.info_nce`, so it gets the fused and
tiled kernels (memory linear in the batch) for free.
"""

from __future__ import annotations

import torch

from contrastkit.functional.contrastive import info_nce
from contrastkit.functional.tiled import ChunkSize
from contrastkit.utils.checks import (
    Scalar,
    check_embeddings,
    check_pair,
    check_positive_scalar,
    check_reduction,
)

__all__ = ["multiple_negatives_ranking"]


def multiple_negatives_ranking(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    hard_negatives: torch.Tensor | None = None,
    *,
    scale: Scalar = 20.0,
    symmetric: bool = False,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    chunk_size: ChunkSize = "auto",
) -> torch.Tensor:
    r"""Multiple-negatives ranking loss (MNRL), as in sentence-transformers.

    The candidates are the ``B`` positives followed by the ``K`` hard negatives;
    every anchor sees every candidate (its own positive, the other anchors'
    positives and *all* hard negatives of the batch). With
    ``l_ij = s * cos(a_i, c_j)``:

    .. math::

        \ell_i = -\log \frac{w_{ii} \exp(l_{ii})}{\sum_{j=1}^{B+K} w_{ij} \exp(l_{ij})}

    (``w`` = ``weights``, default 1; a zero weight removes a column). With
    ``symmetric=True`` the positive-to-anchor direction is added, over the
    positives only (hard negatives are not anchors), as in sentence-transformers'
    ``MultipleNegativesSymmetricRankingLoss``:

    .. math::

        \ell^{sym}_i = \frac{1}{2}\left[\ell_i - \log \frac{w_{ii} \exp(l_{ii})}
            {\sum_{j=1}^{B} w_{ji} \exp(l_{ji})}\right]

    This is :func:`~contrastkit.functional.contrastive.info_nce` with
    ``temperature = 1 / scale`` and ``negatives = hard_negatives``.

    ==================  ===========  =====================================================
    input               shape        meaning
    ==================  ===========  =====================================================
    ``anchor``          ``[B, D]``   queries (e.g. docstrings), ``B >= 1``
    ``positive``        ``[B, D]``   the matching documents, row ``i`` for anchor ``i``
    ``hard_negatives``  ``[K, D]``   optional extra candidates shared by all anchors; a
                                     per-anchor batch ``[B, D]`` of mined negatives is
                                     passed as is (sentence-transformers does the same)
    ``weights``         ``[B, B+K]`` optional column weights (e.g. false-negative masks
                                     from :mod:`contrastkit.negatives.false_negatives`)
    ==================  ===========  =====================================================

    Args:
        anchor: ``[B, D]`` anchors; L2-normalised here.
        positive: ``[B, D]`` positives, paired with ``anchor`` row by row.
        hard_negatives: optional ``[K, D]`` hard negatives.
        scale: the logit scale ``s > 0`` (default 20.0, sentence-transformers'
            default; the inverse temperature). A float or 1-element tensor (a
            learnable scale keeps its gradient).
        symmetric: add the positive-to-anchor direction (default ``False``).
        weights: optional ``[B, B + K]`` non-negative column weights in the
            denominator (the symmetric direction uses the transposed ``[B, B]``
            block).
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'`` (``[B]``; with
            ``symmetric=True`` row ``i`` is the mean of both directions' row ``i``).
        chunk_size: ``"auto"`` (default), ``None`` (naive) or a positive ``int``
            (tiled); see :func:`~contrastkit.functional.contrastive.info_nce`.

    Returns:
        The loss: a scalar, or ``[B]`` for ``reduction='none'``.

    Raises:
        ValueError: on mismatched shapes, non-finite values, ``scale <= 0``, a
            single candidate column (``B = 1`` and no hard negative), or bad
            ``weights``.

    Example:
        >>> queries, documents = torch.randn(8, 32), torch.randn(8, 32)
        >>> loss = multiple_negatives_ranking(queries, documents, scale=20.0)
        >>> loss = multiple_negatives_ranking(queries, documents, torch.randn(8, 32), symmetric=True)
    """
    check_positive_scalar("scale", scale)
    check_reduction(reduction)
    check_pair("anchor", anchor, "positive", positive)
    if hard_negatives is not None:
        check_embeddings("hard_negatives", hard_negatives, dim=anchor.shape[1])
    temperature = 1.0 / scale if isinstance(scale, torch.Tensor) else 1.0 / float(scale)
    forward = info_nce(
        anchor,
        positive,
        negatives=hard_negatives,
        temperature=temperature,
        weights=weights,
        reduction=reduction,
        chunk_size=chunk_size,
    )
    if not symmetric:
        return forward
    # Positive -> anchor over the [B, B] block only: hard negatives are candidates, not queries.
    backward_weights = None if weights is None else weights[:, : anchor.shape[0]].T
    backward = info_nce(
        positive,
        anchor,
        temperature=temperature,
        weights=backward_weights,
        reduction=reduction,
        chunk_size=chunk_size,
    )
    return (forward + backward) / 2
