"""Tiled (block-wise) softmax-contrastive and sigmoid losses: memory linear in the batch.

The naive InfoNCE path materialises the ``[B, N]`` logit matrix (and autograd keeps
it, plus masks, for the backward pass): memory grows as ``O(B * N)``. The tiled path
computes the same per-row losses block by block:

* forward: for each block of query rows and each block of candidate columns, the
  logits of the block are computed (one matmul), the row's log-sum-exp is updated
  with a streaming ``logaddexp`` and the positive term is accumulated; only
  ``O(B)`` row statistics are kept;
* backward: the block's logits are recomputed, the gradient with respect to the
  logits (``softmax - target``, scaled by the incoming gradient) is formed for
  that block only and multiplied into ``dQ``, ``dK`` (and the scalar ``d scale``).

Peak memory is ``O(chunk^2 + (B + N) * D)`` instead of ``O(B * N)``; the result
equals the naive one to float tolerance, forward and backward.

Positives, self-exclusion and weights are described compactly so that no
``[B, N]`` mask is ever built: a partner index per row, labels per row and per
column, or (for the general case) a user-provided dense ``[B, N']`` tensor that is
sliced block by block (memory then is the caller's own tensor).

The objectives in :mod:`contrastkit.functional.contrastive` take a ``chunk_size``
argument resolved by :func:`resolve_chunk_size`: ``"auto"`` (default) keeps the
naive path while the logit matrix fits :data:`NAIVE_MAX_LOGITS_BYTES` and tiles
with :data:`DEFAULT_CHUNK_SIZE` beyond it; ``None`` forces the naive path; a
positive ``int`` forces the tiled path with that block size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "NAIVE_MAX_LOGITS_BYTES",
    "ChunkSize",
    "resolve_chunk_size",
    "tiled_contrastive_loss",
    "tiled_siglip_loss",
]

#: ``chunk_size="auto"`` keeps the naive path while one ``[B, N]`` logit matrix
#: (``B * N * element_size`` bytes) fits this budget (256 MiB), and tiles beyond it.
NAIVE_MAX_LOGITS_BYTES = 256 * 2**20

#: Block size (rows and columns) of the tiled path under ``chunk_size="auto"``: a
#: ``4096 x 4096`` float32 block is 64 MiB.
DEFAULT_CHUNK_SIZE = 4096

ChunkSize = int | str | None


def resolve_chunk_size(chunk_size: ChunkSize, rows: int, cols: int, dtype: torch.dtype) -> int | None:
    """Turn a ``chunk_size`` option into a block size, or ``None`` for the naive path.

    Args:
        chunk_size: ``"auto"`` (naive while ``rows * cols * element_size <=``
            :data:`NAIVE_MAX_LOGITS_BYTES`, else :data:`DEFAULT_CHUNK_SIZE`),
            ``None`` (always naive) or a positive ``int`` (always tiled, that block size).
        rows: number of query rows ``B``.
        cols: number of candidate columns ``N``.
        dtype: the logit dtype.

    Returns:
        The block size, or ``None`` for the naive path.

    Raises:
        ValueError: on any other value.
    """
    if chunk_size is None:
        return None
    if isinstance(chunk_size, str):
        if chunk_size != "auto":
            raise ValueError(f"chunk_size: expected 'auto', None or a positive int, got {chunk_size!r}")
        element = torch.empty((), dtype=dtype).element_size()
        return None if rows * cols * element <= NAIVE_MAX_LOGITS_BYTES else DEFAULT_CHUNK_SIZE
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected 'auto', None or a positive int, got {chunk_size!r}")
    return chunk_size


def _rows(mask: torch.Tensor) -> list[int]:
    return [int(i) for i in torch.nonzero(mask).flatten()[:10]]


class _Spec:
    """Compact description of positives, excluded columns and column weights."""

    def __init__(
        self,
        partner: torch.Tensor | None,
        row_labels: torch.Tensor | None,
        col_labels: torch.Tensor | None,
        pos: torch.Tensor | None,
        exclude: torch.Tensor | None,
        weights: torch.Tensor | None,
    ) -> None:
        self.partner = partner
        self.row_labels = row_labels
        self.col_labels = col_labels
        self.pos = pos
        self.exclude = exclude
        self.weights = weights

    def block(
        self, dots: torch.Tensor, scale: torch.Tensor, r0: int, r1: int, c0: int, c1: int, check: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Return ``(x, x_den, target, is_positive)`` of one block.

        ``x`` = logits + log weights, ``x_den`` = ``x`` with ``-inf`` where a column
        is out of the denominator, ``target`` the unnormalised positive weights
        (``None`` for ``partner`` positives, which are handled outside the blocks, in
        ``O(B D)``).
        """
        rows, cols = r1 - r0, c1 - c0
        device, dtype = dots.device, dots.dtype
        x = dots * scale
        columns = torch.arange(c0, c1, device=device)
        excluded = None
        if self.exclude is not None:
            excluded = columns.unsqueeze(0) == self.exclude[r0:r1].unsqueeze(1)

        target: torch.Tensor | None
        is_positive: torch.Tensor | None
        if self.partner is not None:
            target = is_positive = None
        elif self.row_labels is not None:
            assert self.col_labels is not None
            is_positive = torch.zeros(rows, cols, dtype=torch.bool, device=device)
            end = min(c1, self.col_labels.shape[0])
            if end > c0:
                is_positive[:, : end - c0] = self.row_labels[r0:r1].unsqueeze(1) == self.col_labels[c0:end].unsqueeze(0)
            if excluded is not None:
                is_positive &= ~excluded
            target = is_positive.to(dtype)
        else:
            assert self.pos is not None
            end = min(c1, self.pos.shape[1])
            part = self.pos[r0:r1, c0:end] if end > c0 else self.pos[r0:r1, :0]
            if part.dtype == torch.bool:
                is_positive = F.pad(part, (0, cols - part.shape[1]), value=False)
                target = is_positive.to(dtype)
            else:
                if check and (not torch.isfinite(part).all() or (part < 0).any()):
                    raise ValueError(
                        "positive_weights: expected finite, non-negative weights, got negative or NaN/inf entries"
                    )
                target = F.pad(part.to(dtype), (0, cols - part.shape[1]), value=0.0)
                is_positive = target > 0

        if self.weights is None:
            x_den = x if excluded is None else x.masked_fill(excluded, float("-inf"))
            return x, x_den, target, is_positive
        w = self.weights[r0:r1, c0:c1]
        nonzero = w > 0
        if check:
            if not torch.isfinite(w).all() or (w < 0).any():
                raise ValueError(
                    "column_weights: expected finite, non-negative weights, got negative or NaN/inf entries"
                )
            if is_positive is None:
                assert self.partner is not None
                inside = (self.partner[r0:r1] >= c0) & (self.partner[r0:r1] < c1)
                rows_in = torch.nonzero(inside).flatten()
                zero_positive = ~nonzero[rows_in, self.partner[r0:r1][rows_in] - c0]
            else:
                zero_positive = is_positive & ~nonzero
            if zero_positive.any():
                raise ValueError(
                    "column_weights: a positive column must have a weight > 0, got zero weight on "
                    f"{int(zero_positive.sum())} positive entr(y/ies)"
                )
        safe = torch.where(nonzero, w, torch.ones_like(w)).to(dtype)
        x = x + torch.where(nonzero, torch.log(safe), torch.full_like(x, float("-inf")))
        out = ~nonzero if excluded is None else (~nonzero | excluded)
        return x, x.masked_fill(out, float("-inf")), target, is_positive


class _TiledContrastive(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, query: torch.Tensor, key: torch.Tensor, scale: torch.Tensor, spec: _Spec, chunk: int) -> torch.Tensor:  # type: ignore[override]
        rows, cols = query.shape[0], key.shape[0]
        dtype, device = query.dtype, query.device
        lse = torch.full((rows,), float("-inf"), dtype=dtype, device=device)
        pos_dot = torch.zeros(rows, dtype=dtype, device=device)
        pos_sum = torch.zeros(rows, dtype=dtype, device=device)
        pos_count = torch.zeros(rows, dtype=torch.long, device=device)
        with torch.no_grad():
            for r0 in range(0, rows, chunk):
                r1 = min(rows, r0 + chunk)
                q = query[r0:r1]
                for c0 in range(0, cols, chunk):
                    c1 = min(cols, c0 + chunk)
                    dots = q @ key[c0:c1].T
                    x, x_den, target, is_positive = spec.block(dots, scale, r0, r1, c0, c1, check=True)
                    lse[r0:r1] = torch.logaddexp(lse[r0:r1], torch.logsumexp(x_den, dim=1))
                    if target is not None and is_positive is not None:
                        pos_dot[r0:r1] += (target * torch.where(is_positive, x, torch.zeros_like(x))).sum(dim=1)
                        pos_sum[r0:r1] += target.sum(dim=1)
                        pos_count[r0:r1] += is_positive.sum(dim=1)
            if spec.partner is not None:  # one positive per row: its logit in O(B D), no block work
                for r0 in range(0, rows, chunk):
                    r1 = min(rows, r0 + chunk)
                    partner = spec.partner[r0:r1]
                    pos_dot[r0:r1] = (query[r0:r1] * key[partner]).sum(dim=1) * scale
                    if spec.weights is not None:
                        pos_dot[r0:r1] += torch.log(spec.weights[r0:r1].gather(1, partner.unsqueeze(1)).squeeze(1).to(dtype))
                pos_sum.fill_(1.0)
                pos_count.fill_(1)
        no_positive = pos_count == 0
        if no_positive.any():
            raise ValueError(
                "positive_weights: every row needs at least one positive, got "
                f"{int(no_positive.sum())} row(s) with none (rows {_rows(no_positive)}...)"
            )
        no_denominator = torch.isneginf(lse)
        if no_denominator.any():
            raise ValueError(
                "valid_mask/column_weights: every row needs at least one valid column with a non-zero weight, got "
                f"{int(no_denominator.sum())} row(s) with none (rows {_rows(no_denominator)}...)"
            )
        ctx.save_for_backward(query, key, scale, lse, pos_sum)
        ctx.spec, ctx.chunk = spec, chunk
        return lse - pos_dot / pos_sum

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        query, key, scale, lse, pos_sum = ctx.saved_tensors
        spec, chunk = ctx.spec, ctx.chunk
        need_q, need_k, need_s = ctx.needs_input_grad[:3]
        rows, cols = query.shape[0], key.shape[0]
        grad_q = torch.zeros_like(query) if need_q else None
        grad_k = torch.zeros_like(key) if need_k else None
        grad_s = torch.zeros((), dtype=query.dtype, device=query.device) if need_s else None
        with torch.no_grad():
            for r0 in range(0, rows, chunk):
                r1 = min(rows, r0 + chunk)
                q = query[r0:r1]
                row_grad = grad[r0:r1].unsqueeze(1)
                for c0 in range(0, cols, chunk):
                    c1 = min(cols, c0 + chunk)
                    k = key[c0:c1]
                    dots = q @ k.T
                    _, x_den, target, _ = spec.block(dots, scale, r0, r1, c0, c1, check=False)
                    g = torch.exp(x_den - lse[r0:r1].unsqueeze(1))
                    if target is not None:
                        g -= target / pos_sum[r0:r1].unsqueeze(1)
                    g *= row_grad
                    if grad_q is not None:
                        grad_q[r0:r1] += g @ k
                    if grad_k is not None:
                        grad_k[c0:c1] += g.T @ q
                    if grad_s is not None:
                        grad_s += (g * dots).sum()
            if spec.partner is not None:  # the positive term, - g_i * l_{i, p(i)}, in O(B D)
                for r0 in range(0, rows, chunk):
                    r1 = min(rows, r0 + chunk)
                    partner, g_rows, q = spec.partner[r0:r1], grad[r0:r1].unsqueeze(1), query[r0:r1]
                    k = key[partner]
                    if grad_q is not None:
                        grad_q[r0:r1] -= g_rows * k
                    if grad_k is not None:
                        grad_k.index_add_(0, partner, -g_rows * q)
                    if grad_s is not None:
                        grad_s -= (g_rows.squeeze(1) * (q * k).sum(dim=1)).sum()
            if grad_q is not None:
                grad_q *= scale
            if grad_k is not None:
                grad_k *= scale
        return grad_q, grad_k, (None if grad_s is None else grad_s.to(scale.dtype)), None, None


def _as_scale(value: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.reshape(()).to(like.dtype)
    return torch.tensor(float(value), dtype=like.dtype, device=like.device)


def tiled_contrastive_loss(
    query: torch.Tensor,
    key: torch.Tensor,
    scale: float | torch.Tensor,
    *,
    partner: torch.Tensor | None = None,
    row_labels: torch.Tensor | None = None,
    col_labels: torch.Tensor | None = None,
    pos_mask: torch.Tensor | None = None,
    exclude: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> torch.Tensor:
    r"""Per-row softmax-contrastive losses of ``logits = scale * query @ key.T``, computed in blocks.

    The same per-row loss as :func:`contrastkit.functional.contrastive_loss_from_logits`
    with ``reduction='none'``,

    .. math::

        \ell_i = \log \sum_{k \in V_i} w_{ik} e^{l_{ik}} - \sum_j p_{ij} (l_{ij} + \log w_{ij}),

    without ever building a ``[B, N]`` tensor: memory is ``O(chunk^2 + (B + N) D)``
    (plus the caller's own dense ``pos_mask`` / ``weights`` if given). Gradients flow
    to ``query``, ``key`` and a tensor ``scale``; inputs are used as given (normalise
    them first, in autograd). Exactly one positive description is needed:

    Args:
        query: ``[B, D]`` rows (anchors).
        key: ``[N, D]`` columns (candidates).
        scale: the logit multiplier (``1 / temperature`` or CLIP's ``logit_scale``):
            a float or a 1-element tensor (keeps its gradient).
        partner: ``[B]`` long, the single positive column of each row.
        row_labels: ``[B]`` labels of the rows; with ``col_labels`` (``[N']``,
            ``N' <= N``, columns ``>= N'`` are never positive): column ``j`` is a
            positive of row ``i`` iff the labels are equal (and ``j`` is not excluded).
        col_labels: see ``row_labels``.
        pos_mask: ``[B, N']`` (``N' <= N``) bool mask or non-negative float weights
            of the positives, sliced per block; must not require grad.
        exclude: ``[B]`` long, one column per row removed from the denominator and
            from the positives (self-similarity); ``-1`` for none.
        weights: ``[B, N]`` non-negative column weights (``log w`` is added to the
            logit, a zero removes the column); sliced per block, must not require grad.
        chunk_size: block size (rows and columns), a positive int.

    Returns:
        ``[B]`` per-row losses.

    Raises:
        ValueError: on a missing or ambiguous positive description, a row without
            positive or without denominator, negative / non-finite weights, a
            positive with zero weight, or a dense argument that requires grad.

    Example:
        >>> q, k = F.normalize(torch.randn(10, 4), dim=1), F.normalize(torch.randn(10, 4), dim=1)
        >>> losses = tiled_contrastive_loss(q, k, 10.0, partner=torch.arange(10), chunk_size=4)
        >>> losses.shape
        torch.Size([10])
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive int, got {chunk_size!r}")
    given = sum(x is not None for x in (partner, row_labels, pos_mask))
    if given != 1 or (row_labels is None) != (col_labels is None):
        raise ValueError("tiled_contrastive_loss: expected exactly one of partner, row_labels + col_labels, pos_mask")
    for name, tensor in (("pos_mask", pos_mask), ("weights", weights)):
        if tensor is not None and tensor.requires_grad:
            raise ValueError(f"{name}: the tiled path does not differentiate through {name}; detach it or use chunk_size=None")
    device = query.device
    spec = _Spec(
        None if partner is None else partner.to(device),
        None if row_labels is None else row_labels.to(device),
        None if col_labels is None else col_labels.to(device),
        None if pos_mask is None else pos_mask.to(device),
        None if exclude is None else exclude.to(device),
        None if weights is None else weights.to(device),
    )
    return _TiledContrastive.apply(query, key, _as_scale(scale, query), spec, chunk_size)


class _TiledSigLIP(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, chunk: int) -> torch.Tensor:  # type: ignore[override]
        rows, cols = a.shape[0], b.shape[0]
        total = torch.zeros((), dtype=a.dtype, device=a.device)
        with torch.no_grad():
            for r0 in range(0, rows, chunk):
                r1 = min(rows, r0 + chunk)
                for c0 in range(0, cols, chunk):
                    c1 = min(cols, c0 + chunk)
                    logits = (a[r0:r1] @ b[c0:c1].T) * scale + bias
                    signs = _signs(r0, r1, c0, c1, logits)
                    total -= F.logsigmoid(signs * logits).sum()
        ctx.save_for_backward(a, b, scale, bias)
        ctx.chunk = chunk
        return total / rows

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        a, b, scale, bias = ctx.saved_tensors
        chunk = ctx.chunk
        rows, cols = a.shape[0], b.shape[0]
        need_a, need_b, need_s, need_bias = ctx.needs_input_grad[:4]
        grad_a = torch.zeros_like(a) if need_a else None
        grad_b = torch.zeros_like(b) if need_b else None
        grad_s = torch.zeros((), dtype=a.dtype, device=a.device)
        grad_bias = torch.zeros((), dtype=a.dtype, device=a.device)
        with torch.no_grad():
            for r0 in range(0, rows, chunk):
                r1 = min(rows, r0 + chunk)
                for c0 in range(0, cols, chunk):
                    c1 = min(cols, c0 + chunk)
                    dots = a[r0:r1] @ b[c0:c1].T
                    logits = dots * scale + bias
                    signs = _signs(r0, r1, c0, c1, logits)
                    # d/dx of -log sigmoid(s x) = -s * sigmoid(-s x)
                    g = (-signs * torch.sigmoid(-signs * logits)) * (grad / rows)
                    if grad_a is not None:
                        grad_a[r0:r1] += g @ b[c0:c1]
                    if grad_b is not None:
                        grad_b[c0:c1] += g.T @ a[r0:r1]
                    if need_s:
                        grad_s += (g * dots).sum()
                    if need_bias:
                        grad_bias += g.sum()
            if grad_a is not None:
                grad_a *= scale
            if grad_b is not None:
                grad_b *= scale
        return (
            grad_a,
            grad_b,
            grad_s.to(scale.dtype) if need_s else None,
            grad_bias.to(bias.dtype) if need_bias else None,
            None,
        )


def _signs(r0: int, r1: int, c0: int, c1: int, like: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(r0, r1, device=like.device).unsqueeze(1)
    cols = torch.arange(c0, c1, device=like.device).unsqueeze(0)
    return torch.where(rows == cols, 1.0, -1.0).to(like.dtype)


def tiled_siglip_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    scale: float | torch.Tensor,
    bias: float | torch.Tensor,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> torch.Tensor:
    r"""SigLIP's pairwise sigmoid loss ``-sum_ij log sigmoid(z_ij (t a_i . b_j + bias)) / B``, in blocks.

    ``z_ii = +1``, ``z_ij = -1`` otherwise. Inputs are used as given (normalise them
    first, in autograd); gradients flow to ``a``, ``b`` and tensor ``scale`` /
    ``bias``. Memory is ``O(chunk^2 + B D)``.

    Args:
        a: ``[B, D]`` embeddings of one modality.
        b: ``[B, D]`` paired embeddings of the other.
        scale: the multiplier ``t`` (float or 1-element tensor).
        bias: the bias (float or 1-element tensor).
        chunk_size: block size (rows and columns), a positive int.

    Returns:
        The scalar loss.

    Example:
        >>> a, b = torch.randn(10, 4), torch.randn(10, 4)
        >>> tiled_siglip_loss(a, b, 10.0, -10.0, chunk_size=4).shape
        torch.Size([])
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive int, got {chunk_size!r}")
    return _TiledSigLIP.apply(a, b, _as_scale(scale, a), _as_scale(bias, a), chunk_size)
