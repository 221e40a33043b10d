"""Fused softmax-contrastive loss for one positive column per row: the fast path.

Most contrastive objectives in use have exactly one positive per row: paired InfoNCE
(query ``i`` with key ``i``, optionally against a queue of extra negatives), NT-Xent
(the other view, self excluded) and each direction of CLIP. For those the general
machinery (a ``[B, N]`` positive mask, autograd's saved log-softmax, or the tiled
path's per-block masks) does more work than the loss needs. This module computes

.. math::

    \\ell_i = \\log \\sum_{j \\ne e(i)} \\exp(s\\, q_i \\cdot k_j) - s\\, q_i \\cdot k_{p(i)}

(``p(i)`` the positive column, ``e(i)`` an optional excluded column, ``s`` the scale)
in one custom autograd function whose cost is the three ``[B, N] x D`` matrix
products of the loss plus two passes over each logit block:

* **The shift needs no max pass.** By Cauchy-Schwarz ``|l_ij| <= s |q_i| max_j |k_j|
  =: m_i``; when ``2 m_i`` is small enough that ``exp(-2 m_i)`` cannot underflow
  (cosine logits with ``temperature >= 0.025``), ``exp(l_ij - m_i)`` is computed
  straight from the matrix product (the shift is one extra feature column), so the
  forward pass is one GEMM, one in-place ``exp`` and one row sum per block. Larger
  logits fall back to a streaming max (two more passes), still exact.
* **The backward pass never builds ``softmax - target``.** The positive term is
  handled in ``O(B D)`` (a gather and an ``index_add``); the row weights (incoming
  gradient, softmax normaliser) are folded into the ``[B, D]`` operands of the
  GEMMs instead of the ``[B, N]`` block; the scale's gradient is
  ``sum(q * dL/d(s q))``, also ``O(B D)``.
* **Never below 0.** Each row's positive term and the sum of its other terms are read
  from the same GEMM block, and the loss is ``log1p(others / positive)``: a
  cross-entropy cannot come out negative by rounding, and stays accurate near 0.
* **Two memory modes.** *Cached*: while the whole ``[B, N]`` block fits
  :data:`CACHE_MAX_BYTES`, the forward pass keeps ``exp(l - m)`` and the backward
  pass is just two GEMMs on it (``6 B N D`` flops in all). *Tiled*: beyond that,
  blocks of ``tile x tile`` (:func:`default_chunk_size`: 1024 on CPU, where a 4 MiB
  block stays in cache, 4096 on accelerators) are recomputed in the backward pass,
  so memory is ``O(tile^2 + (B + N) D)`` (``8 B N D`` flops).

Half-precision inputs are up-cast to float32 (under autocast too): the loss and its
log-sum-exp are always accumulated in float32 or float64.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from contrastkit.utils.validation import validating

__all__ = ["CACHE_MAX_BYTES", "default_chunk_size", "paired_contrastive_loss"]

#: The cached mode (keep ``exp(logits)``, no recomputation) is used while the
#: ``[B, N]`` block takes at most this many bytes (64 MiB: ``B = N = 4096`` in float32).
#: Beyond it, on this project's CPUs, small recomputed tiles are faster than one
#: block that has left the cache (measured: ``docs/scaling.md``).
CACHE_MAX_BYTES = 64 * 2**20

#: ``exp(-x)`` stays a normal float32 for ``x`` below ~87; the static shift is used
#: while every logit lies within this distance of its row's bound.
_SAFE_EXP_RANGE = 80.0


def default_chunk_size(device: torch.device) -> int:
    """The tile edge of the tiled path on ``device``: 1024 on CPU (a 4 MiB float32
    tile stays in L2/L3 for its ``exp`` and row sum), 4096 elsewhere (fewer, larger
    kernels on a GPU)."""
    return 1024 if device.type == "cpu" else 4096


def _append(matrix: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
    """``[matrix, column]``: one extra feature column, so that a GEMM adds a per-row shift.

    Measured on CPU this is ~15% faster than ``addmm`` with a broadcast bias, which
    first writes the expanded bias into the output.
    """
    return torch.cat([matrix, column.to(matrix.dtype).unsqueeze(1)], dim=1)


def _mask_excluded(block: torch.Tensor, exclude: torch.Tensor | None, c0: int) -> None:
    """Set ``block[i, exclude[i] - c0] = -inf`` where that column lies in the block.

    One gather and one scatter of ``O(rows)`` elements, no host synchronisation:
    rows whose excluded column lies elsewhere write back their own value.
    """
    if exclude is None:
        return
    cols = block.shape[1]
    index = exclude - c0
    inside = (index >= 0) & (index < cols)
    index = index.clamp(0, cols - 1).unsqueeze(1)
    kept = block.gather(1, index)
    block.scatter_(1, index, torch.where(inside.unsqueeze(1), torch.full_like(kept, float("-inf")), kept))


def _sum_apart_from_partner(
    block: torch.Tensor, partner: torch.Tensor, c0: int, positive: torch.Tensor, others: torch.Tensor, *, restore: bool
) -> None:
    """Add each row's partner entry of ``block`` (where it lies there) to ``positive`` and
    the rest of the row to ``others``, in place, in ``O(rows)`` besides the row sum.

    The partner entry is zeroed for the sum and, with ``restore``, written back (the
    cached block is the softmax numerator of the backward pass).
    """
    cols = block.shape[1]
    index = partner - c0
    inside = ((index >= 0) & (index < cols)).unsqueeze(1)
    index = index.clamp(0, cols - 1).unsqueeze(1)
    value = block.gather(1, index)
    taken = torch.where(inside, value, torch.zeros_like(value))
    block.scatter_(1, index, value - taken)
    others += block.sum(dim=1)
    positive += taken.squeeze(1)
    if restore:
        block.scatter_(1, index, value)


class _PairedContrastive(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        scale: torch.Tensor,
        partner: torch.Tensor,
        exclude: torch.Tensor | None,
        tile: int,
        cache: bool,
    ) -> torch.Tensor:
        rows, cols = query.shape[0], key.shape[0]
        scaled = query * scale
        bound = query.norm(dim=1) * scale.abs() * key.norm(dim=1).amax()
        # Choosing the static shift reads a value: on an accelerator the exact streaming path is
        # taken instead, so the call never waits for the device.
        static = query.device.type == "cpu" and bool(2 * bound.amax() <= _SAFE_EXP_RANGE)
        shift = bound if static else torch.full_like(bound, float("-inf"))
        # The denominator in two parts, both read from the same GEMM blocks: each row's
        # positive term exp(l_ip - shift_i) and the sum of the others. The loss is then
        # log1p(others / positive) >= 0 exactly, accurate near 0; the former
        # lse - (s q_i . k_p(i)) took the positive logit from a separate dot product, whose
        # rounding could exceed the GEMM's and give a cross-entropy below 0.
        others = torch.zeros_like(bound)
        positive_exp = torch.zeros_like(bound)
        cached: torch.Tensor | None = None
        key_one = _append(key, key.new_ones(cols)) if static else key
        query_shift = _append(scaled, -shift) if static else scaled
        for r0 in range(0, rows, tile):
            r1 = min(rows, r0 + tile)
            excl = None if exclude is None else exclude[r0:r1]
            for c0 in range(0, cols, tile):
                c1 = min(cols, c0 + tile)
                if static:  # [s q_i, -m_i] . [k_j, 1] = l_ij - m_i, straight out of the GEMM
                    block = query_shift[r0:r1] @ key_one[c0:c1].T
                    _mask_excluded(block, excl, c0)
                else:  # streaming max: rescale the running sum when the row max grows
                    block = scaled[r0:r1] @ key[c0:c1].T
                    _mask_excluded(block, excl, c0)
                    new = torch.maximum(shift[r0:r1], block.amax(dim=1))
                    finite = torch.where(torch.isfinite(new), new, torch.zeros_like(new))
                    rescale = torch.exp(shift[r0:r1] - finite)
                    others[r0:r1] *= rescale
                    positive_exp[r0:r1] *= rescale
                    shift[r0:r1] = new
                    block.sub_(finite.unsqueeze(1))
                block.exp_()
                _sum_apart_from_partner(block, partner[r0:r1], c0, positive_exp[r0:r1], others[r0:r1], restore=cache)
                if cache:
                    cached = block
        # Every row keeps its positive column, so sums > 0.
        sums = others + positive_exp
        lse = sums.log() + shift
        ratio = others / positive_exp
        # Far below its row's maximum (streaming path only) the positive term can fall to a
        # subnormal or 0; there the direct form is exact enough, the loss being large (~80+).
        exact = (positive_exp >= torch.finfo(positive_exp.dtype).tiny) & torch.isfinite(ratio)
        loss = torch.where(exact, torch.log1p(ratio), lse - (scaled * key[partner]).sum(dim=1))
        ctx.save_for_backward(query, key, scale, partner, exclude, lse, sums, cached)
        ctx.tile = tile
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        query, key, scale, partner, exclude, lse, sums, cached = ctx.saved_tensors
        need_q, need_k, need_s = ctx.needs_input_grad[:3]
        rows, cols, tile = query.shape[0], key.shape[0], ctx.tile
        scaled = query * scale
        grad = grad.to(query.dtype)
        if cached is not None:
            # softmax = cached / sums row-wise: fold 1 / sums and the incoming gradient into [B, D] operands.
            weight = (grad / sums).unsqueeze(1)
            grad_scaled = (cached @ key) * weight if (need_q or need_s) else None
            grad_key = cached.T @ (scaled * weight) if need_k else None
        else:
            grad_scaled = torch.zeros_like(query) if (need_q or need_s) else None
            grad_key = torch.zeros_like(key) if need_k else None
            weighted = scaled * grad.unsqueeze(1)
            query_lse, key_one = _append(scaled, -lse), _append(key, key.new_ones(cols))
            for r0 in range(0, rows, tile):
                r1 = min(rows, r0 + tile)
                excl = None if exclude is None else exclude[r0:r1]
                for c0 in range(0, cols, tile):
                    c1 = min(cols, c0 + tile)
                    softmax = query_lse[r0:r1] @ key_one[c0:c1].T  # l_ij - lse_i
                    _mask_excluded(softmax, excl, c0)
                    softmax.exp_()
                    if grad_scaled is not None:
                        grad_scaled[r0:r1].addmm_(softmax, key[c0:c1])
                    if grad_key is not None:
                        grad_key[c0:c1].addmm_(softmax.T, weighted[r0:r1])
            if grad_scaled is not None:
                grad_scaled *= grad.unsqueeze(1)
        # The positive term -g_i * (s q_i . k_p(i)), in O(B D).
        if grad_scaled is not None:
            grad_scaled -= grad.unsqueeze(1) * key[partner]
        if grad_key is not None:
            grad_key.index_add_(0, partner, -grad.unsqueeze(1) * scaled)
        grad_query = grad_scaled * scale if need_q and grad_scaled is not None else None
        grad_scale = (query * grad_scaled).sum().to(scale.dtype) if need_s and grad_scaled is not None else None
        return grad_query, grad_key, grad_scale, None, None, None, None


def paired_contrastive_loss(
    query: torch.Tensor,
    key: torch.Tensor,
    scale: float | torch.Tensor,
    partner: torch.Tensor,
    *,
    exclude: torch.Tensor | None = None,
    chunk_size: int | str = "auto",
) -> torch.Tensor:
    r"""Per-row losses ``logsumexp_{j != e(i)}(s q_i . k_j) - s q_i . k_{p(i)}``, fused.

    The same values and gradients as the naive cross-entropy over
    ``logits = scale * query @ key.T`` (with column ``exclude[i]`` removed from row
    ``i``), to float tolerance; see the module docstring for how it is computed.
    Inputs are used as given (normalise them first, in autograd); gradients flow to
    ``query``, ``key`` and a tensor ``scale``. Double backward is not supported.

    Args:
        query: ``[B, D]`` rows (anchors), floating point.
        key: ``[N, D]`` columns (candidates), the same dtype and device.
        scale: the logit multiplier (``1 / temperature``, CLIP's ``logit_scale``):
            a float or a 1-element tensor.
        partner: ``[B]`` integer, the positive column of each row, in ``[0, N)``.
        exclude: optional ``[B]`` integer, one column per row removed from the
            denominator (self-similarity), ``-1`` for none; must differ from ``partner``.
        chunk_size: ``"auto"`` (cached while ``B * N`` float32 values fit
            :data:`CACHE_MAX_BYTES`, tiles of :func:`default_chunk_size` beyond) or a
            positive ``int`` (always recompute, tiles of that edge).

    Returns:
        ``[B]`` per-row losses in float32 (float64 for float64 inputs).

    Raises:
        ValueError: on bad shapes, an out-of-range or excluded partner, or a bad
            ``chunk_size``.

    Example:
        >>> import torch.nn.functional as F
        >>> q, k = F.normalize(torch.randn(6, 4), dim=1), F.normalize(torch.randn(6, 4), dim=1)
        >>> paired_contrastive_loss(q, k, 10.0, torch.arange(6)).shape
        torch.Size([6])
    """
    if query.dim() != 2 or key.dim() != 2 or query.shape[1] != key.shape[1]:
        raise ValueError(
            f"paired_contrastive_loss: expected query [B, D] and key [N, D], got {tuple(query.shape)} and {tuple(key.shape)}"
        )
    rows, cols = query.shape[0], key.shape[0]
    _check_index("partner", partner, rows, cols, allow_none=False)
    if exclude is not None:
        _check_index("exclude", exclude, rows, cols, allow_none=True)
        if validating(exclude) and bool((exclude == partner.to(exclude.device)).any()):
            raise ValueError("exclude: a row's excluded column must not be its positive (partner) column")
    dtype = torch.float64 if torch.float64 in (query.dtype, key.dtype) else torch.float32
    if isinstance(chunk_size, str):
        if chunk_size != "auto":
            raise ValueError(f"chunk_size: expected 'auto' or a positive int, got {chunk_size!r}")
        element = torch.empty((), dtype=dtype).element_size()
        cache = rows * cols * element <= CACHE_MAX_BYTES
        tile = max(rows, cols) if cache else default_chunk_size(query.device)
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected 'auto' or a positive int, got {chunk_size!r}")
    else:
        cache, tile = False, chunk_size
    scale_t = scale.reshape(()).to(dtype) if isinstance(scale, torch.Tensor) else torch.tensor(float(scale), dtype=dtype, device=query.device)
    device = query.device
    with torch.autocast(device.type, enabled=False):
        return _PairedContrastive.apply(
            query.to(dtype), key.to(dtype), scale_t, partner.to(device, torch.long),
            None if exclude is None else exclude.to(device, torch.long), tile, cache,
        )


def _check_index(name: str, index: torch.Tensor, rows: int, cols: int, *, allow_none: bool) -> None:
    if not isinstance(index, torch.Tensor) or index.shape != (rows,) or index.is_floating_point():
        got = tuple(index.shape) if isinstance(index, torch.Tensor) else type(index).__name__
        raise ValueError(f"{name}: expected an integer tensor of shape [{rows}], got {got}")
    low = -1 if allow_none else 0
    if rows and validating(index) and (int(index.min()) < low or int(index.max()) >= cols):
        raise ValueError(f"{name}: expected column indices in [{low}, {cols}), got values in "
                         f"[{int(index.min())}, {int(index.max())}]")
