r"""Fused symmetric contrastive loss (CLIP's): both directions from one logit block per tile.

CLIP's loss over ``B`` pairs is the mean of two cross-entropies over the same logits
``l_ij = s a_i . b_j``: rows (``a -> b``) and columns (``b -> a``),

.. math::

    L = \frac{1}{2B} \sum_i \Big[\log\sum_j e^{l_{ij}} - l_{ii}\Big]
      + \frac{1}{2B} \sum_j \Big[\log\sum_i e^{l_{ij}} - l_{jj}\Big].

Two calls of the one-direction kernel (:func:`~contrastkit.functional.paired.paired_contrastive_loss`)
compute every logit twice: 2 GEMMs forward and 4 backward. Here each ``tile x tile`` block is
computed once and read for both the row and the column log-sum-exp; the backward pass
uses ``dL/dl_ij = (P_ij + Q_ij) / 2B - delta_ij / B`` (``P`` the row softmax, ``Q`` the column
softmax) in one block, so the cost is 1 GEMM forward and 2 backward (cached) or 1 + 3
(tiled: the block is recomputed): half the matrix products.

* **One exp per logit when it is safe.** With ``M = s max|a| max|b|`` every logit lies in
  ``[-M, M]``; while ``2M <= 80`` (cosine logits with ``s <= 40``), ``exp(l - M)`` cannot
  underflow and serves both directions (the shift is folded into the GEMM as one extra
  feature column). Beyond that (CLIP's scale grows to 100), rows and columns keep their
  own running maxima (exact, one more ``exp`` per logit).
* **Never below 0.** Each direction's loss is ``log1p(others / positive)``, both terms
  read from the same block, as in the one-direction kernel.
* **Two memory modes**, as :func:`~contrastkit.functional.paired.paired_contrastive_loss`:
  *cached* while the ``[B, B]`` block fits :data:`~contrastkit.functional.paired.CACHE_MAX_BYTES`
  (forward keeps ``P + Q``, briefly holding two or three blocks while it builds it;
  backward is two GEMMs on it), *tiled* beyond (memory ``O(tile^2 + B D)``).

Half-precision inputs are up-cast to float32; float64 stays float64.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from contrastkit.functional.paired import _SAFE_EXP_RANGE, CACHE_MAX_BYTES, _append, default_chunk_size

__all__ = ["symmetric_paired_loss"]


def _diagonal_of_block(block: torch.Tensor, r0: int, c0: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(global indices, values)`` of the entries ``(i, i)`` that lie in ``block`` (rows from ``r0``, columns from ``c0``)."""
    start, stop = max(r0, c0), min(r0 + block.shape[0], c0 + block.shape[1])
    if start >= stop:
        empty = torch.empty(0, dtype=torch.long, device=block.device)
        return empty, block.new_empty(0)
    index = torch.arange(start, stop, device=block.device)
    return index, block[index - r0, index - c0]


class _SymmetricPaired(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, tile: int,  # type: ignore[override]
                cache: bool) -> torch.Tensor:
        n = a.shape[0]
        scaled = a * scale
        bound = scale.abs() * a.norm(dim=1).amax() * b.norm(dim=1).amax()
        # On an accelerator the streaming path is taken: reading the bound would wait for the device.
        static = a.device.type == "cpu" and bool(2 * bound <= _SAFE_EXP_RANGE)
        zeros = a.new_zeros(n)
        # Per row and per column: the positive term exp(l_ii - shift) and the sum of the others.
        row_pos, row_others, col_pos, col_others = zeros.clone(), zeros.clone(), zeros.clone(), zeros.clone()
        if static:
            row_shift = col_shift = bound.expand(n)
            a_shift, b_one = _append(scaled, -row_shift), _append(b, b.new_ones(n))
        else:
            row_shift, col_shift = a.new_full((n,), float("-inf")), a.new_full((n,), float("-inf"))
        blocks: list[torch.Tensor] = []
        for r0 in range(0, n, tile):
            r1 = min(n, r0 + tile)
            for c0 in range(0, n, tile):
                c1 = min(n, c0 + tile)
                if static:  # [s a_i, -M] . [b_j, 1] = l_ij - M, one exp for both directions
                    row_exp = (a_shift[r0:r1] @ b_one[c0:c1].T).exp_()
                    col_exp = row_exp
                else:
                    block = scaled[r0:r1] @ b[c0:c1].T
                    row_exp = _stream(block, row_shift[r0:r1], (row_pos[r0:r1], row_others[r0:r1]), dim=1)
                    col_exp = _stream(block, col_shift[c0:c1], (col_pos[c0:c1], col_others[c0:c1]), dim=0)
                index, value = _diagonal_of_block(row_exp, r0, c0)
                row_others[r0:r1] += row_exp.sum(dim=1)
                row_pos.index_add_(0, index, value)
                row_others.index_add_(0, index, -value)
                index, value = _diagonal_of_block(col_exp, r0, c0)
                col_others[c0:c1] += col_exp.sum(dim=0)
                col_pos.index_add_(0, index, value)
                col_others.index_add_(0, index, -value)
                if cache:
                    blocks = [row_exp, col_exp]
        # Subtracting the diagonal from the row sum can round a hair below 0.
        row_others.clamp_(min=0.0)
        col_others.clamp_(min=0.0)
        row_sums, col_sums = row_pos + row_others, col_pos + col_others
        row_lse, col_lse = row_sums.log() + row_shift, col_sums.log() + col_shift
        positive_logit = (scaled * b).sum(dim=1)
        row_loss = _loss(row_pos, row_others, row_lse, positive_logit)
        col_loss = _loss(col_pos, col_others, col_lse, positive_logit)
        softmax_sum = None
        if cache:  # P + Q, the whole backward pass but for two GEMMs
            row_exp, col_exp = blocks
            col_part = col_exp / col_sums.unsqueeze(0)
            softmax_sum = row_exp.mul_(row_sums.reciprocal().unsqueeze(1)).add_(col_part)
            del col_part, blocks
        ctx.save_for_backward(a, b, scale, row_lse, col_lse, softmax_sum)
        ctx.tile = tile
        return (row_loss.mean() + col_loss.mean()) / 2

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        a, b, scale, row_lse, col_lse, softmax_sum = ctx.saved_tensors
        need_a, need_b, need_s = ctx.needs_input_grad[:3]
        n, tile = a.shape[0], ctx.tile
        scaled = a * scale
        weight = grad.to(a.dtype) / (2 * n)
        if softmax_sum is not None:
            grad_scaled = softmax_sum @ b if (need_a or need_s) else None
            grad_b = softmax_sum.T @ scaled if need_b else None
        else:
            grad_scaled = torch.zeros_like(a) if (need_a or need_s) else None
            grad_b = torch.zeros_like(b) if need_b else None
            for r0 in range(0, n, tile):
                r1 = min(n, r0 + tile)
                for c0 in range(0, n, tile):
                    c1 = min(n, c0 + tile)
                    # One GEMM per block: P = exp(l - lse_row), Q = exp(l - lse_col), P + Q in place.
                    logits = scaled[r0:r1] @ b[c0:c1].T
                    block = (logits - row_lse[r0:r1].unsqueeze(1)).exp_()
                    block += logits.sub_(col_lse[c0:c1].unsqueeze(0)).exp_()
                    if grad_scaled is not None:
                        grad_scaled[r0:r1].addmm_(block, b[c0:c1])
                    if grad_b is not None:
                        grad_b[c0:c1].addmm_(block.T, scaled[r0:r1])
        # The positives: -(1/B) per diagonal logit, i.e. -2 in units of `weight`, in O(B D).
        if grad_scaled is not None:
            grad_scaled = (grad_scaled - 2 * b) * weight
        if grad_b is not None:
            grad_b = (grad_b - 2 * scaled) * weight
        grad_a = grad_scaled * scale if need_a and grad_scaled is not None else None
        grad_s = (a * grad_scaled).sum().to(scale.dtype) if need_s and grad_scaled is not None else None
        return grad_a, grad_b, grad_s, None, None


def _stream(block: torch.Tensor, shift: torch.Tensor, sums: tuple[torch.Tensor, torch.Tensor], dim: int) -> torch.Tensor:
    """``exp(block - running max)`` along ``dim``, rescaling the running sums (in place) when the max grows."""
    new = torch.maximum(shift, block.amax(dim=dim))
    finite = torch.where(torch.isfinite(new), new, torch.zeros_like(new))
    rescale = torch.exp(shift - finite)
    for total in sums:
        total *= rescale
    shift.copy_(new)
    return (block - (finite.unsqueeze(1) if dim == 1 else finite.unsqueeze(0))).exp_()


def _loss(positive: torch.Tensor, others: torch.Tensor, lse: torch.Tensor, positive_logit: torch.Tensor) -> torch.Tensor:
    ratio = others / positive
    # A positive far below its row's maximum can underflow (streaming path): the direct form is exact enough there.
    exact = (positive >= torch.finfo(positive.dtype).tiny) & torch.isfinite(ratio)
    return torch.where(exact, torch.log1p(ratio), lse - positive_logit)


def symmetric_paired_loss(a: torch.Tensor, b: torch.Tensor, scale: float | torch.Tensor, *,
                          chunk_size: int | str = "auto") -> torch.Tensor:
    r"""CLIP's symmetric loss ``(mean_i CE_row(i) + mean_j CE_col(j)) / 2`` over ``scale * a @ b.T``, fused.

    The same value and gradients as the two cross-entropies of the naive logit matrix
    (to float tolerance), computed with one logit block per tile for both directions
    (module docstring). Inputs are used as given: normalise them first (in autograd).

    Args:
        a: ``[B, D]`` rows (e.g. image embeddings), floating point, ``B >= 1``.
        b: ``[B, D]`` their partners (e.g. caption embeddings), same dtype and device.
        scale: the logit multiplier ``t`` (CLIP's exponentiated ``logit_scale``): a float
            or a 1-element tensor, which gets a gradient.
        chunk_size: ``"auto"`` (cached while the ``[B, B]`` block fits 64 MiB, tiles of
            :func:`~contrastkit.functional.paired.default_chunk_size` beyond) or a positive
            ``int`` (always tiled, that edge).

    Returns:
        The scalar loss (float32; float64 for float64 inputs).

    Example:
        >>> import torch.nn.functional as F
        >>> a, b = F.normalize(torch.randn(8, 4), dim=1), F.normalize(torch.randn(8, 4), dim=1)
        >>> symmetric_paired_loss(a, b, 10.0).shape
        torch.Size([])
    """
    if a.dim() != 2 or a.shape != b.shape or a.shape[0] < 1:
        raise ValueError(f"symmetric_paired_loss: expected a and b of one shape [B, D], B >= 1, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    dtype = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    rows = a.shape[0]
    if isinstance(chunk_size, str):
        if chunk_size != "auto":
            raise ValueError(f"chunk_size: expected 'auto' or a positive int, got {chunk_size!r}")
        # As the one-direction kernel: cached while one [B, B] block fits (the forward pass
        # briefly holds two or three of them: the exponentials, then P + Q).
        cache = rows * rows * torch.empty((), dtype=dtype).element_size() <= CACHE_MAX_BYTES
        tile = rows if cache else default_chunk_size(a.device)
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected 'auto' or a positive int, got {chunk_size!r}")
    else:
        cache, tile = False, chunk_size
    scale_t = (scale.reshape(()).to(dtype) if isinstance(scale, torch.Tensor)
               else torch.tensor(float(scale), dtype=dtype, device=a.device))
    with torch.autocast(a.device.type, enabled=False):
        return _SymmetricPaired.apply(a.to(dtype), b.to(dtype), scale_t, tile, cache)
