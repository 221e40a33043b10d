"""Which kernel computes a checked InfoNCE: the fused one-positive kernel, the tiled path or one logit matrix.

:func:`contrastkit.functional.contrastive.info_nce` checks its arguments and calls
:func:`info_nce_kernel`, whose one job is the choice (all three give the same value and
gradients to float tolerance; they differ in memory and speed):

- paired positives, no ``weights``, ``chunk_size`` not ``None``: the fused one-positive
  kernel (:func:`contrastkit.functional.paired.paired_contrastive_loss`, cached while the
  logits fit 64 MiB, tiled beyond); symmetric with the mean over rows and no extra
  negatives, the symmetric kernel
  (:func:`contrastkit.functional.symmetric_paired.symmetric_paired_loss`: one logit block
  for both directions);
- positives by ``labels`` (no mask, no weights): the fused labelled kernel
  (:func:`contrastkit.functional.labelled_paired.labelled_paired_loss`: the one-positive
  log-sum-exp plus label-summed positive logits, same memory bound);
- otherwise, while the ``[B, M + K]`` logits fit
  :data:`contrastkit.functional.tiled.NAIVE_MAX_LOGITS_BYTES` (or ``chunk_size=None``): one
  dense logit matrix and plain autograd (double backward works);
- beyond it, or with an ``int`` chunk size: the tiled path (block-wise log-sum-exp with
  recomputation in backward, memory linear in the batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.functional.core import contrastive_loss_from_logits, reduce
from contrastkit.functional.labelled_paired import labelled_paired_loss
from contrastkit.functional.paired import paired_contrastive_loss
from contrastkit.functional.symmetric_paired import symmetric_paired_loss
from contrastkit.functional.tiled import ChunkSize, resolve_chunk_size, tiled_contrastive_loss
from contrastkit.utils.checks import Scalar

__all__ = ["info_nce_kernel"]


def _normalize(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    return F.normalize(x, dim=1) if normalize else x


def _inverse_scale(temperature: Scalar) -> Scalar:
    return 1.0 / temperature if isinstance(temperature, torch.Tensor) else 1.0 / float(temperature)


def info_nce_kernel(
    query: torch.Tensor,
    key: torch.Tensor,
    negatives: torch.Tensor | None,
    temperature: Scalar,
    symmetric: bool,
    labels: torch.Tensor | None,
    pos_mask: torch.Tensor | None,
    weights: torch.Tensor | None,
    normalize: bool,
    reduction: str,
    chunk_size: ChunkSize,
) -> torch.Tensor:
    """InfoNCE by the kernel that fits (see the module docstring); the arguments are already checked."""
    batch, num_keys = query.shape[0], key.shape[0]
    num_negatives = 0 if negatives is None else negatives.shape[0]
    columns = num_keys + num_negatives
    if labels is None and pos_mask is None and weights is None and chunk_size is not None:
        # One positive per row (the common case): the fused kernel, cached or tiled.
        q = _normalize(query, normalize)
        c = _normalize(key if negatives is None else torch.cat([key, negatives], dim=0), normalize)
        index = torch.arange(batch, device=query.device)
        scale = _inverse_scale(temperature)
        if symmetric and negatives is None and num_keys == batch and reduction == "mean":
            # Both directions from one logit block per tile: half the matrix products.
            return symmetric_paired_loss(q, c, scale, chunk_size=chunk_size)
        forward = reduce(paired_contrastive_loss(q, c, scale, index, chunk_size=chunk_size), reduction)
        if not symmetric:
            return forward
        return (forward + reduce(paired_contrastive_loss(c, q, scale, index, chunk_size=chunk_size), reduction)) / 2
    if (labels is not None and pos_mask is None and weights is None and chunk_size is not None
            and (negatives is None or not symmetric)):
        # Positives by label: the fused kernel's log-sum-exp plus label-summed positives, no [B, M] mask.
        return _info_nce_labelled(query, key, negatives, temperature, symmetric, labels, normalize, reduction,
                                  chunk_size)
    chunk = resolve_chunk_size(chunk_size, batch, columns, query.dtype)
    if chunk_size == "auto" and any(isinstance(t, torch.Tensor) and t.requires_grad for t in (pos_mask, weights)):
        chunk = None  # the tiled path does not differentiate through pos_mask / weights
    if chunk is not None:
        return _info_nce_tiled(
            query, key, negatives, temperature, symmetric, labels, pos_mask, weights, normalize, reduction, chunk
        )

    if pos_mask is None:
        if labels is None:
            positives = torch.eye(batch, columns, dtype=torch.bool, device=query.device)
        else:
            same = labels.to(query.device).unsqueeze(1) == labels.to(query.device).unsqueeze(0)
            positives = F.pad(same, (0, num_negatives), value=False)
    else:
        if pos_mask.shape[1] == num_keys and num_negatives:
            positives = F.pad(pos_mask, (0, num_negatives), value=False if pos_mask.dtype == torch.bool else 0.0)
        else:
            positives = pos_mask


    q = _normalize(query, normalize)
    candidates = key if negatives is None else torch.cat([key, negatives], dim=0)
    c = _normalize(candidates, normalize)
    logits = q @ c.T / temperature

    if pos_mask is None and labels is None and weights is None:
        # Paired rows, one positive each: plain cross-entropy equals the general core here and
        # skips its [B, M] mask temporaries.
        target = torch.arange(batch, device=logits.device)
        forward = reduce(F.cross_entropy(logits, target, reduction="none"), reduction)
        if not symmetric:
            return forward
        return (forward + reduce(F.cross_entropy(logits.T, target, reduction="none"), reduction)) / 2

    forward = contrastive_loss_from_logits(logits, positives, column_weights=weights, reduction=reduction)
    if not symmetric:
        return forward
    backward = contrastive_loss_from_logits(
        logits.T,
        positives.T,
        column_weights=None if weights is None else weights.T,
        reduction=reduction,
    )
    return (forward + backward) / 2


def _info_nce_labelled(
    query: torch.Tensor,
    key: torch.Tensor,
    negatives: torch.Tensor | None,
    temperature: Scalar,
    symmetric: bool,
    labels: torch.Tensor,
    normalize: bool,
    reduction: str,
    chunk_size: ChunkSize,
) -> torch.Tensor:
    """Labelled InfoNCE on the fused labelled kernel; extra negatives get a label no row has."""
    labels = labels.to(query.device)
    q = _normalize(query, normalize)
    k = _normalize(key, normalize)
    scale = _inverse_scale(temperature)
    if negatives is None:
        candidates, col_labels = k, labels
    else:
        candidates = torch.cat([k, _normalize(negatives, normalize)], dim=0)
        col_labels = torch.cat([labels, labels.new_full((negatives.shape[0],), int(labels.min()) - 1)])
    forward = reduce(labelled_paired_loss(q, candidates, scale, labels, col_labels, chunk_size=chunk_size), reduction)
    if not symmetric:
        return forward
    backward = reduce(labelled_paired_loss(k, q, scale, labels, labels, chunk_size=chunk_size), reduction)
    return (forward + backward) / 2


def _info_nce_tiled(
    query: torch.Tensor,
    key: torch.Tensor,
    negatives: torch.Tensor | None,
    temperature: Scalar,
    symmetric: bool,
    labels: torch.Tensor | None,
    pos_mask: torch.Tensor | None,
    weights: torch.Tensor | None,
    normalize: bool,
    reduction: str,
    chunk: int,
) -> torch.Tensor:
    """The tiled path of :func:`info_nce` (arguments already checked for shape)."""
    batch = query.shape[0]
    forward_spec: dict[str, torch.Tensor] = {}
    backward_spec: dict[str, torch.Tensor] = {}
    if pos_mask is None:
        if labels is None:
            index = torch.arange(batch, device=query.device)
            forward_spec = backward_spec = {"partner": index}
        else:
            forward_spec = backward_spec = {"row_labels": labels, "col_labels": labels}
    else:
        if pos_mask.dtype != torch.bool and not pos_mask.is_floating_point():
            raise ValueError(f"positive_weights: expected a bool or float tensor, got dtype {pos_mask.dtype}")
        forward_spec, backward_spec = {"pos_mask": pos_mask}, {"pos_mask": pos_mask.T}
    if weights is not None:
        if not weights.is_floating_point():
            raise ValueError(f"column_weights: expected a float tensor, got dtype {weights.dtype}")
        forward_spec = {**forward_spec, "weights": weights}
        backward_spec = {**backward_spec, "weights": weights.T}

    q = _normalize(query, normalize)
    candidates = key if negatives is None else torch.cat([key, negatives], dim=0)
    c = _normalize(candidates, normalize)
    scale = _inverse_scale(temperature)
    forward = reduce(tiled_contrastive_loss(q, c, scale, chunk_size=chunk, **forward_spec), reduction)
    if not symmetric:
        return forward
    backward = reduce(tiled_contrastive_loss(c, q, scale, chunk_size=chunk, **backward_spec), reduction)
    return (forward + backward) / 2
