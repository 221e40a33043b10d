r"""M3CoL (Kumar, Singhal et al., 2024, "Multimodal Mixup Contrastive Learning"): the M3Co mixup
loss and SoftCLIP, as pure functions of tensors.

**M3Co.** A fraction ``s_thresh`` of the rows of one modality's embeddings ``m`` are mixed
with a permuted partner, ``m~_i = lambda_i m_i + (1 - lambda_i) m_pi(i)`` with
``lambda_i ~ Beta(beta, beta)`` (``lambda_i = 1`` for the other rows), and the mixture is
aligned with the *other* modality's embeddings ``f`` of both its sources through soft targets:

.. math::

    \ell_{ij} = \frac{\hat{\tilde m}_i \cdot \hat f_j}{\tau}, \qquad
    P_{ij} = \lambda_i [j = i] + (1 - \lambda_i) [j = \pi(i)],

    L = \tfrac12 \Big( -\tfrac1B \sum_i \sum_j P_{ij} \log \mathrm{softmax}_j \ell_{ij}
          \; - \; \tfrac1B \sum_j \sum_i P_{ij} \log \mathrm{softmax}_i \ell_{ij} \Big),

with ``^`` L2 normalisation and ``tau = 0.1``. **SoftCLIP** (used after the first
``mixup_pct`` of training in the official schedule) replaces the hard targets with the
similarity structure of the target modality: targets ``softmax(f_hat f_hatᵀ / 0.125)``.

Checked against the official code, github.com/RaghavSinghal10/M3CoL (``model/utils.py``
``mixco_text`` / ``mixco_image`` / ``mixco_nce`` / ``soft_clip_loss``, ``model/model.py``
``MMC.forward``, ``train_image_text.py`` arguments):

* Defaults are the official ones: ``beta = 0.15`` (``--mixup_beta``), ``s_thresh = 0.5``
  (``--mixup_s_thresh``; a row is mixed when ``rand <= s_thresh``), ``tau = 0.1``
  (``mixco_nce``'s ``temp``), bidirectional, mean over rows; SoftCLIP ``temp = 0.125``, its
  targets *not* detached (the official code does not detach them, so the target
  modality also gets a gradient through them), and its second direction uses
  ``clip_clip.softmax(-1)`` as the targets of ``brain_clip.T`` exactly as the official line.
* Target matrix (deviation): the official code builds ``probs = diag(betas)`` and then
  *assigns* ``probs[i, perm[i]] = 1 - betas[i]``; where ``perm[i] == i`` (about one row per
  batch) that overwrites the diagonal, so the row's target mass is ``1 - lambda_i`` (0 for
  an unmixed row). Here the two masses are *added* (``m~_i = m_i`` then, so the target is 1
  on ``i``): the intended target. Tested on a permutation with a fixed point.
* Which embeddings are "fixed" (deviation, in the method): the official ``MMC.forward``
  mixes ``text_new[:, 0, :]`` and ``image_new[:, 0, :]`` *in place* (the ``[:, 0, :]``
  slices are views of the clones), so its second M3Co term contrasts mixed images with the
  already-mixed texts and vice versa. The paper describes the mixture of one modality
  against the other modality's clean embeddings; :func:`m3co_loss` takes whatever ``fixed``
  it is given and :class:`~contrastkit.methods.m3col.M3CoL` passes the clean ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_pair

__all__ = ["m3co_loss", "mixco_mix", "mixup_targets", "soft_clip_loss"]


def mixco_mix(embeddings: torch.Tensor, permutation: torch.Tensor, lambdas: torch.Tensor) -> torch.Tensor:
    r"""``m~_i = lambda_i m_i + (1 - lambda_i) m_{pi(i)}`` (rows with ``lambda_i = 1`` are unchanged).

    Args:
        embeddings: ``[B, D]``.
        permutation: ``[B]`` long, a permutation of ``0..B-1``.
        lambdas: ``[B]`` mixing weights in ``[0, 1]`` (1 for unmixed rows).

    Returns:
        ``[B, D]`` mixed embeddings (a new tensor; ``embeddings`` is not modified).
    """
    _check_mixing(embeddings.shape[0], permutation, lambdas)
    weight = lambdas.to(embeddings.dtype)[:, None]
    return weight * embeddings + (1 - weight) * embeddings[permutation]


def mixup_targets(permutation: torch.Tensor, lambdas: torch.Tensor) -> torch.Tensor:
    """``[B, B]`` soft targets: mass ``lambda_i`` on column ``i`` and ``1 - lambda_i`` on ``pi(i)`` (added)."""
    rows = permutation.shape[0]
    targets = torch.diag(lambdas.clone())
    targets.index_put_((torch.arange(rows, device=permutation.device), permutation), 1 - lambdas, accumulate=True)
    return targets


def _check_mixing(rows: int, permutation: torch.Tensor, lambdas: torch.Tensor) -> None:
    if not isinstance(permutation, torch.Tensor) or permutation.shape != (rows,) or permutation.dtype != torch.long:
        raise ValueError(f"permutation: expected a long tensor of shape ({rows},), got "
                         f"{tuple(permutation.shape) if isinstance(permutation, torch.Tensor) else permutation!r}")
    if not torch.equal(permutation.sort().values, torch.arange(rows, device=permutation.device)):
        raise ValueError(f"permutation: expected a permutation of 0..{rows - 1}, got repeated or missing rows")
    if not isinstance(lambdas, torch.Tensor) or lambdas.shape != (rows,):
        raise ValueError(f"lambdas: expected a tensor of shape ({rows},), got "
                         f"{tuple(lambdas.shape) if isinstance(lambdas, torch.Tensor) else lambdas!r}")
    if not ((lambdas >= 0) & (lambdas <= 1)).all():
        raise ValueError("lambdas: expected mixing weights in [0, 1], got values outside")


def m3co_loss(mixed: torch.Tensor, fixed: torch.Tensor, permutation: torch.Tensor, lambdas: torch.Tensor, *,
              temperature: float = 0.1, bidirectional: bool = True) -> torch.Tensor:
    r"""M3Co: soft-target InfoNCE between mixed embeddings of one modality and the other's (official ``mixco_nce``).

    Args:
        mixed: ``[B, D]`` mixed embeddings ``m~`` (:func:`mixco_mix`); L2-normalised here.
        fixed: ``[B, D]`` the other modality's embeddings; L2-normalised here.
        permutation: ``[B]`` the partner ``pi(i)`` of each row.
        lambdas: ``[B]`` the mixing weights (1 for unmixed rows).
        temperature: ``tau`` (official: 0.1).
        bidirectional: also the transposed direction, averaged (official default).

    Returns:
        The scalar loss.

    Example:
        >>> m, f = torch.randn(8, 16), torch.randn(8, 16)
        >>> perm, lam = torch.randperm(8), torch.full((8,), 0.7)
        >>> m3co_loss(mixco_mix(m, perm, lam), f, perm, lam).shape
        torch.Size([])
    """
    check_pair("mixed", mixed, "fixed", fixed, min_rows=2)
    _check_mixing(mixed.shape[0], permutation, lambdas)
    if not temperature > 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature}")
    logits = F.normalize(mixed, dim=-1) @ F.normalize(fixed, dim=-1).T / temperature
    targets = mixup_targets(permutation, lambdas.to(logits.dtype))
    loss = -(logits.log_softmax(-1) * targets).sum(-1).mean()
    if bidirectional:
        loss = (loss - (logits.T.log_softmax(-1) * targets.T).sum(-1).mean()) / 2
    return loss


def soft_clip_loss(predictions: torch.Tensor, targets: torch.Tensor, *, temperature: float = 0.125) -> torch.Tensor:
    r"""SoftCLIP (official ``soft_clip_loss(preds, targs, temp=0.125)``): cross-entropy against ``softmax(t tᵀ/τ)``.

    With L2-normalised ``p`` (predictions) and ``t`` (targets), ``S = p tᵀ / τ`` and soft
    targets ``Q = softmax_rows(t tᵀ / τ)`` (not detached, as the official code):
    ``L = ½(-mean_i Σ_j Q_ij log softmax_j S_ij - mean_j Σ_i Q_ji log softmax_i S_ij)``.

    Args:
        predictions: ``[B, D]``.
        targets: ``[B, D]`` paired rows whose self-similarity gives the soft targets.
        temperature: official 0.125.

    Returns:
        The scalar loss.
    """
    check_pair("predictions", predictions, "targets", targets, min_rows=2)
    if not temperature > 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature}")
    predictions, targets = F.normalize(predictions, dim=-1), F.normalize(targets, dim=-1)
    soft = (targets @ targets.T / temperature).softmax(-1)
    logits = predictions @ targets.T / temperature
    forward = -(logits.log_softmax(-1) * soft).sum(-1).mean()
    backward = -(logits.T.log_softmax(-1) * soft).sum(-1).mean()
    return (forward + backward) / 2
