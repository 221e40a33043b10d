r"""Fused contrastive loss with label-defined positives (SupCon, labelled InfoNCE).

Row ``i``'s positives are the columns with its label, ``P(i) = {j != e(i) : c_j = r_i}``,
and its loss is SupCon's ``L_out`` form,

.. math::

    \ell_i = \log \sum_{j \ne e(i)} e^{s q_i \cdot k_j}
             - \frac{1}{|P(i)|} \sum_{j \in P(i)} s\, q_i \cdot k_j .

The general path builds a ``[B, N]`` positive mask and carries it through every tile. Here
neither term needs one:

* the log-sum-exp is the fused one-positive kernel's
  (:func:`~contrastkit.functional.paired.paired_contrastive_loss`, cached or tiled, one
  GEMM forward and two backward) plus the logit of the partner column it was given, which
  cancels that kernel's positive term exactly (value and gradient);
* the mean positive logit is ``s q_i · (S_{r_i} - [c_{e(i)} = r_i] k_{e(i)}) / |P(i)|`` with
  ``S_c`` the sum of the keys of label ``c``: an ``index_add`` and a gather, ``O((B + N) D)``,
  differentiated by autograd.

So the labelled loss costs what the one-positive kernel costs, with its memory bound
(``O(tile^2 + (B + N) D)`` when tiled). On an accelerator it waits for the device once per
call (``torch.unique`` relabels the classes densely); the one-positive kernels do not.
"""

from __future__ import annotations

import torch

from contrastkit.functional.paired import paired_contrastive_loss
from contrastkit.utils.validation import validating

__all__ = ["labelled_paired_loss"]


def labelled_paired_loss(query: torch.Tensor, key: torch.Tensor, scale: float | torch.Tensor,
                         row_labels: torch.Tensor, col_labels: torch.Tensor, *,
                         exclude: torch.Tensor | None = None, chunk_size: int | str = "auto") -> torch.Tensor:
    """Per-row SupCon losses over ``scale * query @ key.T`` with positives by label, fused.

    Args:
        query: ``[B, D]`` anchors (normalise them first, in autograd).
        key: ``[N, D]`` candidates, ``N >= 2``.
        scale: the logit multiplier ``1 / temperature`` (a float or a 1-element tensor).
        row_labels: ``[B]`` integer labels of the anchors.
        col_labels: ``[N]`` integer labels of the candidates; a column whose label no row has
            is a pure negative (e.g. a queue entry given label ``-1``).
        exclude: optional ``[B]`` column removed from row ``i`` entirely (its self-similarity),
            ``-1`` for none.
        chunk_size: as :func:`~contrastkit.functional.paired.paired_contrastive_loss`.

    Returns:
        ``[B]`` per-row losses (float32; float64 for float64 inputs).

    Raises:
        ValueError: on bad shapes, or a row without any positive column (the count is named).

    Example:
        >>> import torch.nn.functional as F
        >>> z = F.normalize(torch.randn(6, 4), dim=1)
        >>> labels = torch.tensor([0, 0, 1, 1, 2, 2])
        >>> labelled_paired_loss(z, z, 10.0, labels, labels, exclude=torch.arange(6)).shape
        torch.Size([6])
    """
    if query.dim() != 2 or key.dim() != 2 or query.shape[1] != key.shape[1] or key.shape[0] < 2:
        raise ValueError(f"labelled_paired_loss: expected query [B, D] and key [N, D] with N >= 2, "
                         f"got {tuple(query.shape)} and {tuple(key.shape)}")
    rows, cols = query.shape[0], key.shape[0]
    for name, labels, size in (("row_labels", row_labels, rows), ("col_labels", col_labels, cols)):
        if not isinstance(labels, torch.Tensor) or labels.shape != (size,) or labels.is_floating_point():
            got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise ValueError(f"{name}: expected an integer tensor of shape [{size}], got {got}")
    device = query.device
    row_labels, col_labels = row_labels.to(device), col_labels.to(device)
    # Dense label ids shared by rows and columns, so the key sums are one index_add.
    _, dense = torch.unique(torch.cat([row_labels, col_labels]), return_inverse=True)
    row_ids, col_ids = dense[:rows], dense[rows:]
    classes = int(dense.max()) + 1
    dtype = torch.float64 if torch.float64 in (query.dtype, key.dtype) else torch.float32
    q, k = query.to(dtype), key.to(dtype)
    # index_put (not index_add, which saves the whole source for backward) keeps only the index.
    sums = k.new_zeros(classes, k.shape[1]).index_put((col_ids,), k, accumulate=True)
    counts = torch.bincount(col_ids, minlength=classes).to(dtype)
    positive_sum, positive_count = sums[row_ids], counts[row_ids]
    if exclude is not None:
        exclude = exclude.to(device, torch.long)
        excluded = exclude.clamp(min=0)
        same = ((exclude >= 0) & (col_ids[excluded] == row_ids)).to(dtype)
        positive_sum = positive_sum - k[excluded] * same.unsqueeze(1)
        positive_count = positive_count - same
    if validating(positive_count) and bool((positive_count < 1).any()):
        raise ValueError(f"labelled_paired_loss: every row needs a positive column, got "
                         f"{int((positive_count < 1).sum())} row(s) with none")
    scale_t = scale.reshape(()).to(dtype) if isinstance(scale, torch.Tensor) else torch.tensor(float(scale), dtype=dtype,
                                                                                                device=device)
    # Any column that is not excluded serves as the fused kernel's partner; its logit is added back. One
    # [B, D] product carries both corrections, s q_i . (k_p(i) - mean of the positives), so autograd keeps
    # two [B, D] tensors for it.
    partner = torch.zeros(rows, dtype=torch.long, device=device) if exclude is None else (exclude + 1) % cols
    correction = k[partner] - positive_sum / positive_count.unsqueeze(1)
    fused = paired_contrastive_loss(q, k, scale_t, partner, exclude=exclude, chunk_size=chunk_size)
    return fused + scale_t * (q * correction).sum(dim=1)
