"""Semantic textual similarity: Spearman correlation of cosine similarities with gold scores.

The STS protocol of SentEval (Conneau & Kiela, 2018) and MTEB (Muennighoff et al., 2023):
embed both sentences of every pair, score the pair by the cosine similarity of its two
embeddings, and report Spearman's rank correlation between these scores and the human
gold scores (MTEB's ``cosine_spearman``). The value lies in ``[-1, 1]`` (papers usually
print it times 100).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats


def _as_tensor(name: str, values: torch.Tensor | np.ndarray | Sequence[float], dims: int) -> torch.Tensor:
    try:
        tensor = values.detach() if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected numbers, got {type(values).__name__}") from error
    if tensor.dim() != dims:
        expected = "[N, D]" if dims == 2 else "[N]"
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(tensor.shape)}")
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name}: expected real numbers, got dtype {tensor.dtype}")
    tensor = tensor.to("cpu", torch.float64)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name}: expected finite values, got {int((~torch.isfinite(tensor)).sum())} NaN/inf entries")
    return tensor


def sts_spearman(
    embeddings_a: torch.Tensor | np.ndarray,
    embeddings_b: torch.Tensor | np.ndarray,
    gold_scores: torch.Tensor | np.ndarray | Sequence[float],
) -> float:
    """Spearman correlation between pair cosine similarities and gold similarity scores.

    ``rho = spearman(cos(a_i, b_i), gold_i)`` over the ``N`` pairs (scipy's
    ``spearmanr``, average ranks for ties).

    Args:
        embeddings_a: ``[N, D]`` embeddings of the first sentence of each pair.
        embeddings_b: ``[N, D]`` embeddings of the second sentence (row ``i`` pairs with
            row ``i`` of ``embeddings_a``).
        gold_scores: ``[N]`` human similarity scores (e.g. 0-5 for STS-B).

    Returns:
        Spearman's rho in ``[-1, 1]`` as a float; ``nan`` when all cosine similarities are
        equal (a collapsed encoder), since a rank correlation is then undefined.

    Raises:
        ValueError: shapes that do not pair up, fewer than 2 pairs, non-finite values or
            constant gold scores.

    Example:
        >>> a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
        >>> b = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        >>> sts_spearman(a, b, [5.0, 2.5, 0.0])
        1.0
    """
    first = _as_tensor("embeddings_a", embeddings_a, 2)
    second = _as_tensor("embeddings_b", embeddings_b, 2)
    gold = _as_tensor("gold_scores", gold_scores, 1)
    if first.shape != second.shape:
        raise ValueError(
            f"embeddings_b: expected the shape of embeddings_a {tuple(first.shape)}, got {tuple(second.shape)}"
        )
    if gold.shape[0] != first.shape[0]:
        raise ValueError(f"gold_scores: expected {first.shape[0]} scores (one per pair), got {gold.shape[0]}")
    if first.shape[0] < 2:
        raise ValueError(f"sts_spearman: expected at least 2 pairs, got {first.shape[0]}")
    if bool((gold == gold[0]).all()):
        raise ValueError("gold_scores: expected at least two different scores, got a constant")
    cosine = F.cosine_similarity(first, second, dim=1)
    if bool((cosine == cosine[0]).all()):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = stats.spearmanr(cosine.numpy(), gold.numpy()).statistic
    return float(rho)
