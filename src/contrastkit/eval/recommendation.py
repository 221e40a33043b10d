"""Top-k recommendation metrics by full ranking: Recall@k and NDCG@k.

The protocol of LightGCN (He et al., 2020; ``Procedure.Test`` / ``utils.py``) and
LightGCL (Cai et al., 2023; ``utils.metrics``), which agree:

- every user with at least one test item is ranked against **all** items, scored by
  the dot product of user and item embeddings; the user's training items are removed
  (score ``-inf``), so they neither count nor push test items down;
- ``Recall@k = hits / |test items|`` (not ``/ min(k, |test items|)``);
- ``NDCG@k = DCG / IDCG`` with binary gains, ``DCG = Σ_{r ≤ k, hit} 1 / log2(r + 1)``
  and the ideal DCG over ``min(k, |test items|)`` hits at the top;
- both are averaged over the evaluated users (users without test items are skipped).

LightGCL's script averages per-batch means over batches, which weights the users of
a short last batch more; here every user counts once (LightGCN's averaging).

Example:
    >>> users, items = torch.randn(3, 8), torch.randn(5, 8)
    >>> train = torch.tensor([[0, 1], [0, 1]])
    >>> test = torch.tensor([[0, 1, 2], [3, 4, 0]])
    >>> sorted(recall_ndcg_at_k(users, items, train, test, k=2))
    ['ndcg_at_2', 'recall_at_2']
"""

from __future__ import annotations

import torch

from contrastkit.data.interactions import csr_rows_mask, pairs_to_csr
from contrastkit.utils.checks import check_embeddings


def _check_pairs(name: str, pairs: torch.Tensor, num_users: int, num_items: int) -> None:
    if not isinstance(pairs, torch.Tensor) or pairs.dim() != 2 or pairs.shape[0] != 2:
        shape = tuple(pairs.shape) if isinstance(pairs, torch.Tensor) else type(pairs).__name__
        raise ValueError(f"{name}: expected (user, item) pairs of shape [2, T], got {shape}")
    if pairs.is_floating_point() or pairs.dtype == torch.bool:
        raise ValueError(f"{name}: expected integer ids, got dtype {pairs.dtype}")
    if pairs.numel() and (int(pairs.min()) < 0 or int(pairs[0].max()) >= num_users or int(pairs[1].max()) >= num_items):
        raise ValueError(
            f"{name}: expected user ids in [0, {num_users}) and item ids in [0, {num_items}), "
            f"got users up to {int(pairs[0].max())} and items up to {int(pairs[1].max())}"
        )


def popularity_scores(train_pairs: torch.Tensor, num_items: int) -> torch.Tensor:
    """The most-popular baseline: each item's number of training interactions, ``float [I]``.

    Every user gets the same ranking; pass ``users = ones(U, 1)`` and
    ``items = popularity_scores(...)[:, None]`` to :func:`recall_ndcg_at_k` to score it.
    """
    users = int(train_pairs[0].max()) + 1 if isinstance(train_pairs, torch.Tensor) and train_pairs.numel() else 1
    _check_pairs("train_pairs", train_pairs, max(users, 1), num_items)
    return torch.bincount(train_pairs[1].long(), minlength=num_items).float()


def recall_ndcg_at_k(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    train_pairs: torch.Tensor,
    test_pairs: torch.Tensor,
    k: int = 20,
    batch_users: int = 1024,
) -> dict[str, float]:
    """Recall@k and NDCG@k of dot-product ranking over all items, training items masked.

    See the module docstring for the exact definitions (LightGCN's / LightGCL's).

    Args:
        user_emb: ``[U, D]`` user embeddings.
        item_emb: ``[I, D]`` item embeddings.
        train_pairs: ``[2, T]`` training ``(user, item)`` pairs, removed from each user's ranking.
        test_pairs: ``[2, S]`` test pairs (the relevant items); duplicates count once.
        k: the cutoff (default 20, the papers'); capped at ``I``.
        batch_users: users scored per block (memory ``batch_users x I``).

    Returns:
        ``{"recall_at_{k}": float, "ndcg_at_{k}": float}`` (both 0.0 when no user has test items).

    Raises:
        ValueError: on bad shapes, non-finite embeddings, ids out of range, or ``k < 1``.
    """
    check_embeddings("user_emb", user_emb)
    check_embeddings("item_emb", item_emb, dim=user_emb.shape[1])
    num_users, num_items = user_emb.shape[0], item_emb.shape[0]
    _check_pairs("train_pairs", train_pairs, num_users, num_items)
    _check_pairs("test_pairs", test_pairs, num_users, num_items)
    if k < 1 or batch_users < 1:
        raise ValueError(
            f"recall_ndcg_at_k: expected k >= 1 and batch_users >= 1, got k={k}, batch_users={batch_users}"
        )
    device = user_emb.device
    train_pairs, test_pairs = train_pairs.long().to(device), test_pairs.long().to(device)
    cutoff = min(k, num_items)
    train_pointer, train_items = pairs_to_csr(train_pairs, num_users)
    test_pointer, test_items = pairs_to_csr(test_pairs, num_users)
    users = torch.unique(test_pairs[0])
    discount = 1.0 / torch.log2(torch.arange(2, cutoff + 2, device=device, dtype=torch.float64))
    ideal = torch.cumsum(discount, 0)  # ideal[n - 1]: IDCG with n relevant items in the top
    recall_sum = ndcg_sum = 0.0
    for start in range(0, users.shape[0], batch_users):
        block = users[start : start + batch_users]
        scores = user_emb[block] @ item_emb.T
        train_mask = csr_rows_mask(train_pointer, train_items, block, num_items)
        scores = scores.masked_fill(train_mask, float("-inf"))
        relevant = csr_rows_mask(test_pointer, test_items, block, num_items)
        values, top = torch.topk(scores, cutoff, dim=1)
        # A masked (training) item never counts, even when fewer than k items are left.
        hits = (relevant.gather(1, top) & torch.isfinite(values)).double()
        num_relevant = relevant.sum(1)  # >= 1: every block user has a test item
        recall_sum += float((hits.sum(1) / num_relevant).sum())
        idcg = ideal[num_relevant.clamp(max=cutoff) - 1]
        ndcg_sum += float(((hits * discount).sum(1) / idcg).sum())
    count = int(users.shape[0])
    return {f"recall_at_{k}": recall_sum / count if count else 0.0, f"ndcg_at_{k}": ndcg_sum / count if count else 0.0}
